"""An iCalendar (RFC 5545) file for a scheduled space: one event, its start in UTC.

The icalendar library writes it: it escapes line breaks (a lone CR too), commas, semicolons and
backslashes in what hosts type, and folds long lines, so a title or a display name stays inside its
property whatever it holds.
"""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from icalendar import Calendar, Event

from rooms.models import Space, SpaceState

# A space has no set length; calendars get an hour.
EVENT_LENGTH = timedelta(hours=1)


def space_ics(*, space: Space, sequence: int, now: datetime) -> str:
    """The calendar file of a space with a scheduled time; cancelled spaces say so (STATUS:CANCELLED)."""
    start = space.scheduled_for.astimezone(UTC)
    url = f"{settings.SITE_URL}{space.get_absolute_url()}"
    domain = urlsplit(settings.SITE_URL).hostname or "spaces"
    event = Event()
    event.add("uid", f"space-{space.pk}@{domain}")
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", start)
    event.add("dtend", start + EVENT_LENGTH)
    event.add("sequence", sequence)
    event.add("status", "CANCELLED" if space.state == SpaceState.CANCELLED else "CONFIRMED")
    event.add("summary", space.title)
    event.add("description", f"A live audio space hosted by {space.host.name}. Join at {url}")
    event.add("url", url)
    calendar = Calendar()
    calendar.add("version", "2.0")
    calendar.add("prodid", "-//Spaces//Scheduled spaces//EN")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add_component(event)
    return calendar.to_ical().decode()
