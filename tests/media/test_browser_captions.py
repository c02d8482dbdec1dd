"""Chromium speaks (a recording of human speech as its microphone); another Chromium page turns CC on and
reads the captions; after the space ends, its WebVTT transcript downloads and parses."""

import re

import pytest
from django.test import Client

from rooms.models import CaptionLine, Space
from tests.factories import PASSWORD, UserFactory
from tests.media.browsers import microphone_chromium, start_space
from tests.media.speech import TWO_CITIES, TWO_CITIES_S, speech_wav, words
from tests.rooms.scene import make_host

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.django_db(transaction=True)]
WAIT_MS = 30_000


def in_order(shown: list[str], reference: list[str]) -> int:
    """How many reference words appear in `shown` in the reference's order (longest common subsequence)."""
    row = [0] * (len(reference) + 1)
    for word in shown:
        previous = 0
        for j, ref in enumerate(reference, 1):
            previous, row[j] = row[j], previous + 1 if word == ref else max(row[j], row[j - 1])
    return row[-1]


def test_chromium_captions_show_the_speakers_words_and_the_transcript_downloads(
    media_loopback, asgi_live_server, tmp_path, monkeypatch
):
    # given: a host whose microphone reads A Tale of Two Cities, and a listener
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    make_host(username="hana")
    reader = UserFactory(username="reader")
    client = Client()
    client.force_login(reader)
    wav = speech_wav(tmp_path / "speech.wav", "two_cities.wav", TWO_CITIES_S, silence_after=2.0)
    with microphone_chromium(wav) as browser:
        host = browser.new_context().new_page()
        host.set_default_timeout(WAIT_MS)
        start_space(host, asgi_live_server.url, username="hana", password=PASSWORD, title="Reading aloud")
        space = Space.objects.get(title="Reading aloud")

        # when: the listener presses CC, then the host unmutes and reads
        context = browser.new_context()
        context.add_cookies(
            [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": str(asgi_live_server)}]
        )
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{asgi_live_server.url}/spaces/{space.pk}/")
        page.get_by_role("button", name="CC").click()
        host.get_by_role("button", name="🎙 Unmute").click()

        # then: the caption area shows the host's words, in order, with the host's name
        reference = words(TWO_CITIES)
        page.wait_for_function(
            "() => document.querySelectorAll('#caption-lines .caption:not(.caption-partial)').length >= 2",
            timeout=WAIT_MS,
        )
        shown = words(page.inner_text("#caption-lines"))
        assert in_order(shown, reference) >= 5, shown
        assert page.locator("#caption-lines .caption-speaker").first.inner_text() == space.host.name
        assert page.get_attribute("#cc", "aria-pressed") == "true"
        assert page.get_attribute("#caption-lines", "aria-live") == "polite"

        # when: the host ends the space
        host.on("dialog", lambda dialog: dialog.accept())
        host.get_by_role("button", name="End space").click()
        host.wait_for_function("() => document.getElementById('space').dataset.state === 'ended'")

        # then: the transcript downloads as WebVTT, its cues in time order
        assert CaptionLine.objects.filter(space=space).exists()
        vtt = page.request.get(f"{asgi_live_server.url}/spaces/{space.pk}/transcript.vtt").text()
        assert vtt.startswith("WEBVTT\n")
        timings = re.findall(r"^(\d\d):(\d\d):(\d\d)\.(\d{3}) --> (\d\d):(\d\d):(\d\d)\.(\d{3})$", vtt, re.M)
        starts = [((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms) for h, m, s, ms, *_ in timings]
        assert starts and starts == sorted(starts)
        assert in_order(words(vtt), reference) >= 5
