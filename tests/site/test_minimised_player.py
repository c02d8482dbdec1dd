"""The minimised player (issue 15, item 8): a live space keeps playing while its listener browses the
site. Turbo Drive swaps the pages in place and keeps the player (#player) from page to page, with the
space's socket and its RTCPeerConnection; the other pages' scripts still work after such a visit, and
everything still works without JavaScript."""

import time

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from accounts.models import Follow
from rooms import services
from rooms.models import Participant, Space
from scheduling.models import Reminder
from tests.browsers import WAIT_MS
from tests.factories import PASSWORD, UserFactory
from tests.media.browsers import microphone_chromium
from tests.media.clients import write_tone
from tests.rooms.scene import make_host, make_space
from tests.site.test_accessibility import violations
from tests.topology.test_media_worker_restart import KEEP_PEERS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Every websocket the page opens, kept where the test can count them.
KEEP_SOCKETS = """
(() => {
  const Original = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = function (...args) {
    const socket = new Original(...args);
    window.__sockets.push(socket);
    return socket;
  };
  window.WebSocket.prototype = Original.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
})();
"""
# Audio packets received so far on the connection the page listened with first (-1: not connected).
RECEIVED = """
async () => {
  const pc = window.__listening;
  if (!pc || pc.connectionState !== "connected") return -1;
  let received = 0;
  (await pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") received += r.packetsReceived || 0;
  });
  return received;
}
"""
# Waits until a connected peer connection has received audio, and remembers it as the one.
FIRST_AUDIO = """
async () => {
  for (const pc of window.__peers || []) {
    if (pc.connectionState !== "connected") continue;
    let received = 0;
    (await pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "audio") received += r.packetsReceived || 0;
    });
    if (received > 50) { window.__listening = pc; return true; }
  }
  return false;
}
"""
SPACE_SOCKETS = "() => window.__sockets.filter((s) => s.url.includes('/ws/spaces/')).length"
# Set on the window once: a full page load would lose it.
MARK = "() => { window.__sameDocument = 'still here'; }"
MARKED = "() => window.__sameDocument === 'still here'"


@pytest.fixture
def media_loopback(monkeypatch):
    """The live server's media worker offers 127.0.0.1 (as tests/media/conftest.py's; ask before
    `asgi_live_server`)."""
    monkeypatch.setenv("SPACES_MEDIA_ICE_LOOPBACK", "1")


def log_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/")


def still_receiving(page: Page, more: int = 25) -> None:
    """The remembered connection's inbound audio packets grow by `more` (50 arrive a second)."""
    before = page.evaluate(RECEIVED)
    assert before > 0, "the page no longer has the connection it listened with"
    poll(page, lambda: page.evaluate(RECEIVED) > before + more, what=f"{more} more audio packets")


def poll(page: Page, check, *, what: str, timeout_ms: int = WAIT_MS) -> None:
    """Ask `check` every 200 ms until it is true; fail after `timeout_ms`."""
    waited = 0
    while not check():
        assert waited < timeout_ms, f"{what}: not within {timeout_ms} ms"
        page.wait_for_timeout(200)
        waited += 200


def player(page: Page):
    return page.locator("#player [data-player-bar]")


@pytest.mark.media
def test_the_minimised_player_keeps_the_space_playing_across_two_page_changes(
    media_loopback, asgi_live_server, tmp_path, monkeypatch
):
    # given: a host speaking (Chromium, a tone as the microphone) and a listener on the space's page
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's loop holds this thread
    url = asgi_live_server.url
    host_user = make_host(username="hana", display_name="Hana Ito")
    space = make_space(host_user, title="Night radio")
    Participant.objects.filter(space=space, user=host_user).update(muted=False)
    UserFactory(username="ada")
    errors: list[str] = []
    with microphone_chromium(write_tone(tmp_path / "a440.wav", 440, seconds=30)) as browser:
        host = browser.new_context().new_page()
        host.set_default_timeout(WAIT_MS)
        host.on("pageerror", lambda error: errors.append(f"hana: {error}"))
        log_in(host, url, "hana")
        host.goto(f"{url}/spaces/{space.pk}/")
        host.locator('#stage li.speaking[data-username="hana"]').wait_for()  # the worker hears her

        context = browser.new_context(bypass_csp=True)  # for axe, injected below
        context.add_init_script(KEEP_PEERS)
        context.add_init_script(KEEP_SOCKETS)
        listener = context.new_page()
        listener.set_default_timeout(WAIT_MS)
        listener.on("pageerror", lambda error: errors.append(f"ada: {error}"))
        log_in(listener, url, "ada")
        listener.goto(f"{url}/spaces/{space.pk}/")
        poll(listener, lambda: listener.evaluate(FIRST_AUDIO), what="the listener hears the host", timeout_ms=20_000)
        expect(player(listener)).to_be_hidden()  # the space's own page shows the space
        listener.evaluate(MARK)

        # when: the listener follows a link to the host's profile
        listener.locator("[data-space-host]").click()
        listener.wait_for_url(f"{url}/u/hana/")

        # then: the audio still comes on the same connection, in the same document (no page load),
        # the space's page is gone and the player shows
        still_receiving(listener)
        assert listener.evaluate(MARKED)
        expect(listener.locator("#space")).to_have_count(0)
        expect(player(listener)).to_be_visible()
        expect(player(listener).locator("[data-player-title]")).to_have_text("Night radio")
        expect(player(listener).locator("[data-player-speaking]")).to_have_text("Hana Ito is speaking")
        assert listener.evaluate("() => document.querySelectorAll('#audio audio').length") >= 1
        assert listener.evaluate("() => [...document.querySelectorAll('#audio audio')].every((a) => !a.paused)")
        assert violations(listener) == []  # the page with the player passes axe

        # when: then to the home page, by the site's own link
        listener.locator(".topbar .brand").click()
        listener.wait_for_url(f"{url}/")

        # then: still receiving, in one document, with one socket and one peer connection
        still_receiving(listener)
        assert listener.evaluate(MARKED)
        expect(player(listener)).to_be_visible()
        assert listener.evaluate(SPACE_SOCKETS) == 1
        assert listener.evaluate("() => window.__peers.length") == 1

        # when: back to the space through the player
        player(listener).locator("[data-player-link]").click()
        listener.wait_for_url(f"{url}/spaces/{space.pk}/")

        # then: the space's page shows it as it is now, without connecting again
        expect(listener.locator('#stage li.speaking[data-username="hana"]')).to_be_visible()
        expect(listener.get_by_role("button", name="✋ Request to speak")).to_be_visible()
        expect(player(listener)).to_be_hidden()
        still_receiving(listener)
        assert listener.evaluate(MARKED)
        assert listener.evaluate(SPACE_SOCKETS) == 1
        assert listener.evaluate("() => window.__peers.length") == 1
        host.context.close()
        context.close()
    assert errors == []


def browse_away(page: Page, url: str, space: Space) -> None:
    """On the space's page, connected; then to the host's profile, the player showing."""
    page.goto(f"{url}/spaces/{space.pk}/")
    expect(page.get_by_role("button", name="✋ Request to speak")).to_be_visible()
    page.evaluate(MARK)
    page.locator("[data-space-host]").click()
    page.wait_for_url(f"{url}/u/{space.host.username}/")
    expect(player(page)).to_be_visible()


@pytest.mark.media
def test_leave_in_the_player_from_the_keyboard_closes_the_socket_and_the_audio(
    media_loopback, asgi_live_server, browsers
):
    # given: a listener browsing away from a live space, its player showing
    space = make_space(make_host(username="hana"), title="Short visit")
    ada = UserFactory(username="ada")
    page = browsers.log_in("ada")
    page.context.add_init_script(KEEP_SOCKETS)
    refused: list[str] = []  # what the Content-Security-Policy blocked (the site's, enforced here)
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    page.reload()
    browse_away(page, asgi_live_server.url, space)
    assert page.evaluate(MARKED)

    # when: they reach Leave with the keyboard and press Enter
    leave = player(page).get_by_role("button", name="Leave")
    leave.focus()
    page.keyboard.press("Enter")

    # then: the bar goes, a toast says so, the socket closes and the server has them out at once
    expect(player(page)).to_be_hidden()
    expect(page.locator("#toasts")).to_contain_text("You left “Short visit”.")
    page.wait_for_function("() => window.__sockets.every((s) => s.url.includes('/ws/me/') || s.readyState === 3)")
    page.wait_for_function("() => document.querySelectorAll('#audio audio').length === 0")
    # the server's record follows the socket's close by at most its own database write
    deadline = time.monotonic() + 3
    while Participant.objects.get(space=space, user=ada).left_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    participant = Participant.objects.get(space=space, user=ada)
    assert participant.left_at is not None
    assert refused == []
    assert browsers.errors == []


@pytest.mark.media
def test_the_player_closes_with_an_announcement_when_the_space_ends(media_loopback, asgi_live_server, browsers):
    # given: the host on the space's page; a listener browsing away, the player showing
    space = make_space(make_host(username="hana"), title="Last call")
    UserFactory(username="ada")
    host = browsers.log_in("hana")
    host.goto(f"{asgi_live_server.url}/spaces/{space.pk}/")
    listener = browsers.log_in("ada")
    browse_away(listener, asgi_live_server.url, space)

    # when: the host ends the space
    host.once("dialog", lambda dialog: dialog.accept())
    host.get_by_role("button", name="End space").click()

    # then: the listener's player goes, and a polite live region says why
    expect(player(listener)).to_be_hidden()
    toast = listener.locator("#toasts[aria-live=polite] .toast")
    expect(toast).to_have_text("“Last call” has ended.")
    assert listener.evaluate(MARKED)
    assert browsers.errors == []


@pytest.mark.media
def test_back_shows_the_space_as_it_is_now_and_another_live_space_moves_the_tab_there(
    media_loopback, asgi_live_server, browsers
):
    # given: a listener with a hand up, browsing away from the space
    space = make_space(make_host(username="hana"), title="Back and forth")
    UserFactory(username="ada")
    page = browsers.log_in("ada")
    page.context.add_init_script(KEEP_SOCKETS)
    page.reload()
    url = asgi_live_server.url
    page.goto(f"{url}/spaces/{space.pk}/")
    page.get_by_role("button", name="✋ Request to speak").click()
    expect(page.get_by_role("button", name="✋ Lower hand")).to_be_visible()
    page.evaluate(MARK)
    page.locator("[data-space-host]").click()
    page.wait_for_url(f"{url}/u/hana/")
    expect(player(page)).to_be_visible()

    # when: they press Back (Turbo restores the space's page from its cache)
    page.go_back()
    page.wait_for_url(f"{url}/spaces/{space.pk}/")

    # then: the page is live again on the same socket: its buttons work
    expect(player(page)).to_be_hidden()
    page.get_by_role("button", name="✋ Lower hand").click()
    expect(page.get_by_role("button", name="✋ Request to speak")).to_be_visible()
    assert page.evaluate(SPACE_SOCKETS) == 1

    # when: they open another live space
    other = make_space(make_host(username="omar"), title="Elsewhere")
    page.evaluate("(href) => Turbo.visit(href)", f"/spaces/{other.pk}/")
    page.wait_for_url(f"{url}/spaces/{other.pk}/")
    expect(page.locator("h1")).to_have_text("Elsewhere")
    expect(page.get_by_role("button", name="✋ Request to speak")).to_be_visible()

    # then: the tab is in that one only, and the player plays it on the next page
    open_sockets = "() => window.__sockets.filter((s) => s.url.includes('/ws/spaces/') && s.readyState === 1).length"
    assert page.evaluate(open_sockets) == 1
    assert page.evaluate(SPACE_SOCKETS) == 2
    page.locator(".topbar .brand").click()
    page.wait_for_url(f"{url}/")
    expect(player(page).locator("[data-player-title]")).to_have_text("Elsewhere")
    assert page.evaluate(MARKED)
    assert browsers.errors == []


def test_the_other_pages_scripts_work_after_a_turbo_visit(asgi_live_server, browsers):
    # given: a host with a scheduled space, and a member who starts on the home page
    hana = make_host(username="hana", display_name="Hana Ito")
    later = services.space_create(
        host=hana, title="Tomorrow's talk", scheduled_for=timezone.now() + timezone.timedelta(days=1)
    )
    ada = UserFactory(username="ada")
    page = browsers.log_in("ada")
    url = asgi_live_server.url
    page.evaluate(MARK)

    # when: they go to the scheduled space by Turbo and ask for a reminder
    page.evaluate("(href) => Turbo.visit(href)", f"/spaces/{later.pk}/")
    page.wait_for_url(f"{url}/spaces/{later.pk}/")
    page.get_by_role("button", name="Remind me").click()

    # then: the reminder is set in place, and the time shows in the viewer's zone (time.js)
    expect(page.get_by_role("button", name="Reminder set")).to_be_visible()
    assert Reminder.objects.filter(user=ada, space=later).exists()
    expect(page.locator("time[data-local-time]")).not_to_contain_text("UTC")

    # when: they follow the host's link to her profile and press Follow
    page.locator("[data-space-host]").click()
    page.wait_for_url(f"{url}/u/hana/")
    page.locator("button.follow-button").click()

    # then: the button and the count change in place, and the follow is stored
    expect(page.locator("button.follow-button[aria-pressed=true]")).to_be_visible()
    expect(page.locator("[data-followers-count]")).to_have_text("1")
    assert Follow.objects.filter(follower=ada, followee=hana).exists()

    # when: they search (the search form is Turbo's: a GET)
    page.evaluate("() => Turbo.visit('/spaces/')")
    page.wait_for_url(f"{url}/spaces/")
    page.fill("input[name=q]", "talk")
    page.keyboard.press("Enter")

    # then: the results come, and all of it without a page load
    page.wait_for_url(f"{url}/spaces/?q=talk")
    expect(page.locator("input[name=q]")).to_have_value("talk")
    assert page.evaluate(MARKED)
    assert browsers.errors == []


def test_the_start_form_is_live_after_a_turbo_visit_and_still_posts(asgi_live_server, browsers):
    make_host(username="hana")
    page = browsers.log_in("hana")
    url = asgi_live_server.url
    page.evaluate(MARK)
    page.evaluate("() => Turbo.visit('/spaces/new/')")
    page.wait_for_url(f"{url}/spaces/new/")
    button = page.locator("#space-new-form button[type=submit]")
    page.fill("input[name=scheduled_for]", (timezone.now() + timezone.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M"))
    expect(button).to_have_text("Schedule your space")
    assert page.evaluate(MARKED)
    page.fill("input[name=scheduled_for]", "")
    page.fill("input[name=title]", "Right now")
    button.click()
    # a form posts as plain HTML (Turbo's forms are opt-in): the redirect lands on the live space
    expect(page.locator("h1")).to_have_text("Right now")
    assert Space.objects.get(title="Right now").state == "live"
    assert browsers.errors == []


def test_without_javascript_links_and_forms_still_work(asgi_live_server, chromium):
    # given: a browser with JavaScript off, and a live space
    space = make_space(make_host(username="hana"), title="Plain HTML")
    ada = UserFactory(username="ada")
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    url = asgi_live_server.url

    # when: they log in, open the space, follow the host's link and follow her
    log_in(page, url, "ada")
    page.goto(f"{url}/spaces/{space.pk}/")
    expect(page.locator("h1")).to_have_text("Plain HTML")
    expect(player(page)).to_be_hidden()  # no player without the script that plays
    page.locator("[data-space-host]").click()
    page.wait_for_url(f"{url}/u/hana/")
    page.locator("button.follow-button").click()

    # then: the form posted and the page came back with the follow stored
    page.wait_for_url(f"{url}/u/hana/")
    expect(page.locator("button.follow-button")).to_have_text("Following")
    assert Follow.objects.filter(follower=ada, followee__username="hana").exists()
    context.close()
