"""The calendar file escapes whatever a host types: line breaks (a lone CR too), commas, semicolons and
backslashes in a title or a display name stay inside their property, and a calendar reads them back."""

import pytest
from django.test import Client
from icalendar import Calendar

from rooms.models import Space
from tests.rooms.scene import make_host
from tests.scheduling.scene import make_scheduled_space

pytestmark = pytest.mark.django_db

TITLE = "Jazz\rblues\r\nsoul, funk; and \\ more"
DISPLAY_NAME = "Ada\rEND:VEVENT, the; host\r\nBEGIN:VEVENT"


def as_read(text: str) -> str:
    # RFC 5545 has one escaped line break (\n) and no escape for a lone CR: each break comes back as \n.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def test_a_lone_cr_crlf_and_commas_in_a_title_and_a_display_name_read_back_as_typed():
    # given a scheduled space whose stored title and host's display name hold a lone CR, a CRLF and commas
    host = make_host(display_name=DISPLAY_NAME)
    space = make_scheduled_space(host)
    Space.objects.filter(pk=space.pk).update(title=TITLE)

    # when anyone downloads its calendar file
    answer = Client().get(f"/spaces/{space.pk}/calendar.ics")
    body = answer.content

    # then a calendar library reads back one event with the same text
    assert answer.status_code == 200
    calendar = Calendar.from_ical(body)
    events = calendar.walk("VEVENT")
    assert len(events) == 1
    assert str(events[0]["SUMMARY"]) == as_read(TITLE)
    url = f"http://127.0.0.1:8000/spaces/{space.pk}/"
    assert str(events[0]["DESCRIPTION"]) == as_read(f"A live audio space hosted by {DISPLAY_NAME}. Join at {url}")
    assert str(events[0]["UID"]) == f"space-{space.pk}@127.0.0.1"
    # and no CR or LF reaches the file except as the CRLF that ends each (folded) line
    assert body.endswith(b"\r\n")
    assert b"\r" not in body.replace(b"\r\n", b"") and b"\n" not in body.replace(b"\r\n", b"")
    lines = body.split(b"\r\n")
    assert all(len(line) <= 75 for line in lines)
    assert lines.count(b"BEGIN:VEVENT") == 1 and lines.count(b"END:VEVENT") == 1
