"""The replay and the REC mark in Chromium: a listener plays an ended space's replay and seeks by
clicking a transcript line; a listener in a live space sees REC as soon as it is recorded."""

import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from playwright.sync_api import expect

from rooms import services
from rooms.models import Space
from tests.factories import UserFactory
from tests.media.replay_files import recording_of
from tests.rooms.scene import make_host, make_space

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def off_the_browsers_thread(function, *args, **kwargs):
    """Run a service that sends events (async_to_sync) where Playwright's event loop isn't running."""
    with ThreadPoolExecutor(1) as pool:
        try:
            return pool.submit(function, *args, **kwargs).result()
        finally:
            pool.submit(connections.close_all).result()


def test_a_listener_plays_the_replay_and_seeks_by_clicking_a_transcript_line(asgi_live_server, browsers):
    # given: an ended space with a 10 s recording and its transcript
    host = make_host(display_name="Hana Host")
    space = off_the_browsers_thread(make_space, host=host, title="Replayed", recording_enabled=True)
    services.caption_line_store(
        space_id=space.pk, speaker_id=host.pk, line_key="1", text="First the low tone.", start_ms=500, end_ms=4000
    )
    services.caption_line_store(
        space_id=space.pk, speaker_id=host.pk, line_key="2", text="Then the high one.", start_ms=7000, end_ms=9500
    )
    off_the_browsers_thread(services.space_end, actor=host, space_id=space.pk)
    recording = recording_of(space, (440, 5), (0, 2), (880, 3))
    UserFactory(username="lee")
    page = browsers.log_in("lee")

    # when: the listener opens the replay and presses play
    page.goto(f"{asgi_live_server.url}{space.get_absolute_url()}")
    player = page.locator("#replay audio")
    expect(player).to_have_attribute("src", recording.get_audio_url())
    page.get_by_role("heading", name="Replay", exact=True).click()  # a gesture on the page, as a real visitor's
    page.evaluate("document.querySelector('#replay audio').play()")
    # (functions, not expressions: Playwright evaluates an expression with eval, which the site's
    # Content-Security-Policy refuses)
    page.wait_for_function("() => document.querySelector('#replay audio').currentTime > 0.3")

    # and clicks the second transcript line
    page.get_by_text("Then the high one.").click()

    # then: the player moves to 7 s, and that line is the one highlighted as it plays
    page.wait_for_function(
        "() => { const t = document.querySelector('#replay audio').currentTime; return t >= 7 && t < 9; }"
    )
    expect(page.locator(".transcript-lines li.playing")).to_contain_text("Then the high one.")
    assert page.evaluate("document.querySelector('#replay audio').duration") == pytest.approx(10, abs=0.3)
    assert not browsers.errors
    # and the play was counted once
    page.wait_for_function("() => true")
    recording.refresh_from_db()
    assert recording.plays == 1


def test_a_listener_sees_rec_when_the_host_starts_recording(asgi_live_server, browsers):
    # given: a host's live space, and a listener on its page
    make_host(username="hana")
    UserFactory(username="lee")
    host, listener = browsers.log_in("hana"), browsers.log_in("lee")
    host.goto(f"{asgi_live_server.url}/spaces/new/")
    host.fill("input[name=title]", "Recorded live")
    host.get_by_role("button", name="Start your space").click()
    host.wait_for_url(re.compile(r"/spaces/\d+/$"))
    listener.goto(host.url)
    listener.get_by_text("Request to speak").wait_for()
    expect(listener.locator(".badge-rec")).to_be_hidden()

    # when: the host starts recording (and confirms)
    host.on("dialog", lambda dialog: dialog.accept())
    host.get_by_role("button", name="⏺ Record").click()

    # then: the listener sees REC and may clip, and still does after a reload; the host can stop it
    expect(listener.locator(".badge-rec")).to_be_visible()
    expect(listener.get_by_role("button", name="✂ Clip the last 30 s")).to_be_visible()
    listener.reload()
    expect(listener.locator(".badge-rec")).to_be_visible()
    expect(host.get_by_role("button", name="Stop recording")).to_be_visible()
    assert Space.objects.get(title="Recorded live").recording_enabled
    assert not browsers.errors
