"""A space's life: create, start, edit, end, cancel, reschedule."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.eligibility import ensure_may_host
from accounts.models import User
from accounts.services import audit_record
from rooms import events, lock_objects, permissions, signals
from rooms.errors import ActionNotAllowed, AlreadyLive, InvalidSpace, WrongState
from rooms.models import TITLE_MAX, TOPIC_MAX_LENGTH, TOPICS_MAX, Participant, Role, Space, SpaceState, SpeakPolicy
from rooms.services.numbers import numbers_stage_joined


def _clean_title(title: str) -> str:
    title = " ".join((title or "").split())
    if not 1 <= len(title) <= TITLE_MAX:
        raise InvalidSpace(f"A title has 1 to {TITLE_MAX} characters; this one has {len(title)}.", code="bad_title")
    return title


def _clean_topics(topics: list[str]) -> str:
    cleaned = []
    for topic in topics or []:
        topic = " ".join(str(topic).split()).lower().replace(",", " ")
        if topic and topic not in cleaned:
            cleaned.append(topic)
    if len(cleaned) > TOPICS_MAX:
        raise InvalidSpace(f"A space has at most {TOPICS_MAX} topics.", code="too_many_topics")
    if any(len(t) > TOPIC_MAX_LENGTH for t in cleaned):
        raise InvalidSpace(f"A topic has at most {TOPIC_MAX_LENGTH} characters.", code="bad_topic")
    return ",".join(cleaned)


def _clean_schedule(scheduled_for: datetime) -> datetime:
    if timezone.is_naive(scheduled_for):
        raise InvalidSpace("Give the start time with its time zone.", code="bad_schedule")
    now = timezone.now()
    earliest = now + timedelta(minutes=settings.SPACES_SCHEDULE_MIN_AHEAD_MIN)
    latest = now + timedelta(days=settings.SPACES_SCHEDULE_MAX_AHEAD_D)
    if not earliest <= scheduled_for <= latest:
        problem = (
            "That time has passed"
            if scheduled_for <= now
            else "That's too soon"
            if scheduled_for < earliest
            else "That's too far ahead"
        )
        raise InvalidSpace(
            f"{problem}: a space can be scheduled from {settings.SPACES_SCHEDULE_MIN_AHEAD_MIN} minutes to "
            f"{settings.SPACES_SCHEDULE_MAX_AHEAD_D} days ahead.",
            code="bad_schedule",
            earliest=earliest.isoformat(),
            latest=latest.isoformat(),
        )
    return scheduled_for


def _go_live(space: Space) -> None:
    """Mark the space live under the one-live-space-per-host constraint."""
    space.state = SpaceState.LIVE
    space.started_at = timezone.now()
    try:
        with transaction.atomic():
            space.save()
    except IntegrityError as error:
        raise AlreadyLive("You already host a live space; end it before starting another.") from error
    host, _ = Participant.objects.update_or_create(
        space=space, user_id=space.host_id, defaults={"role": Role.HOST, "muted": True, "hand_raised_at": None}
    )
    numbers_stage_joined(host)


def space_create(
    *,
    host: User,
    title: str,
    topics: list[str] | None = None,
    pinned_link: str = "",
    speak_policy: str = SpeakPolicy.EVERYONE,
    captions_enabled: bool = True,
    recording_enabled: bool = False,
    scheduled_for: datetime | None = None,
) -> Space:
    """Create a space: live at once, or scheduled when `scheduled_for` is given. Only eligible hosts."""
    ensure_may_host(host)
    if speak_policy not in SpeakPolicy.values:
        raise InvalidSpace(f"Who may ask to speak is one of: {', '.join(SpeakPolicy.values)}.", code="bad_policy")
    space = Space(
        host=host,
        title=_clean_title(title),
        topics=_clean_topics(topics or []),
        pinned_link=pinned_link,
        speak_policy=speak_policy,
        # A site without a captions engine (SPACES_CAPTIONS_ENGINE="") has no captions to turn on.
        captions_enabled=captions_enabled and bool(settings.SPACES_CAPTIONS_ENGINE),
        recording_enabled=recording_enabled,
        state=SpaceState.SCHEDULED,
    )
    space.full_clean(exclude=["host", "state"])
    with transaction.atomic():
        if scheduled_for is not None:
            space.scheduled_for = _clean_schedule(scheduled_for)
            space.save()
            audit_record(actor=host, action="rooms.space.scheduled", subject=space)
        else:
            _go_live(space)
            audit_record(actor=host, action="rooms.space.started", subject=space)
            signals.space_went_live.send(Space, space=space, actor=host)
    return space


def space_start(*, actor: User, space_id: int) -> Space:
    """The host starts a scheduled space."""
    ensure_may_host(actor)
    with transaction.atomic():
        space = lock_objects.space_for_update(space_id)
        if space.host_id != actor.pk:
            raise ActionNotAllowed("Only the host can start this space.")
        if space.state != SpaceState.SCHEDULED:
            raise WrongState(f"This space is {space.state}; only a scheduled space can start.")
        _go_live(space)
        audit_record(actor=actor, action="rooms.space.started", subject=space)
        signals.space_went_live.send(Space, space=space, actor=actor)
        events.emit(events.space_updated(space), events.PUBLIC)
    return space


def space_end(*, actor: User | None, space_id: int, reason: str = "host") -> Space:
    """End a live space: by its host, by staff, or by the system (`actor=None`, e.g. the host is gone)."""
    with transaction.atomic():
        space = lock_objects.space_for_update(space_id)
        if actor is not None and not actor.is_staff:
            role = Participant.objects.filter(space=space, user=actor).values_list("role", flat=True).first()
            permissions.check("space.end", role)
        if space.state != SpaceState.LIVE:
            raise WrongState(f"This space is {space.state}; only a live space can end.")
        space.state = SpaceState.ENDED
        space.ended_at = timezone.now()
        space.end_reason = reason if actor is None else ("staff" if actor.pk != space.host_id else "host")
        space.save(update_fields=["state", "ended_at", "end_reason"])
        Participant.objects.filter(space=space, left_at__isnull=True).update(
            left_at=space.ended_at, hand_raised_at=None, invited_at=None
        )
        audit_record(actor=actor, action="rooms.space.ended", subject=space, reason=space.end_reason)
        signals.space_ended.send(Space, space=space, actor=actor)
        events.emit(events.space_ended(space, space.end_reason), events.PUBLIC)
    return space


def space_cancel(*, actor: User | None, space_id: int) -> Space:
    """The host (or staff) cancels a scheduled space; or the system (`actor=None`), when it never started."""
    with transaction.atomic():
        space = lock_objects.space_for_update(space_id)
        if actor is not None and space.host_id != actor.pk and not actor.is_staff:
            raise ActionNotAllowed("Only the host can cancel this space.")
        if space.state != SpaceState.SCHEDULED:
            raise WrongState(f"This space is {space.state}; only a scheduled space can be cancelled.")
        space.state = SpaceState.CANCELLED
        space.ended_at = timezone.now()
        space.end_reason = "cancelled"
        space.save(update_fields=["state", "ended_at", "end_reason"])
        audit_record(actor=actor, action="rooms.space.cancelled", subject=space)
        signals.space_cancelled.send(Space, space=space, actor=actor)
        events.emit(events.space_ended(space, "cancelled"), events.PUBLIC)
    return space


def space_reschedule(*, actor: User, space_id: int, scheduled_for: datetime) -> Space:
    """The host (or staff) moves a scheduled space to a new time, in the same window as scheduling it.

    Reminder holders are told, and the reminders follow the new time.
    """
    with transaction.atomic():
        space = lock_objects.space_for_update(space_id)
        if space.host_id != actor.pk and not actor.is_staff:
            raise ActionNotAllowed("Only the host can reschedule this space.")
        if space.state != SpaceState.SCHEDULED:
            raise WrongState(f"This space is {space.state}; only a scheduled space can be rescheduled.")
        scheduled_for = _clean_schedule(scheduled_for)
        if scheduled_for == space.scheduled_for:
            return space
        previous, space.scheduled_for = space.scheduled_for, scheduled_for
        space.save(update_fields=["scheduled_for"])
        audit_record(
            actor=actor,
            action="rooms.space.rescheduled",
            subject=space,
            previous=previous.isoformat() if previous else None,
            scheduled_for=scheduled_for.isoformat(),
        )
        signals.space_rescheduled.send(Space, space=space, actor=actor)
        events.emit(events.space_updated(space), events.PUBLIC)
    return space


EDITABLE = {"title", "topics", "pinned_link", "speak_policy"}


def space_edit(*, actor: User, space_id: int, **changes) -> Space:
    """Host or co-hosts change the title, topics, pinned link (and the host, who may ask to speak)."""
    unknown = set(changes) - EDITABLE
    if unknown:
        raise InvalidSpace(f"These can't be edited: {', '.join(sorted(unknown))}.", code="not_editable")
    with transaction.atomic():
        space = lock_objects.space_for_update(space_id)
        role = None
        if space.host_id == actor.pk:
            role = Role.HOST
        else:
            role = Participant.objects.filter(space=space, user=actor).values_list("role", flat=True).first()
        permissions.check("space.edit", role)
        if space.state not in (SpaceState.SCHEDULED, SpaceState.LIVE):
            raise WrongState(f"This space has {space.state}; it can't be edited.")
        if "speak_policy" in changes and role != Role.HOST:
            raise ActionNotAllowed("Only the host decides who may ask to speak.")
        if "title" in changes:
            space.title = _clean_title(changes["title"])
        if "topics" in changes:
            space.topics = _clean_topics(changes["topics"])
        if "pinned_link" in changes:
            space.pinned_link = changes["pinned_link"] or ""
        if "speak_policy" in changes:
            if changes["speak_policy"] not in SpeakPolicy.values:
                raise InvalidSpace(
                    f"Who may ask to speak is one of: {', '.join(SpeakPolicy.values)}.", code="bad_policy"
                )
            space.speak_policy = changes["speak_policy"]
        space.full_clean(exclude=["host", "state"])
        space.save()
        audit_record(actor=actor, action="rooms.space.edited", subject=space, fields=sorted(changes))
        events.emit(events.space_updated(space), events.PUBLIC)
    return space
