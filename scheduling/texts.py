"""What each kind of notification says: one wording for the bell, the list and the email.

Times in text are written in UTC with the zone named; pages show the space's
time again in the viewer's own zone (`static/js/time.js`).
"""

from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse

from rooms.models import Space
from scheduling.models import Kind


@dataclass(frozen=True)
class Wording:
    title: str
    body: str
    url: str  # a path on this site


def utc_time(when: datetime | None) -> str:
    return when.strftime("%a %-d %b %Y, %H:%M UTC") if when else "an unknown time"


def _minutes_until(when: datetime, now: datetime) -> int:
    return max(1, round((when - now).total_seconds() / 60))


def wording(*, kind: str, space: Space, now: datetime) -> Wording:
    """The title, body and link of a notification of `kind` about `space`, as of `now`."""
    title, host = space.title, space.host.name
    url = space.get_absolute_url()
    if kind == Kind.REMINDER:
        minutes = _minutes_until(space.scheduled_for, now)
        return Wording(
            f"Starting in {minutes} min: {title}",
            f"{host}'s space “{title}” starts at {utc_time(space.scheduled_for)}.",
            url,
        )
    if kind == Kind.HOST_REMINDER:
        minutes = _minutes_until(space.scheduled_for, now)
        return Wording(
            f"Your space starts in {minutes} min",
            f"“{title}” is scheduled for {utc_time(space.scheduled_for)}. Start it from its page when you're ready.",
            reverse("space-schedule", kwargs={"space_id": space.pk}),
        )
    if kind == Kind.LIVE:
        return Wording(f"Live now: {title}", f"{host} started the space you asked to be reminded of.", url)
    if kind == Kind.HOST_LIVE:
        return Wording(f"{host} is live now", f"“{title}”: join in.", url)
    if kind == Kind.CANCELLED:
        refund = " Paid tickets are refunded." if space.is_ticketed else ""
        return Wording(
            f"Cancelled: {title}",
            f"{host}'s space planned for {utc_time(space.scheduled_for)} won't take place.{refund}",
            url,
        )
    if kind == Kind.RESCHEDULED:
        return Wording(
            f"New time: {title}",
            f"{host} moved “{title}” to {utc_time(space.scheduled_for)}. Your reminder moves with it.",
            url,
        )
    raise ValueError(f"No wording for notification kind {kind!r}.")
