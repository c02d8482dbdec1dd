"""Announcements: what happened to a space, recorded with the change, then planned into deliveries.

The three hooks (`space_went_live`, `space_cancelled`, `space_rescheduled`)
are called by `rooms.services.lifecycle` inside the transaction that changes
the space, under its row lock: the announcement commits or rolls back with
the change, so none is lost and none is made for a change that didn't happen.
Planning runs after commit in a Celery task (or the in-process ticker): it
creates the deliveries in bulk batches and hands their ids to send tasks. A
host with 100,000 followers costs the request that starts the space one
INSERT; the fan-out happens elsewhere.
"""

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts.models import Block, User
from rooms.models import Space, SpaceState
from scheduling import selectors, tasks, ticker
from scheduling.models import (
    LEAD_KINDS,
    Announcement,
    AnnouncementState,
    Channel,
    Delivery,
    DeliveryState,
    Kind,
    Occasion,
    Reminder,
)
from scheduling.services.deliveries import queue_for_sending

log = logging.getLogger(__name__)


# Hooks, called inside rooms' transactions.


def space_went_live(*, space: Space) -> None:
    """Reminder holders hear the space is live, and the host's followers that the host is."""
    _announce(space, Occasion.LIVE, round_=0)


def space_cancelled(*, space: Space) -> None:
    """Reminder holders hear the space is off."""
    _announce(space, Occasion.CANCELLED, round_=selectors.schedule_round(space_id=space.pk))


def space_rescheduled(*, space: Space) -> int:
    """Reminder holders hear the new time; the lead reminders move with it. Returns the new round.

    Lead reminders planned for the old time and not sent yet are dropped; the
    new round's are planned when the new time comes near.
    """
    round_ = selectors.schedule_round(space_id=space.pk) + 1
    Delivery.objects.filter(space=space, kind__in=LEAD_KINDS, round__lt=round_, state=DeliveryState.PENDING).update(
        state=DeliveryState.SKIPPED, error="The space was rescheduled."
    )
    _announce(space, Occasion.RESCHEDULED, round_=round_)
    return round_


def _announce(space: Space, occasion: str, *, round_: int) -> None:
    announcement, created = Announcement.objects.get_or_create(space=space, occasion=occasion, round=round_)
    if created:
        # robust: the change has committed; if the broker is down, the due-work sweep plans it later.
        transaction.on_commit(lambda: plan_soon(announcement.pk), robust=True)


def plan_soon(announcement_id: int) -> None:
    """Plan off the request: the in-process ticker in the one-command default, else a Celery task."""
    if not ticker.wake():
        tasks.announcement_plan_task.delay(announcement_id)


# Due work.


def lead_announcements_create(*, now: datetime) -> int:
    """Record the "starting soon" announcement of every scheduled space whose lead time has come.

    One per space and round (a rescheduled space gets a new one); none once
    the start time has passed. Safe to run twice at once: the database keeps one.
    """
    lead = timedelta(minutes=settings.SPACES_REMINDER_LEAD_MIN)
    already = Announcement.objects.filter(space=OuterRef("pk"), occasion=Occasion.LEAD, round=OuterRef("round"))
    due = (
        Space.objects.filter(state=SpaceState.SCHEDULED, scheduled_for__lte=now + lead, scheduled_for__gt=now)
        .annotate(round=selectors.schedule_round_expression())
        .exclude(Exists(already))
        .values_list("pk", "round")
    )
    rows = [Announcement(space_id=pk, occasion=Occasion.LEAD, round=round_, created_at=now) for pk, round_ in due]
    Announcement.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def announcements_to_plan(*, now: datetime) -> list[int]:
    """Announcements waiting to be planned, and those whose planner died (claimed long ago)."""
    stale = now - timedelta(seconds=settings.SPACES_DELIVERY_CLAIM_STALE_S)
    return list(
        Announcement.objects.filter(
            Q(state=AnnouncementState.PENDING) | Q(state=AnnouncementState.PLANNING, claimed_at__lt=stale)
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:100]
    )


# Planning.


def announcement_plan(*, announcement_id: int) -> dict:
    """Create the deliveries of one announcement in bulk batches and queue them for sending.

    Claimed first (pending → planning, one conditional UPDATE), so two
    workers don't both plan it; a planner that died is replaced once its claim
    is stale, and its half-done work is harmless: deliveries are unique, the
    inserts ignore the ones that exist, and the pending ones are queued again.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SPACES_DELIVERY_CLAIM_STALE_S)
    claimed = (
        Announcement.objects.filter(pk=announcement_id)
        .filter(Q(state=AnnouncementState.PENDING) | Q(state=AnnouncementState.PLANNING, claimed_at__lt=stale))
        .update(state=AnnouncementState.PLANNING, claimed_at=now)
    )
    if not claimed:
        return {"planned": False, "deliveries": 0}
    announcement = Announcement.objects.select_related("space__host").get(pk=announcement_id)
    overtaken = _overtaken(announcement, now)
    if overtaken:
        Announcement.objects.filter(pk=announcement.pk).update(state=AnnouncementState.SKIPPED, note=overtaken)
        return {"planned": False, "deliveries": 0, "skipped": overtaken}
    queued = 0
    for kind, users in _audiences(announcement.space, announcement.occasion):
        for channel in Channel.values:
            for user_ids in _chunks(selectors.willing(users, kind=kind, channel=channel)):
                queued += _deliveries_create(announcement, kind=kind, channel=channel, user_ids=user_ids, now=now)
    total = Delivery.objects.filter(announcement=announcement).count()
    Announcement.objects.filter(pk=announcement.pk).update(
        state=AnnouncementState.PLANNED, planned_at=timezone.now(), deliveries_count=total
    )
    return {"planned": True, "deliveries": total, "queued": queued}


def _overtaken(announcement: Announcement, now: datetime) -> str:
    """Why this announcement no longer holds (the space moved on before it was planned), or ''."""
    space, occasion = announcement.space, announcement.occasion
    if occasion == Occasion.CANCELLED:
        return ""
    if occasion == Occasion.LIVE:
        return "" if space.state == SpaceState.LIVE else f"The space is {space.state}."
    if space.state != SpaceState.SCHEDULED:
        return f"The space is {space.state}."
    if announcement.round != selectors.schedule_round(space_id=space.pk):
        return "The space was rescheduled again."
    if occasion == Occasion.LEAD and now >= space.scheduled_for:
        return "The start time has passed."
    return ""


def _holders(space: Space) -> QuerySet[User]:
    blocked = Block.objects.filter(blocker_id=space.host_id, blocked=OuterRef("pk"))
    return User.objects.filter(reminders__space=space).exclude(pk=space.host_id).exclude(Exists(blocked))


def _audiences(space: Space, occasion: str) -> list[tuple[str, QuerySet[User]]]:
    """Who hears of this occasion, as (kind, people) pairs."""
    if occasion == Occasion.LEAD:
        return [(Kind.REMINDER, _holders(space)), (Kind.HOST_REMINDER, User.objects.filter(pk=space.host_id))]
    if occasion == Occasion.LIVE:
        # Followers holding a reminder hear "live" once, as holders.
        holding = Reminder.objects.filter(space=space, user=OuterRef("pk"))
        followers = User.objects.filter(following_set__followee_id=space.host_id).exclude(Exists(holding))
        return [(Kind.LIVE, _holders(space)), (Kind.HOST_LIVE, followers)]
    if occasion == Occasion.CANCELLED:
        return [(Kind.CANCELLED, _holders(space))]
    return [(Kind.RESCHEDULED, _holders(space))]


def _chunks(users: QuerySet[User]) -> Iterator[list[int]]:
    """User ids in primary-key order, SPACES_FANOUT_CHUNK at a time (keyset pages: no open cursor)."""
    size, last = settings.SPACES_FANOUT_CHUNK, 0
    while True:
        ids = list(users.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:size])
        if not ids:
            return
        yield ids
        last = ids[-1]


def _deliveries_create(announcement: Announcement, *, kind: str, channel: str, user_ids: list[int], now) -> int:
    """One bulk INSERT for a chunk of people (existing rows are left alone), then queue the pending ones."""
    Delivery.objects.bulk_create(
        [
            Delivery(
                announcement=announcement,
                user_id=user_id,
                space_id=announcement.space_id,
                kind=kind,
                channel=channel,
                round=announcement.round,
                created_at=now,
                queued_at=now,
            )
            for user_id in user_ids
        ],
        ignore_conflicts=True,
    )
    pending = list(
        Delivery.objects.filter(
            space_id=announcement.space_id,
            kind=kind,
            round=announcement.round,
            channel=channel,
            user_id__in=user_ids,
            state=DeliveryState.PENDING,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    queue_for_sending(pending)
    return len(pending)
