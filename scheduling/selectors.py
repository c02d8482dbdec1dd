"""Reads of reminders, notifications and preferences shared by pages, the API and the services."""

from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts.models import User
from rooms.models import Space, SpaceState
from scheduling.models import (
    Announcement,
    Channel,
    Kind,
    Notification,
    NotificationPreference,
    Occasion,
    Reminder,
    preference_field,
)
from spaces_site.keyset import KeysetPage, keyset_page


def schedule_round_expression(space_ref: str = "pk"):
    """The reschedule count of the space at `OuterRef(space_ref)`, as a query expression."""
    latest = (
        Announcement.objects.filter(space=OuterRef(space_ref), occasion=Occasion.RESCHEDULED)
        .order_by("-round")
        .values("round")[:1]
    )
    return Coalesce(Subquery(latest), 0)


def schedule_round(*, space_id: int) -> int:
    """How many times the space was rescheduled: the round its lead reminders belong to."""
    latest = (
        Announcement.objects.filter(space_id=space_id, occasion=Occasion.RESCHEDULED)
        .order_by("-round")
        .values_list("round", flat=True)
        .first()
    )
    return latest or 0


def schedule_rounds(*, space_ids: list[int]) -> dict[int, int]:
    """`schedule_round` for many spaces in one query."""
    rounds = dict.fromkeys(space_ids, 0)
    for space_id, round_ in (
        Announcement.objects.filter(space_id__in=space_ids, occasion=Occasion.RESCHEDULED)
        .order_by("space_id", "round")
        .values_list("space_id", "round")
    ):
        rounds[space_id] = round_
    return rounds


def has_reminder(*, user: User, space: Space) -> bool:
    if not user.is_authenticated:
        return False
    return Reminder.objects.filter(user=user, space=space).exists()


def reminded_space_ids(*, user: User) -> set[int]:
    """The scheduled spaces this person asked to be reminded of (for buttons on pages and cards)."""
    if not user.is_authenticated:
        return set()
    return set(Reminder.objects.filter(user=user, space__state=SpaceState.SCHEDULED).values_list("space_id", flat=True))


def reminder_count(*, space: Space) -> int:
    return Reminder.objects.filter(space=space).count()


def notifications_of(*, user: User, unread_only: bool = False) -> QuerySet[Notification]:
    notifications = Notification.objects.filter(user=user).order_by("-created_at", "-pk")
    if unread_only:
        notifications = notifications.filter(read_at__isnull=True)
    return notifications


def notifications_page(
    *, user: User, before: str = "", size: int = 30, unread_only: bool = False
) -> KeysetPage[Notification]:
    """A page of `notifications_of`, newest first, after the cursor `before` (`spaces_site.keyset`:
    through the `notification_list` index, with no count of them all); `InvalidCursor` (400) for a
    cursor that isn't one."""
    return keyset_page(notifications_of(user=user, unread_only=unread_only), before=before, size=size)


def unread_count(*, user: User) -> int:
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def preferences_of(*, user: User) -> dict[str, dict[str, bool]]:
    """Every kind with each channel on or off: `{"reminder": {"in_app": True, "email": False}, ...}`."""
    row = NotificationPreference.objects.filter(user=user).first()
    return {
        kind: {
            channel: row.allows(kind, channel) if row else NotificationPreference.default(kind, channel)
            for channel in Channel.values
        }
        for kind in Kind.values
    }


def willing(users: QuerySet[User], *, kind: str, channel: str) -> QuerySet[User]:
    """Those of `users` who take `kind` on `channel`: active, not turned off, with an address for email."""
    field = preference_field(kind, channel)
    users = users.filter(is_active=True)
    if NotificationPreference.default(kind, channel):
        users = users.exclude(Exists(NotificationPreference.objects.filter(user=OuterRef("pk"), **{field: False})))
    else:
        users = users.filter(Exists(NotificationPreference.objects.filter(user=OuterRef("pk"), **{field: True})))
    if channel == Channel.EMAIL:
        users = users.exclude(email="")
    return users
