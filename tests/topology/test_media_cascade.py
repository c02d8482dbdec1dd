"""One room over three media workers (an origin, two edges), and each kind of worker killed: nobody reloads."""

import asyncio
import pickle
import threading
import time

import pytest
import redis
from channels.db import database_sync_to_async
from playwright.sync_api import sync_playwright

from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.media.clients import peaks, rms, write_tone
from tests.topology.cluster import MediaClient, Socket, until, wait_until
from tests.topology.scene import live_space
from tests.topology.test_media_worker_restart import AUDIO_ENERGY, KEEP_PEERS

pytestmark = [pytest.mark.media, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# One listener per worker, so three listeners spread over the three; heartbeats fast enough to watch.
CASCADE = {
    "SPACES_MEDIA_WORKERS": "3",
    "SPACES_MEDIA_WORKER_LISTENERS": "1",
    "SPACES_MEDIA_HEARTBEAT_S": "0.5",
    "SPACES_MEDIA_HEARTBEAT_TTL_S": "2",
}
EDGE_BACK_WITHIN_S = 5
ORIGIN_BACK_WITHIN_S = 10


def heartbeats(cluster) -> dict[int, dict]:
    """What each live worker's heartbeat says (the cache's keys, as Django's Redis cache writes them)."""
    client = redis.Redis(port=cluster.redis.port)
    found = {}
    for index in range(3):
        raw = client.get(f"spaces:1:media:worker-alive:{index}")
        if raw is not None:
            found[index] = pickle.loads(raw)
    client.close()
    return found


def hears(client: MediaClient) -> bool:
    return rms(client.heard.since_last(0.5)) > 500


def silent(client: MediaClient) -> bool:
    return rms(client.heard.since_last(0.5)) < 50


async def test_listeners_over_an_origin_and_two_edges_hear_again_when_an_edge_then_the_origin_is_killed(
    cluster, tmp_path
):
    # given: a web process and three workers; a speaker, then three listeners, one after another
    cluster.env.update(CASCADE)
    scene = await database_sync_to_async(live_space)()
    web = cluster.start_web()
    workers = [cluster.start_media_worker(index) for index in range(3)]
    await until(lambda: len(heartbeats(cluster)) == 3, timeout=10, what="three workers beat")
    space_id = scene.space.pk

    async def join(name: str, wav=None) -> MediaClient:
        socket = await Socket([web.ws_url], scene.path, cookie=scene.cookies[name]).start()
        return await MediaClient(socket, wav=wav).start()

    speaker = await join("speaker", write_tone(tmp_path / "a440.wav", 440))
    listeners = []
    for name in ("fan", "ear", "other"):
        listener = await join(name)
        await until(lambda c=listener: hears(c), timeout=15, what=f"{name} hears the speaker")
        listeners.append(listener)
    on_origin, on_first_edge, on_second_edge = listeners

    # then: the room is on all three workers, one listener each: worker 0 holds the stage, 1 and 2 are edges
    await until(
        lambda: [b["listeners"] for _, b in sorted(heartbeats(cluster).items())] == [1, 1, 1],
        timeout=5,
        what="one listener on each worker",
    )
    assert {i: b["rooms"] for i, b in heartbeats(cluster).items()} == {
        0: {space_id: "origin"},
        1: {space_id: "edge"},
        2: {space_id: "edge"},
    }
    for listener in listeners:
        assert peaks(await listener.heard.record(1.0), count=1) == [440]

    # when: the first edge is killed
    workers[1].kill()
    killed_at = time.monotonic()

    # then: its listener hears the speaker again within 5 s, from the other edge, on the same socket
    await until(lambda: silent(on_first_edge), timeout=2, what="the first edge's listener loses the audio")
    await until(lambda: hears(on_first_edge), timeout=EDGE_BACK_WITHIN_S, what="heard again from the other edge")
    edge_back_after = time.monotonic() - killed_at
    assert edge_back_after <= EDGE_BACK_WITHIN_S
    await until(lambda: heartbeats(cluster).get(2, {}).get("listeners") == 2, timeout=3, what="two on the edge")
    assert peaks(await on_first_edge.heard.record(1.0), count=1) == [440]
    assert hears(on_origin) and hears(on_second_edge)
    answers = speaker.answers

    # when: the origin is killed
    workers[0].kill()
    killed_at = time.monotonic()

    # then: the speaker publishes again on its own and every listener hears it within 10 s
    await until(lambda: silent(on_second_edge), timeout=2, what="the audio stops with the origin")
    for listener in listeners:
        await until(lambda c=listener: hears(c), timeout=ORIGIN_BACK_WITHIN_S, what="heard again after the origin")
    origin_back_after = time.monotonic() - killed_at
    assert origin_back_after <= ORIGIN_BACK_WITHIN_S
    assert speaker.answers > answers
    assert heartbeats(cluster)[2]["rooms"] == {space_id: "origin"}
    for listener in listeners:
        assert peaks(await listener.heard.record(1.0), count=1) == [440]
    # nobody reloaded: every socket is the one it opened
    assert all(client.socket.closes == [] for client in (speaker, *listeners))
    print(f"cascade: an edge's listener hears again {edge_back_after:.1f} s after its edge is killed; ")
    print(f"cascade: listeners hear again {origin_back_after:.1f} s after the origin is killed")
    for client in (speaker, *listeners):
        await client.close()
        await client.socket.close()


def run_in_background(ws_url: str, path: str, cookie: str, stop: threading.Event, *, wav=None) -> threading.Thread:
    """An aiortc client (a speaker with `wav`, else a listener) on its own event loop, until `stop` is set."""

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


@pytest.mark.browser
def test_chromium_on_an_edge_hears_again_when_its_edge_then_the_origin_is_killed(cluster, tmp_path, monkeypatch):
    # given: an aiortc speaker and an aiortc listener on the origin (worker 0); Chromium listening, so on edge 1
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    cluster.env.update(CASCADE)
    scene = live_space()
    web = cluster.start_web()
    workers = [cluster.start_media_worker(index) for index in range(3)]
    wait_until(lambda: len(heartbeats(cluster)) == 3, timeout=10, what="three workers beat")
    stop = threading.Event()
    tone = write_tone(tmp_path / "a440.wav", 440)
    clients = [run_in_background(web.ws_url, scene.path, scene.cookies["speaker"], stop, wav=tone)]
    clients.append(run_in_background(web.ws_url, scene.path, scene.cookies["fan"], stop))
    wait_until(lambda: heartbeats(cluster)[0]["listeners"] == 1, timeout=15, what="a listener on the origin")
    args = [*CHROMIUM_ARGS, "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required"]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
            context = browser.new_context()
            context.add_cookies([{"name": "sessionid", "value": scene.cookies["ear"], "url": web.url}])
            context.add_init_script(KEEP_PEERS)
            page = context.new_page()
            page.goto(f"{web.url}/spaces/{scene.space.pk}/")
            # (Turbo Drive stamps the page's history entry, a same-document navigation: a mark on the
            # window, gone with any reload, is what tells)
            page.evaluate("window.firstLoad = true")

            def energy_rises() -> bool:
                before = page.evaluate(AUDIO_ENERGY)
                page.wait_for_timeout(500)
                return page.evaluate(AUDIO_ENERGY) - before > 0.01

            wait_until(energy_rises, timeout=30, what="Chromium hears the speaker")
            assert heartbeats(cluster)[1]["listeners"] == 1

            # when: Chromium's edge is killed
            workers[1].kill()
            killed_at = time.monotonic()

            # then: it hears again within 5 s, from the other edge
            wait_until(lambda: not energy_rises(), timeout=3, what="Chromium's audio stops")
            wait_until(energy_rises, timeout=EDGE_BACK_WITHIN_S, what="Chromium hears again from the other edge")
            edge_back_after = time.monotonic() - killed_at
            assert edge_back_after <= EDGE_BACK_WITHIN_S + 0.5  # (+ one energy sample)
            assert heartbeats(cluster)[2]["listeners"] == 1

            # when: the origin is killed
            workers[0].kill()
            killed_at = time.monotonic()

            # then: the speaker publishes again and Chromium hears it within 10 s, on the same page
            wait_until(lambda: not energy_rises(), timeout=3, what="Chromium's audio stops with the origin")
            wait_until(energy_rises, timeout=ORIGIN_BACK_WITHIN_S, what="Chromium hears the speaker again")
            origin_back_after = time.monotonic() - killed_at
            print(f"cascade, Chromium: hears again {edge_back_after:.1f} s after its edge is killed")
            print(f"cascade, Chromium: hears again {origin_back_after:.1f} s after the origin is killed")
            assert page.evaluate("window.firstLoad === true")  # the first load still: no reload
            browser.close()
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=10)
