"""The media worker killed and restarted: listeners hear the speaker again, with no reload."""

import asyncio
import threading
import time

import pytest
from channels.db import database_sync_to_async
from playwright.sync_api import sync_playwright

from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.media.clients import peaks, rms, write_tone
from tests.topology.cluster import MediaClient, Socket, until, wait_until
from tests.topology.scene import live_space

pytestmark = [pytest.mark.media, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
BACK_WITHIN_S = 10


async def test_aiortc_clients_hear_again_after_the_worker_restarts(cluster, tmp_path):
    # given: a speaker and a listener on two web processes, heard through one media worker
    scene = await database_sync_to_async(live_space)()
    a, b = cluster.start_web(), cluster.start_web()
    first = cluster.start_media_worker()
    speaker_socket = await Socket([a.ws_url], scene.path, cookie=scene.cookies["speaker"]).start()
    ear_socket = await Socket([b.ws_url], scene.path, cookie=scene.cookies["ear"]).start()
    speaker = await MediaClient(speaker_socket, wav=write_tone(tmp_path / "a440.wav", 440)).start()
    ear = await MediaClient(ear_socket).start()
    await until(lambda: rms(ear.heard.since_last(0.5)) > 500, timeout=15, what="the listener hears the speaker")

    # when: the worker is killed
    first.kill()

    # then: the audio stops, and an offer made while no worker beats is answered `media_unavailable` at once
    await until(lambda: rms(ear.heard.since_last(0.5)) < 50, timeout=5, what="the audio stops")
    await asyncio.sleep(3.5)  # the heartbeat's TTL in this cluster
    late = await MediaClient(await Socket([a.ws_url], scene.path).start()).start()
    await until(lambda: late.socket.seen("media.error", code="media_unavailable"), timeout=3, what="told unavailable")

    # when: a new worker starts
    second = cluster.start_media_worker()

    # then: within 10 s both listeners hear the tone again, on the same sockets
    for client in (ear, late):
        await until(lambda c=client: rms(c.heard.since_last(0.5)) > 500, timeout=BACK_WITHIN_S, what="heard again")
    back_after = time.monotonic() - second.started_at
    assert peaks(await ear.heard.record(1.5), count=1) == [440]
    assert ear_socket.closes == [] and speaker_socket.closes == []
    print(f"media worker restart: the listener hears again {back_after:.1f} s after the new worker listens")
    for client in (speaker, ear, late):
        await client.close()
    for socket in (speaker_socket, ear_socket, late.socket):
        await socket.close()


def speak_in_background(ws_url: str, path: str, cookie: str, wav, stop: threading.Event) -> threading.Thread:
    """An aiortc speaker on its own event loop, talking until `stop` is set."""

    async def run() -> None:
        socket = await Socket([ws_url], path, cookie=cookie).start()
        client = await MediaClient(socket, wav=wav).start()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await client.close()
        await socket.close()

    thread = threading.Thread(target=lambda: asyncio.run(run()), daemon=True)
    thread.start()
    return thread


# Every RTCPeerConnection the page makes, so the test can read its inbound audio statistics.
KEEP_PEERS = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__peers = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Original(...args);
    window.__peers.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Original.prototype;
})();
"""
AUDIO_ENERGY = """
async () => {
  let energy = 0;
  for (const pc of window.__peers) {
    if (pc.connectionState !== "connected") continue;
    (await pc.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "audio") energy += r.totalAudioEnergy || 0;
    });
  }
  return energy;
}
"""


@pytest.mark.browser
def test_chromium_listening_hears_again_after_the_worker_restarts(cluster, tmp_path, monkeypatch):
    # given: Chromium listening in a space whose speaker is an aiortc client, through one media worker
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    scene = live_space()
    web = cluster.start_web()
    first = cluster.start_media_worker()
    stop = threading.Event()
    speaker = speak_in_background(
        web.ws_url, scene.path, scene.cookies["speaker"], write_tone(tmp_path / "a440.wav", 440), stop
    )
    args = [*CHROMIUM_ARGS, "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required"]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
            context = browser.new_context()
            context.add_cookies([{"name": "sessionid", "value": scene.cookies["ear"], "url": web.url}])
            context.add_init_script(KEEP_PEERS)
            page = context.new_page()
            page.goto(f"{web.url}/spaces/{scene.space.pk}/")

            def energy_rises() -> bool:
                before = page.evaluate(AUDIO_ENERGY)
                page.wait_for_timeout(500)
                return page.evaluate(AUDIO_ENERGY) - before > 0.01

            wait_until(energy_rises, timeout=20, what="Chromium hears the speaker")

            # when: the worker is killed, then a new one starts
            first.kill()
            wait_until(lambda: not energy_rises(), timeout=10, what="Chromium's audio stops")
            second = cluster.start_media_worker()

            # then: Chromium hears again within 10 s, on the same page (no reload)
            navigations = []
            page.on("framenavigated", lambda frame: navigations.append(frame.url))
            wait_until(energy_rises, timeout=BACK_WITHIN_S, what="Chromium hears again")
            print(f"media worker restart: Chromium hears again {time.monotonic() - second.started_at:.1f} s after")
            assert navigations == []
            browser.close()
    finally:
        stop.set()
        speaker.join(timeout=10)
