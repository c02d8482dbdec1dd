"""Pages: the reminder button on a space and on cards (with and without JavaScript), the bell and the
notifications list, notification settings, the calendar file, and the host's schedule page."""

from datetime import UTC, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from rooms import services as rooms_services
from rooms.models import Space, SpaceState
from scheduling import services
from scheduling.models import Kind, Notification, NotificationPreference, Reminder
from tests.factories import UserFactory
from tests.rooms.scene import make_space
from tests.scheduling.scene import make_scheduled_space

pytestmark = pytest.mark.django_db


def browser(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def test_the_space_page_offers_a_reminder_to_each_viewer_as_fits_them():
    space = make_scheduled_space(title="Soon")
    ada, bo = UserFactory(), UserFactory()
    services.reminder_set(user=bo, space_id=space.pk)

    for_ada = browser(ada).get(f"/spaces/{space.pk}/").content.decode()
    for_bo = browser(bo).get(f"/spaces/{space.pk}/").content.decode()
    for_host = browser(space.host).get(f"/spaces/{space.pk}/").content.decode()
    for_visitor = browser().get(f"/spaces/{space.pk}/").content.decode()

    assert 'aria-pressed="false">Remind me</button>' in for_ada
    assert 'aria-pressed="true">Reminder set</button>' in for_bo
    assert f'action="/spaces/{space.pk}/reminder/delete/"' in for_bo
    assert "Manage schedule" in for_host and "Remind me" not in for_host
    assert "Log in for a reminder" in for_visitor
    for page in (for_ada, for_bo, for_host, for_visitor):
        assert f'href="/spaces/{space.pk}/calendar.ics"' in page


def test_a_live_space_has_no_reminder_button():
    space = make_space()

    page = browser(UserFactory()).get(f"/spaces/{space.pk}/").content.decode()

    assert "Remind me" not in page and "calendar.ics" not in page


def test_the_reminder_form_works_without_javascript_and_comes_back_where_it_was():
    space = make_scheduled_space(title="Soon")
    ada = UserFactory()
    client = browser(ada)

    set_page = client.post(f"/spaces/{space.pk}/reminder/", {"next": "/"}, follow=True)
    unset_page = client.post(f"/spaces/{space.pk}/reminder/delete/", follow=True)
    refused = browser(space.host).post(f"/spaces/{space.pk}/reminder/", follow=True)
    missing = client.post("/spaces/999999/reminder/")

    assert set_page.redirect_chain == [("/", 302)]
    assert "Reminder set: we&#x27;ll tell you before it starts and when it goes live." in set_page.content.decode()
    assert unset_page.redirect_chain == [(f"/spaces/{space.pk}/", 302)]
    assert "Reminder removed." in unset_page.content.decode()
    assert "You host this space: you&#x27;ll be reminded before it starts anyway." in refused.content.decode()
    assert missing.status_code == 404
    assert not Reminder.objects.exists()
    assert browser().post(f"/spaces/{space.pk}/reminder/").status_code == 302  # to the login page


def test_cards_in_the_feed_and_in_search_show_each_reminder_state():
    reminded = make_scheduled_space(title="Remembered talk")
    other = make_scheduled_space(title="Other talk")
    ada = UserFactory()
    services.reminder_set(user=ada, space_id=reminded.pk)
    client = browser(ada)

    home = client.get("/").content.decode()
    found = client.get("/spaces/?q=talk").content.decode()

    for page in (home, found):
        assert page.count('aria-pressed="true">Reminder set</button>') == 1
        assert page.count('aria-pressed="false">Remind me</button>') == 1
        assert f'data-api="/api/spaces/{reminded.pk}/reminder/"' in page
        assert f'href="/spaces/{other.pk}/calendar.ics"' in page


def test_the_bell_counts_unread_notifications_and_the_list_shows_them():
    ada = UserFactory()
    space = make_scheduled_space(title="Soon")
    for n in range(3):
        Notification.objects.create(
            user=ada, kind=Kind.REMINDER, space=space, title=f"Heads up {n}", body="Body", url=f"/spaces/{space.pk}/"
        )
    client = browser(ada)

    home = client.get("/").content.decode()
    listing = client.get("/notifications/").content.decode()
    client.post("/notifications/read/")
    after = client.get("/").content.decode()

    assert 'aria-label="Notifications: 3 unread"' in home
    assert "data-unread-count>3</span>" in home
    assert listing.index("Heads up 2") < listing.index("Heads up 1") < listing.index("Heads up 0")
    assert listing.count('class="notification unread"') == 3
    assert 'aria-label="Notifications: 0 unread"' in after and "data-unread-count hidden>0</span>" in after
    assert browser().get("/notifications/").status_code == 302


def test_notification_settings_page_shows_and_saves_each_kind_and_channel():
    ada = UserFactory()
    client = browser(ada)

    page = client.get("/settings/notifications/").content.decode()
    saved = client.post("/settings/notifications/", {"in_app_reminder": "on", "email_live": "on"}, follow=True)

    assert page.count('type="checkbox"') == 12
    assert 'name="email_host_live"' in page and 'name="email_host_live" checked' not in page
    assert 'name="email_reminder" id="id_email_reminder" checked' in page
    assert "Your notification settings are saved." in saved.content.decode()
    row = NotificationPreference.objects.get(user=ada)
    assert (row.in_app_reminder, row.email_reminder, row.email_live, row.in_app_live) == (True, False, True, False)


def test_every_scheduled_space_has_a_calendar_file_with_its_start_in_utc():
    start = (timezone.now() + timedelta(days=2)).replace(microsecond=0)
    space = rooms_services.space_create(
        host=make_scheduled_space().host, title="Jazz, blues; and \\ more", scheduled_for=start
    )

    answer = browser().get(f"/spaces/{space.pk}/calendar.ics")
    text = answer.content.decode()

    assert answer.status_code == 200
    assert answer["Content-Type"] == "text/calendar; charset=utf-8"
    assert answer["Content-Disposition"] == f'attachment; filename="space-{space.pk}.ics"'
    lines = text.split("\r\n")
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-2] == "END:VCALENDAR" and lines[-1] == ""
    assert f"UID:space-{space.pk}@127.0.0.1" in lines
    assert f"DTSTART:{start.astimezone(UTC):%Y%m%dT%H%M%SZ}" in lines
    assert f"DTEND:{(start + timedelta(hours=1)).astimezone(UTC):%Y%m%dT%H%M%SZ}" in lines
    assert f"URL:http://127.0.0.1:8000/spaces/{space.pk}/" in lines
    assert "SUMMARY:Jazz\\, blues\\; and \\\\ more" in lines
    assert "SEQUENCE:0" in lines and "STATUS:CONFIRMED" in lines
    assert all(len(line.encode()) <= 75 for line in lines)
    unfolded = text.replace("\r\n ", "")
    assert f"Join at http://127.0.0.1:8000/spaces/{space.pk}/" in unfolded


def test_the_calendar_file_follows_a_reschedule_and_a_cancellation():
    space = make_scheduled_space()
    later = space.scheduled_for + timedelta(hours=3)
    rooms_services.space_reschedule(actor=space.host, space_id=space.pk, scheduled_for=later)
    moved = browser().get(f"/spaces/{space.pk}/calendar.ics").content.decode()
    rooms_services.space_cancel(actor=space.host, space_id=space.pk)
    cancelled = browser().get(f"/spaces/{space.pk}/calendar.ics").content.decode()
    never_scheduled = browser().get(f"/spaces/{make_space().pk}/calendar.ics")

    assert f"DTSTART:{later.astimezone(UTC):%Y%m%dT%H%M%SZ}" in moved and "SEQUENCE:1" in moved
    assert "STATUS:CANCELLED" in cancelled
    assert never_scheduled.status_code == 404
    assert browser().get("/spaces/999999/calendar.ics").status_code == 404


def test_the_host_reschedules_in_their_own_time_zone_from_the_schedule_page():
    space = make_scheduled_space()
    wanted_local = (timezone.now() + timedelta(days=3)).replace(hour=18, minute=0, second=0, microsecond=0)
    client = browser(space.host)

    page = client.get(f"/spaces/{space.pk}/schedule/")
    # a browser two hours east of UTC: getTimezoneOffset() is -120
    moved = client.post(
        f"/spaces/{space.pk}/schedule/",
        {"action": "reschedule", "scheduled_for": wanted_local.strftime("%Y-%m-%dT%H:%M"), "tz_offset": "-120"},
        follow=True,
    )

    assert page.status_code == 200 and "Start now" in page.content.decode()
    assert "New time saved; everyone with a reminder is told." in moved.content.decode()
    assert Space.objects.get(pk=space.pk).scheduled_for == wanted_local.replace(hour=16)


def test_the_schedule_page_shows_a_refused_time_and_keeps_the_old_one():
    space = make_scheduled_space()
    before = space.scheduled_for

    answer = browser(space.host).post(
        f"/spaces/{space.pk}/schedule/",
        {"action": "reschedule", "scheduled_for": "2001-01-01T10:00", "tz_offset": "0"},
    )

    assert answer.status_code == 400
    assert "That time has passed: a space can be scheduled from 15 minutes to 30 days ahead." in answer.content.decode()
    assert Space.objects.get(pk=space.pk).scheduled_for == before


def test_the_host_starts_or_cancels_from_the_schedule_page_and_nobody_else_may():
    to_start, to_cancel = make_scheduled_space(), make_scheduled_space()
    stranger = browser(UserFactory())

    refused = stranger.post(f"/spaces/{to_start.pk}/schedule/", {"action": "start"})
    started = browser(to_start.host).post(f"/spaces/{to_start.pk}/schedule/", {"action": "start"})
    cancelled = browser(to_cancel.host).post(f"/spaces/{to_cancel.pk}/schedule/", {"action": "cancel"}, follow=True)
    again = browser(to_cancel.host).post(f"/spaces/{to_cancel.pk}/schedule/", {"action": "start"}, follow=True)

    assert refused.status_code == 403 and "Only the host" in refused.content.decode()
    assert started.status_code == 302 and started["Location"] == f"/spaces/{to_start.pk}/"
    assert Space.objects.get(pk=to_start.pk).state == SpaceState.LIVE
    assert "The space is cancelled; everyone with a reminder is told." in cancelled.content.decode()
    assert Space.objects.get(pk=to_cancel.pk).state == SpaceState.CANCELLED
    assert "This space is cancelled; only a scheduled space can start." in again.content.decode()
