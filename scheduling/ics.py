"""An iCalendar (RFC 5545) file for a scheduled space: one event, its start in UTC."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings

from rooms.models import Space, SpaceState

# A space has no set length; calendars get an hour.
EVENT_LENGTH = timedelta(hours=1)
LINE_OCTETS = 75


def _escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def _fold(line: str) -> list[str]:
    """Lines longer than 75 octets continue on the next line after a space (RFC 5545 §3.1)."""
    encoded, parts = line.encode(), []
    while len(encoded) > LINE_OCTETS:
        cut = LINE_OCTETS
        while cut > 0 and (encoded[cut] & 0xC0) == 0x80:  # don't split a UTF-8 character
            cut -= 1
        parts.append(encoded[:cut].decode())
        encoded = b" " + encoded[cut:]
    parts.append(encoded.decode())
    return parts


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def space_ics(*, space: Space, sequence: int, now: datetime) -> str:
    """The calendar file of a space with a scheduled time; cancelled spaces say so (STATUS:CANCELLED)."""
    start = space.scheduled_for
    url = f"{settings.SITE_URL}{space.get_absolute_url()}"
    domain = urlsplit(settings.SITE_URL).hostname or "spaces"
    status = "CANCELLED" if space.state == SpaceState.CANCELLED else "CONFIRMED"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Spaces//Scheduled spaces//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:space-{space.pk}@{domain}",
        f"DTSTAMP:{_utc(now)}",
        f"DTSTART:{_utc(start)}",
        f"DTEND:{_utc(start + EVENT_LENGTH)}",
        f"SEQUENCE:{sequence}",
        f"STATUS:{status}",
        f"SUMMARY:{_escape(space.title)}",
        f"DESCRIPTION:{_escape(f'A live audio space hosted by {space.host.name}. Join at {url}')}",
        f"URL:{url}",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(f"{part}\r\n" for line in lines for part in _fold(line))
