"""People's own choices: reminders on spaces, notification settings, reading notifications."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Block, User
from rooms import lock_objects as rooms_locks
from rooms.errors import SpaceNotFound
from rooms.models import Space, SpaceState
from scheduling import selectors
from scheduling.errors import (
    InvalidPreferences,
    NotificationNotFound,
    OwnSpace,
    ReminderNotAllowed,
    ReminderWrongState,
)
from scheduling.models import Channel, Delivery, DeliveryState, Kind, Notification, NotificationPreference, Reminder
from scheduling.models import preference_field as field_for


def _space_for_update(space_id: int) -> Space:
    try:
        return rooms_locks.space_for_update(space_id)
    except Space.DoesNotExist as error:
        raise SpaceNotFound(f"No space with id {space_id}.") from error


def reminder_set(*, user: User, space_id: int) -> bool:
    """`user` wants to be reminded of a scheduled space. Idempotent: False if they already were.

    Holds the space's row lock, so a reminder can't slip in beside a start or
    a cancellation and miss its notice.
    """
    with transaction.atomic():
        space = _space_for_update(space_id)
        if space.host_id == user.pk:
            raise OwnSpace("You host this space: you'll be reminded before it starts anyway.")
        if space.state != SpaceState.SCHEDULED:
            detail = (
                "This space is live now: join it instead."
                if space.state == SpaceState.LIVE
                else f"This space has {space.state}; reminders are for spaces that haven't started."
            )
            raise ReminderWrongState(detail)
        if Block.objects.filter(blocker_id=space.host_id, blocked=user).exists():
            raise ReminderNotAllowed("You can't set a reminder for this space.")
        try:
            with transaction.atomic():
                Reminder.objects.create(user=user, space=space)
        except IntegrityError:
            return False
    return True


def reminder_unset(*, user: User, space_id: int) -> bool:
    """`user` no longer wants reminders of this space; what was planned for them and not sent is dropped.

    Idempotent: False if they had none.
    """
    if not Space.objects.filter(pk=space_id).exists():
        raise SpaceNotFound(f"No space with id {space_id}.")
    with transaction.atomic():
        deleted, _ = Reminder.objects.filter(user=user, space_id=space_id).delete()
        if deleted:
            Delivery.objects.filter(
                user=user,
                space_id=space_id,
                state=DeliveryState.PENDING,
                kind__in=[Kind.REMINDER, Kind.LIVE, Kind.RESCHEDULED, Kind.CANCELLED],
            ).update(state=DeliveryState.SKIPPED, error="The reminder was removed.")
    return bool(deleted)


def preferences_update(*, user: User, changes: dict) -> dict[str, dict[str, bool]]:
    """Turn kinds of notification on or off per channel: `{"host_live": {"email": False}}`.

    Returns every kind and channel as they now stand.
    """
    if not isinstance(changes, dict) or not changes:
        raise InvalidPreferences('Send at least one kind with the channels to change, e.g. {"live": {"email": false}}.')
    fields = {}
    for kind, channels in changes.items():
        if kind not in Kind.values:
            raise InvalidPreferences(f"Unknown kind {kind!r}; kinds are: {', '.join(Kind.values)}.")
        if not isinstance(channels, dict) or not channels:
            raise InvalidPreferences(f'For {kind!r}, send the channels to change, e.g. {{"email": false}}.')
        for channel, on in channels.items():
            if channel not in Channel.values:
                raise InvalidPreferences(f"Unknown channel {channel!r}; channels are: {', '.join(Channel.values)}.")
            if not isinstance(on, bool):
                raise InvalidPreferences(f"{kind}.{channel} is true or false, not {on!r}.")
            fields[field_for(kind, channel)] = on
    with transaction.atomic():
        NotificationPreference.objects.update_or_create(user=user, defaults=fields)
    return selectors.preferences_of(user=user)


def notifications_mark_read(*, user: User, ids: list[int] | None = None) -> int:
    """Mark these notifications of `user` read (all of them when `ids` is None). Returns how many changed."""
    notifications = Notification.objects.filter(user=user)
    if ids is not None:
        wanted = set(ids)
        found = set(notifications.filter(pk__in=wanted).values_list("pk", flat=True))
        missing = sorted(wanted - found)
        if missing:
            raise NotificationNotFound(f"You have no notification with id {missing[0]}.", ids=missing)
        notifications = notifications.filter(pk__in=wanted)
    return notifications.filter(read_at__isnull=True).update(read_at=timezone.now())
