"""Presence: joining, the sockets that are open, and what happens when people go.

A `Connection` row exists for each open socket; the web process that holds it
vouches for it every few seconds (`rooms.presence_loop`). A participant with
no connection is absent since the moment the last one closed.
`presence_sweep` runs every few seconds in each web process (and from Celery
beat): it drops connections no process vouched for, moves
speakers who stayed away past the reconnect grace to the audience, and ends a
space whose host has been gone for `SPACES_HOST_ABSENCE_END_S` unless a
co-host is there to take over.
"""

import asyncio
import logging
from datetime import datetime, timedelta

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.realtime import user_group
from accounts.services import audit_record
from rooms import events, lock_objects, selectors
from rooms.errors import WrongState
from rooms.models import STAGE_ROLES, Connection, Participant, Role, Space, SpaceState
from rooms.services.lifecycle import space_end
from rooms.services.numbers import numbers_add, numbers_peak
from rooms.services.stage import host_transfer, to_audience
from spaces_site.outages import OUTAGE_ERRORS, REDIS_ERRORS

log = logging.getLogger(__name__)

# A listener count goes out this long after the first change of a window, and
# a window lasts COUNT_WINDOW_S (whole seconds: the Redis cache rounds down).
COUNT_DELAY_S = 1.2
COUNT_WINDOW_S = 1
# Sockets vouched for per UPDATE.
TOUCH_CHUNK = 1000


def space_join(*, user: User, space: Space) -> Participant | None:
    """Enter a space (after `ensure_may_enter`). Returns None for an anonymous listener.

    Someone coming back keeps the role they had; someone who left comes back as a listener.
    """
    selectors.ensure_may_enter(user=user, space=space)
    if not user.is_authenticated:
        return None
    participant, created = Participant.objects.get_or_create(space=space, user=user)
    if created:
        numbers_add(space_id=space.pk, unique_listeners=1)
    if not created and participant.left_at is not None:
        participant.left_at = None
        if participant.role != Role.HOST:
            participant.role = Role.LISTENER
            participant.muted = True
        participant.save(update_fields=["left_at", "role", "muted"])
    return participant


def connection_open(
    *, space: Space, participant: Participant | None, channel_name: str, new_visit: bool = True
) -> Connection:
    """Record an open socket; a returning participant is present again."""
    now = timezone.now()
    with transaction.atomic():
        connection = Connection.objects.create(
            space=space,
            participant=participant,
            channel_name=channel_name,
            last_seen_at=now,
            process=settings.SPACES_PROCESS_NAME,
        )
        if participant is not None and participant.absent_since is not None:
            Participant.objects.filter(pk=participant.pk).update(absent_since=None)
            participant.absent_since = None
            if participant.role in STAGE_ROLES:
                _presence_changed(participant, present=True)
    if participant is None and new_visit:
        # An anonymous visit; counted after the commit, so the counter's row lock stays short.
        numbers_add(space_id=space.pk, unique_listeners=1)
    return connection


def connections_seen(*, channel_names: list[str], now: datetime | None = None) -> list[str]:
    """The web process that holds these sockets vouches for them (`rooms.presence_loop`).

    Returns those of them that have no row any more: a sweep dropped them while
    their process missed its window (a stall, a database outage), though they
    are still open (`connection_restore`).
    """
    now = now or timezone.now()
    missing: list[str] = []
    for start in range(0, len(channel_names), TOUCH_CHUNK):
        chunk = channel_names[start : start + TOUCH_CHUNK]
        if Connection.objects.filter(channel_name__in=chunk).update(last_seen_at=now) < len(chunk):
            there = set(Connection.objects.filter(channel_name__in=chunk).values_list("channel_name", flat=True))
            missing += [name for name in chunk if name not in there]
    return missing


def connection_restore(*, user: User, space: Space, channel_name: str) -> bool:
    """A socket still open whose row a sweep dropped comes back as a reconnect does: it enters again
    (`ensure_may_enter` decides afresh) and is present from now. False when its row is there."""
    if Connection.objects.filter(channel_name=channel_name).exists():
        return False
    participant = space_join(user=user, space=space)
    connection_open(space=space, participant=participant, channel_name=channel_name, new_visit=False)
    return True


def connection_close(*, channel_name: str) -> None:
    """Forget a closed socket; a participant with no socket left is absent from now."""
    connection = Connection.objects.filter(channel_name=channel_name).select_related("participant__user").first()
    if connection is None:
        return
    with transaction.atomic():
        connection.delete()
        participant = connection.participant
        if participant is not None:
            _mark_absent_if_gone({participant.pk: timezone.now()})
    _count_listening([connection], until=timezone.now())


def space_leave(*, user: User, space_id: int, channel_name: str) -> None:
    """The person pressed Leave on this socket: they are out now, not after the reconnect grace.

    With no other socket of theirs in the space, someone on stage steps down and
    every page drops them at once (`participant.removed`, reason "left"). A host
    hands hosting to a co-host who is there, as leaving the stage does; with no
    one to take over they stay host, absent, and the space ends after
    `SPACES_HOST_ABSENCE_END_S` unless they come back (only "End space" ends it now).
    """
    connection_close(channel_name=channel_name)
    if not user.is_authenticated or Connection.objects.filter(space_id=space_id, participant__user=user).exists():
        return
    with transaction.atomic():
        space = lock_objects.space_for_update(space_id)
        participant = lock_objects.participants_for_update(space.pk, [user.pk]).first()
        if space.state != SpaceState.LIVE or participant is None or participant.left_at is not None:
            return
        if participant.role == Role.HOST:
            successor = selectors.next_host(space_id=space_id)
            if successor is None:
                return
            host_transfer(actor=user, space_id=space_id, target=successor.user)
            participant.refresh_from_db()
        role = participant.role
        to_audience(participant)
        participant.left_at = timezone.now()
        participant.save(update_fields=["left_at"])
        if role in STAGE_ROLES:
            audit_record(actor=user, action="rooms.stage.left", subject=space, user=user.username, role=role)
        events.emit(events.participant_removed(space_id, user, reason="left"), events.PUBLIC)


def _count_listening(closed: list[Connection], *, until: datetime | None = None) -> None:
    """Add the time these sockets were open to their spaces' minutes listened (a dead socket's
    time ends at the last word its process gave for it)."""
    seconds: dict[int, float] = {}
    for connection in closed:
        end = until or connection.last_seen_at
        seconds[connection.space_id] = seconds.get(connection.space_id, 0) + max(
            0.0, (end - connection.opened_at).total_seconds()
        )
    for space_id, total in seconds.items():
        numbers_add(space_id=space_id, listening_seconds=round(total))


def _mark_absent_if_gone(since_by_participant: dict[int, datetime]) -> None:
    """Mark absent each participant with no socket left, since the moment given for them."""
    gone = (
        Participant.objects.filter(pk__in=since_by_participant, absent_since__isnull=True)
        .annotate(connected=Exists(Connection.objects.filter(participant=OuterRef("pk"))))
        .filter(connected=False)
        .select_related("user")
    )
    for participant in gone:
        participant.absent_since = since_by_participant[participant.pk]
        participant.save(update_fields=["absent_since"])
        if participant.role in STAGE_ROLES:
            _presence_changed(participant, present=False)


def _presence_changed(participant: Participant, *, present: bool) -> None:
    events.emit(events.participant_updated(participant, present=present), events.PUBLIC)


async def listener_count_changed(space_id: int) -> None:
    """Coalesce listener-count events: the first change in a window schedules one send.

    Called by consumers after a socket opens or closes. The key lives a little
    less than the delay, so a change made after the count is read always
    schedules another send: no change is lost, and a space gets about one
    count event a second however many people come and go.
    """
    try:
        if not await cache.aadd(f"rooms:count-pending:{space_id}", 1, timeout=COUNT_WINDOW_S):
            return
    except REDIS_ERRORS:
        return  # the count catches up with the next change, or in the snapshot after the outage
    loop = asyncio.get_running_loop()
    loop.call_later(COUNT_DELAY_S, lambda: loop.create_task(database_sync_to_async(send_listener_count)(space_id)))


def send_listener_count(space_id: int) -> None:
    try:
        count = selectors.listener_count(space_id=space_id)
        numbers_peak(space_id=space_id, listeners=count)
        events.send_now(events.listeners_count(space_id, count), events.EVERYONE)
    except OUTAGE_ERRORS as error:
        log.info("listener count for space %s not sent: %r", space_id, error)


def _leave_groups(dead: list[Connection]) -> None:
    """Take dead sockets out of their groups, so events stop being queued for them."""
    layer = get_channel_layer()
    try:
        for connection in dead:
            user_id = connection.participant.user_id if connection.participant is not None else None
            groups = events.socket_groups(connection.space_id, user_id)
            if user_id is not None:
                groups.append(user_group(user_id))
            for group in groups:
                async_to_sync(layer.group_discard)(group, connection.channel_name)
    except REDIS_ERRORS as error:
        # Group members expire on their own (channels-redis `group_expiry`); nothing is lost.
        log.warning("presence sweep could not clear dead sockets from their groups: %r", error)


def _connections_drop(dead: QuerySet[Connection]) -> int:
    """Drop these dead sockets: each owner with no other socket is absent since the last word their
    process gave for one, their time counts as listened until then, the groups forget them, and the
    spaces get their listener count. Returns how many were dropped."""
    dead = list(dead.select_related("participant"))
    if not dead:
        return 0
    last_word: dict[int, datetime] = {}
    for connection in dead:
        if connection.participant_id is not None:
            last_word[connection.participant_id] = max(
                connection.last_seen_at, last_word.get(connection.participant_id, connection.last_seen_at)
            )
    with transaction.atomic():
        Connection.objects.filter(pk__in=[c.pk for c in dead]).delete()
        _mark_absent_if_gone(last_word)
    _count_listening(dead)
    _leave_groups(dead)
    for space_id in {c.space_id for c in dead}:
        send_listener_count(space_id)
    return len(dead)


def presence_restart_sweep(*, booted_at: datetime, process: str | None) -> int:
    """A web process that (re)started drops at once the sockets its previous life left, as the sweep
    drops dead ones, instead of waiting `SPACES_PRESENCE_TIMEOUT_S` for them to go stale.

    Those are the sockets opened before it started under its name (`process`), or every socket opened
    before it started when `process` is None: the caller is the site's only web process (an
    in-process channel layer reaches no other). Returns how many were dropped.
    """
    previous = Connection.objects.filter(opened_at__lt=booted_at)
    if process is not None:
        previous = previous.filter(process=process)
    return _connections_drop(previous)


def presence_sweep(*, now: datetime | None = None, drop_stale: bool = True) -> dict:
    """Drop dead sockets, clear the stage of people who did not come back, end abandoned spaces.

    A socket is dead when no web process vouched for it within
    `SPACES_PRESENCE_TIMEOUT_S` (its process was killed, or lost it); its
    owner is absent since that last word, so the reconnect grace counts from
    then. `drop_stale=False` skips that judgement: a caller that was itself
    cut off from the database can't tell a dead socket from one whose process
    hasn't caught up yet (`rooms.presence_loop`).
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.SPACES_PRESENCE_TIMEOUT_S)
    grace_before = now - timedelta(seconds=settings.SPACES_RECONNECT_GRACE_S)
    host_before = now - timedelta(seconds=settings.SPACES_HOST_ABSENCE_END_S)
    report = {"stale_connections": 0, "moved_to_audience": 0, "hosts_replaced": 0, "spaces_ended": 0}

    if drop_stale:
        report["stale_connections"] = _connections_drop(Connection.objects.filter(last_seen_at__lt=stale_before))

    live = Participant.objects.filter(space__state=SpaceState.LIVE).select_related("user")
    for participant in live.filter(role__in=(Role.COHOST, Role.SPEAKER), absent_since__lt=grace_before) | live.filter(
        role=Role.LISTENER, absent_since__lt=grace_before, hand_raised_at__isnull=False
    ):
        with transaction.atomic():
            space = lock_objects.space_for_update(participant.space_id)
            locked = lock_objects.participants_for_update(space.pk, [participant.user_id]).first()
            if (
                locked is None
                or locked.role == Role.HOST
                or not locked.absent_since
                or locked.absent_since >= grace_before
            ):
                continue
            role = locked.role
            locked.role = Role.LISTENER
            locked.muted = True
            locked.hand_raised_at = None
            locked.save(update_fields=["role", "muted", "hand_raised_at"])
            audit_record(
                actor=None, action="rooms.stage.absent_moved", subject=space, user=locked.user.username, role=role
            )
            _presence_changed(locked, present=False)
        report["moved_to_audience"] += 1

    for host in live.filter(role=Role.HOST, absent_since__lt=host_before):
        successor = selectors.next_host(space_id=host.space_id)
        try:
            if successor is not None:
                host_transfer(actor=None, space_id=host.space_id, target=successor.user)
                report["hosts_replaced"] += 1
            else:
                space_end(actor=None, space_id=host.space_id, reason="host_absent")
                report["spaces_ended"] += 1
        except WrongState as error:
            log.info("presence sweep skipped space %s: %s", host.space_id, error.detail)
    return report
