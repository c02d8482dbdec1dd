"""Redis restarted, and Redis down for 30 s, under the production topology (this test's own Redis server)."""

import asyncio
import time
import urllib.error
import urllib.request

import pytest
from channels.db import database_sync_to_async

from spaces_site.sockets import CLOSE_TRY_AGAIN_LATER
from tests.media.clients import peaks, rms, write_tone
from tests.topology.cluster import MediaClient, Socket, until
from tests.topology.scene import live_space

pytestmark = [pytest.mark.media, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


async def open_sockets(scene, a, b) -> dict[str, Socket]:
    where = {"host": a, "fan": a, "ear": b, "other": b}
    sockets = {
        name: await Socket([web.ws_url], scene.path, cookie=scene.cookies[name]).start() for name, web in where.items()
    }
    sockets["anonymous-a"] = await Socket([a.ws_url], scene.path).start()
    sockets["anonymous-b"] = await Socket([b.ws_url], scene.path).start()
    return sockets


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def test_a_redis_restart_costs_each_client_at_most_one_error_and_no_1011(cluster, tmp_path):
    # given: sockets on two web processes, a speaker heard through the media worker
    scene = await database_sync_to_async(live_space)()
    a, b = cluster.start_web(), cluster.start_web()
    cluster.start_media_worker()
    sockets = await open_sockets(scene, a, b)
    speaker_socket = await Socket([b.ws_url], scene.path, cookie=scene.cookies["speaker"]).start()
    speaker = await MediaClient(speaker_socket, wav=write_tone(tmp_path / "a440.wav", 440)).start()
    marks = {name: len(socket.events) for name, socket in sockets.items()}

    # when: Redis restarts (forgetting every group and queued message)
    cluster.redis.restart()
    restarted = time.monotonic()

    # then: within 10 s every client receives the space's events again
    async def everyone_sees_a_reaction() -> bool:
        try:
            await sockets["host"].send({"type": "react", "emoji": "🎉"})
        except Exception:  # noqa: BLE001 - the host's own socket may be reconnecting; try again
            return False
        await asyncio.sleep(0.4)
        return all(any(e["type"] == "reaction" for e in s.events[marks[n] :]) for n, s in sockets.items())

    await until(everyone_sees_a_reaction, timeout=10, what="every socket gets events after the restart")
    recovered_s = time.monotonic() - restarted
    for name, socket in sockets.items():
        errors = [e for e in socket.events[marks[name] :] if e["type"] == "error"]
        assert len(errors) <= 1 and 1011 not in socket.closes, (name, errors, socket.closes)
    # and a listener who arrives now is answered by the worker and hears the speaker
    newcomer = await MediaClient(sockets["anonymous-a"]).start()
    await until(lambda: rms(newcomer.heard.since_last(0.5)) > 500, timeout=10, what="a new listener hears")
    print(f"redis restart: every socket receiving again after {recovered_s:.1f} s")
    for client in (speaker, newcomer):
        await client.close()
    for socket in [*sockets.values(), speaker_socket]:
        await socket.close()


async def test_redis_down_30_s_tells_clients_keeps_pages_and_the_worker_serves_after(cluster, tmp_path):
    # given: sockets on two web processes and a media worker
    scene = await database_sync_to_async(live_space)()
    a, b = cluster.start_web(), cluster.start_web()
    worker = cluster.start_media_worker()
    sockets = await open_sockets(scene, a, b)

    # when: Redis goes away for 30 s
    cluster.redis.stop()
    stopped = time.monotonic()

    # then: during the outage every client is told `unavailable` and closed with 4503, to come back,
    await until(
        lambda: all(s.seen("error", code="unavailable") and s.closes for s in sockets.values()),
        timeout=10,
        what="every socket is told the service is unavailable, and closed",
    )
    for name, socket in sockets.items():
        assert set(socket.closes) == {CLOSE_TRY_AGAIN_LATER}, (name, socket.closes)
    # pages still answer, and readiness says what is missing
    assert status_of(f"{a.url}/") == 200
    assert status_of(f"{b.url}/readyz") == 503
    await asyncio.sleep(max(0.0, 30 - (time.monotonic() - stopped)))
    cluster.redis.start()

    # and after it, the clients are back and the same media worker serves a new speaker and a new listener
    for name, socket in sockets.items():
        await until(lambda s=socket: s.ws is not None and s.connected.is_set(), timeout=15, what=f"{name} is back")
        assert 1011 not in socket.closes, (name, socket.closes)
    speaker_socket = await Socket([a.ws_url], scene.path, cookie=scene.cookies["speaker"]).start()
    speaker = await MediaClient(speaker_socket, wav=write_tone(tmp_path / "a440.wav", 440)).start()
    listener = await MediaClient(await Socket([b.ws_url], scene.path).start()).start()
    await until(lambda: rms(listener.heard.since_last(0.5)) > 500, timeout=15, what="the new listener hears")
    assert peaks(await listener.heard.record(1.5), count=1) == [440]
    assert worker.process.poll() is None, "the worker was not restarted"
    await sockets["host"].send({"type": "react", "emoji": "👏"})
    for name, socket in sockets.items():
        await until(lambda s=socket: s.seen("reaction", emoji="👏"), timeout=5, what=f"{name} sees a reaction")
    for client in (speaker, listener):
        await client.close()
    for socket in [*sockets.values(), speaker_socket, listener.socket]:
        await socket.close()
