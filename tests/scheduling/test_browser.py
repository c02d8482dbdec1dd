"""In real browsers: someone sets a reminder on a scheduled space, the host starts it, and the page
the first one still has open shows the notification as it happens (a toast, and the bell's count)."""

import pytest
from django.db import connections
from playwright.sync_api import Page, expect

from rooms.models import Space, SpaceState
from scheduling.models import Kind, Notification, Reminder
from tests.factories import PASSWORD, UserFactory
from tests.rooms.scene import make_host
from tests.scheduling.scene import make_scheduled_space

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 10_000


@pytest.fixture
def log_in(asgi_live_server, chromium):
    contexts, errors = [], []

    def open_page(username: str) -> Page:
        context = chromium.new_context()
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda error: errors.append(f"{username}: {error}"))
        page.goto(f"{asgi_live_server.url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{asgi_live_server.url}/")
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert errors == []
    connections.close_all()


def test_a_reminder_set_in_the_browser_shows_live_when_the_host_starts(asgi_live_server, log_in):
    # given: a host with a space scheduled an hour ahead, and lee, who opens its page
    host = make_host(username="hana", display_name="Hana")
    space = make_scheduled_space(host, minutes_ahead=60, title="Late night radio")
    UserFactory(username="lee")
    lee = log_in("lee")
    lee.goto(f"{asgi_live_server.url}/spaces/{space.pk}/")
    bell = lee.locator("#notification-bell [data-unread-count]")
    expect(bell).to_be_hidden()

    # when: lee asks to be reminded
    lee.get_by_role("button", name="Remind me").click()

    # then: the button says so at once, without leaving the page, and the reminder is stored
    expect(lee.get_by_role("button", name="Reminder set")).to_have_attribute("aria-pressed", "true")
    assert Reminder.objects.filter(space=space, user__username="lee").exists()

    # when: the host starts the space from their schedule page (lee's page stays open)
    hana = log_in("hana")
    hana.goto(f"{asgi_live_server.url}/spaces/{space.pk}/schedule/")
    hana.get_by_role("button", name="Start now").click()
    hana.wait_for_url(f"{asgi_live_server.url}/spaces/{space.pk}/")

    # then: lee's open page shows the notification as it arrives, and counts it on the bell
    toast = lee.locator(".toast")
    expect(toast).to_contain_text("Live now: Late night radio", timeout=WAIT_MS)
    expect(toast).to_contain_text("Hana started the space you asked to be reminded of.")
    expect(toast).to_have_attribute("href", f"/spaces/{space.pk}/")
    expect(bell).to_have_text("1")
    expect(bell).to_be_visible()
    # and the server agrees
    assert Space.objects.get(pk=space.pk).state == SpaceState.LIVE
    notification = Notification.objects.get(user__username="lee")
    assert (notification.kind, notification.read_at) == (Kind.LIVE, None)
