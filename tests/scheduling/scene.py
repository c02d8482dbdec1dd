"""Set-up for scheduling tests: scheduled spaces, people holding reminders, the due-work pass."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from accounts.models import Follow, User
from rooms.models import Space
from scheduling import tasks
from scheduling.models import Notification, Reminder
from tests.rooms.scene import make_host, make_space


def make_scheduled_space(host: User | None = None, *, minutes_ahead: float = 60, **fields) -> Space:
    return make_space(
        host=host or make_host(),
        title=fields.pop("title", "Scheduled talk"),
        scheduled_for=timezone.now() + timedelta(minutes=minutes_ahead),
        **fields,
    )


def give_reminders(space: Space, count: int, *, prefix: str = "holder") -> list[User]:
    """`count` new people, each with an email address and a reminder for `space` (set-up in bulk)."""
    users = User.objects.bulk_create(
        User(username=f"{prefix}{n}_{space.pk}", email=f"{prefix}{n}.{space.pk}@example.com") for n in range(count)
    )
    Reminder.objects.bulk_create(Reminder(user=user, space=space) for user in users)
    return users


def give_followers(host: User, count: int, *, prefix: str = "follower") -> list[User]:
    """`count` new people with email addresses, all following `host` (set-up in bulk)."""
    users = User.objects.bulk_create(
        User(username=f"{prefix}{n}_{host.pk}", email=f"{prefix}{n}.{host.pk}@example.com") for n in range(count)
    )
    Follow.objects.bulk_create(Follow(follower=user, followee=host) for user in users)
    User.objects.filter(pk=host.pk).update(followers_count=F("followers_count") + count)
    return users


def due() -> dict:
    """One due-work pass, as Celery beat or the in-process ticker runs it."""
    return tasks.due_work_task()


def lead_time(space: Space, *, seconds: int = 0) -> datetime:
    """The moment lead reminders are due for `space`, shifted by `seconds`."""
    return space.scheduled_for - timedelta(minutes=settings.SPACES_REMINDER_LEAD_MIN) + timedelta(seconds=seconds)


def kinds_of(user: User) -> list[str]:
    return list(Notification.objects.filter(user=user).order_by("pk").values_list("kind", flat=True))
