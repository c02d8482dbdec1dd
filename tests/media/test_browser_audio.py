"""A host speaking from headless Chromium (a WAV file as the microphone) is heard by a listener."""

import asyncio
import json
import threading

import numpy as np
import pytest
import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription
from django.db import connections
from django.test import Client

from rooms.models import Space
from tests.factories import PASSWORD, UserFactory
from tests.media.browsers import microphone_chromium, start_space
from tests.media.clients import Recorder, peaks, rms, wait_connected, write_tone
from tests.rooms.scene import make_host

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.django_db(transaction=True)]
WAIT_MS = 15_000


@pytest.fixture
def speaking_browser(tmp_path, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with microphone_chromium(write_tone(tmp_path / "a440.wav", 440, seconds=10)) as browser:
        yield browser
    connections.close_all()


def listen(ws_url: str, space_id: int, cookie: str, seconds: float) -> dict:
    """An aiortc listener on its own thread and event loop: join over the websocket, record."""
    result: dict = {}

    async def run() -> None:
        headers = {"Cookie": f"sessionid={cookie}", "Origin": ws_url.replace("ws://", "http://")}
        async with websockets.connect(f"{ws_url}/ws/spaces/{space_id}/", additional_headers=headers) as socket:
            assert json.loads(await socket.recv())["type"] == "snapshot"
            pc = RTCPeerConnection()
            heard = Recorder()
            pc.on("track", heard.attach)
            pc.addTransceiver("audio", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            await socket.send(json.dumps({"type": "media.offer", "sdp": pc.localDescription.sdp, "publish": False}))
            async with asyncio.timeout(10):
                while (message := json.loads(await socket.recv()))["type"] != "media.answer":
                    assert message["type"] != "media.error", message
            await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="answer"))
            await wait_connected(pc)
            await asyncio.sleep(1.0)
            result["samples"] = await heard.record(seconds)
            await pc.close()

    def target() -> None:
        from media.aiortc_bridge import allow_loopback_candidates

        allow_loopback_candidates()
        try:
            asyncio.run(run())
        except Exception as error:  # noqa: BLE001 - handed to the test, which fails with it
            result["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=40)
    return result


def test_host_speaks_from_chromium_and_a_listener_hears_the_tone(media_loopback, asgi_live_server, speaking_browser):
    # given: a host in Chromium whose microphone plays 440 Hz, and a listener
    make_host(username="hana")
    fan = UserFactory(username="fan")
    client = Client()
    client.force_login(fan)
    cookie = client.cookies["sessionid"].value
    page = speaking_browser.new_context().new_page()
    page.set_default_timeout(WAIT_MS)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # when: the host starts a space and unmutes
    start_space(page, asgi_live_server.url, username="hana", password=PASSWORD, title="Tone check")
    page.get_by_role("button", name="🎙 Unmute").click()
    page.get_by_role("button", name="🔇 Mute").wait_for()
    space = Space.objects.get(title="Tone check")
    heard = listen(asgi_live_server.ws_url, space.pk, cookie, seconds=2.0)

    # then: the listener receives non-silent audio at the tone's frequency
    assert "error" not in heard, heard.get("error")
    samples: np.ndarray = heard["samples"]
    assert rms(samples) > 300
    assert peaks(samples, count=1) == [440]
    # and the host's page shows them speaking, from the worker's audio levels
    page.locator('#stage li.speaking[data-username="hana"]').wait_for()
    assert errors == []
