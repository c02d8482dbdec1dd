"""A newcomer's first hour in real browsers: a page shows only what its viewer can do now, a Leave
is seen at once, and the phone layout and the start form hold together (issue 15, items 2-5)."""

import time
from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from playwright.sync_api import Page, expect

from rooms import services
from rooms.models import Role
from tests.browsers import WAIT_MS
from tests.factories import PASSWORD, UserFactory
from tests.media.browsers import microphone_chromium
from tests.media.clients import write_tone
from tests.rooms.scene import make_host, make_space, seat

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LEAVE_SEEN_WITHIN_MS = 2_000


def on_stage(page: Page, username: str):
    return page.locator(f"#stage li.speaker[data-username={username}]")


def test_the_reaction_bar_shows_only_to_who_may_react_now(asgi_live_server, request):
    # given: a live space, a scheduled one and an ended one, a member and a visitor
    host = make_host(username="hana")
    live = make_space(host, title="Live now")
    scheduled = services.space_create(host=make_host(), title="Later", scheduled_for=timezone.now() + timedelta(days=1))
    ended = make_space(make_host(), title="Over")
    services.space_end(actor=None, space_id=ended.pk)
    UserFactory(username="ada")
    # the browsers start after the set-up: ending a space sends its event from this thread
    browsers, chromium = request.getfixturevalue("browsers"), request.getfixturevalue("chromium")
    member = browsers.log_in("ada")
    visitor = chromium.new_context().new_page()

    # then: the member in the live space can react once connected
    member.goto(f"{asgi_live_server.url}/spaces/{live.pk}/")
    expect(member.locator("#reactions")).to_be_visible(timeout=WAIT_MS)
    # and nobody sees it where they can't: logged out, before the start, after the end
    visitor.goto(f"{asgi_live_server.url}/spaces/{live.pk}/")
    expect(visitor.get_by_role("link", name="Log in to take part")).to_be_visible(timeout=WAIT_MS)
    expect(visitor.locator(".reaction")).to_have_count(0)
    for space in (scheduled, ended):
        member.goto(f"{asgi_live_server.url}/spaces/{space.pk}/")
        expect(member.locator("h1")).to_have_text(space.title)
        expect(member.locator(".reaction")).to_have_count(0)
    visitor.context.close()
    assert browsers.errors == []


def test_a_speaker_who_presses_leave_is_gone_from_the_hosts_page_at_once(asgi_live_server, browsers):
    # given: a live space with a speaker on stage, both on its page
    host_user = make_host(username="hana")
    space = make_space(host_user, title="Short stay")
    seat(space, UserFactory(username="lee"), Role.SPEAKER)
    host, speaker = browsers.log_in("hana"), browsers.log_in("lee")
    url = f"{asgi_live_server.url}/spaces/{space.pk}/"
    host.goto(url)
    speaker.goto(url)
    expect(on_stage(host, "lee")).to_be_visible(timeout=WAIT_MS)
    leave = speaker.get_by_role("button", name="Leave", exact=True)
    leave.wait_for()

    # when: the speaker presses Leave
    pressed = time.monotonic()
    leave.click()

    # then: their tile leaves the host's stage within two seconds (not after the reconnect grace)
    expect(on_stage(host, "lee")).to_have_count(0, timeout=LEAVE_SEEN_WITHIN_MS)
    assert time.monotonic() - pressed < LEAVE_SEEN_WITHIN_MS / 1000 + 0.5
    assert browsers.errors == []


def test_on_a_phone_the_header_keeps_each_link_on_one_line(asgi_live_server, chromium):
    UserFactory(username="ada", is_staff=True)
    context = chromium.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.goto(f"{asgi_live_server.url}/accounts/login/")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{asgi_live_server.url}/")
    for name in ("My tickets", "Log out"):
        item = page.locator(".topnav").get_by_text(name, exact=True)
        box = item.bounding_box()
        line = float(item.evaluate("node => parseFloat(getComputedStyle(node).lineHeight) || 20"))
        assert box["height"] < 1.6 * line, (name, box, line)  # one line, not two
    # and the header fits the screen
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    context.close()


def test_the_start_form_says_schedule_when_a_time_is_set_and_its_checkboxes_lead_their_labels(
    asgi_live_server, browsers
):
    make_host(username="hana")
    page = browsers.log_in("hana")
    page.goto(f"{asgi_live_server.url}/spaces/new/")
    button = page.locator("#space-new-form button[type=submit]")
    expect(button).to_have_text("Start your space")
    page.fill("input[name=scheduled_for]", (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"))
    expect(button).to_have_text("Schedule your space")
    page.fill("input[name=scheduled_for]", "")
    expect(button).to_have_text("Start your space")
    # each checkbox sits at the start of its row, before its label, on the same line
    for name in ("recording_enabled", "captions_enabled"):
        box = page.locator(f"input[name={name}]")
        if not box.count():
            continue  # no captions engine on this site: no such control
        label = page.locator(f"label[for=id_{name}]")
        field = page.locator(f".field:has(input[name={name}])")
        b, lb, fb = box.bounding_box(), label.bounding_box(), field.bounding_box()
        assert b["x"] - fb["x"] < 4, (name, b, fb)
        assert b["x"] + b["width"] <= lb["x"], (name, b, lb)
        assert abs((b["y"] + b["height"] / 2) - (lb["y"] + lb["height"] / 2)) < 8, (name, b, lb)
    assert browsers.errors == []


def test_what_changes_for_you_is_announced_in_the_live_status(asgi_live_server, tmp_path, monkeypatch):
    # given: a listener with a hand up (with a microphone), and the host, both on the space's page
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop holds this thread
    space = make_space(make_host(username="hana"), title="Say it")
    seat(space, UserFactory(username="lee"), hand_raised_at=timezone.now())
    url = f"{asgi_live_server.url}/spaces/{space.pk}/"
    errors: list[str] = []

    def log_in(chromium, username: str) -> Page:
        page = chromium.new_context().new_page()
        page.on("pageerror", lambda error: errors.append(f"{username}: {error}"))
        page.goto(f"{asgi_live_server.url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{asgi_live_server.url}/")
        page.goto(url)
        return page

    with microphone_chromium(write_tone(tmp_path / "a440.wav", 440, seconds=5)) as chromium:
        host, listener = log_in(chromium, "hana"), log_in(chromium, "lee")
        status = listener.locator("#status[aria-live]")
        # the listener's socket is open (a change sent before it opens is not theirs to hear: on a
        # loaded machine the host's click could come first)
        expect(status).not_to_contain_text("Connecting")

        # when: the host approves them, they unmute, and the host mutes them
        host.locator("#hands li[data-hand=lee]").get_by_role("button", name="Approve").click()
        # then: each change is said where a screen reader announces it
        expect(status).to_have_text("You're on stage as a speaker.")
        listener.get_by_role("button", name="🎙 Unmute").click()
        expect(status).to_have_text("You're unmuted: everyone can hear you.")
        on_stage(host, "lee").get_by_role("button", name="Mute", exact=True).click()
        expect(status).to_have_text("You're muted.")
    connections.close_all()
    assert errors == []
