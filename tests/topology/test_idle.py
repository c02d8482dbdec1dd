"""The production topology holds a quiet room: two web processes and a media worker on Redis, idle for 20 s."""

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from tests.media.clients import peaks, rms, write_tone
from tests.topology.cluster import MediaClient, Socket, until
from tests.topology.scene import live_space

pytestmark = [pytest.mark.media, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
IDLE_S = 20  # longer than every timeout involved: the layer's 5 s blocking read, the 15 s health check


async def test_an_idle_room_stays_connected_then_delivers_and_keeps_its_audio(cluster, tmp_path):
    # given: a space with sockets on both web processes, a speaker and a listener through the worker
    scene = await database_sync_to_async(live_space)()
    a, b = cluster.start_web(), cluster.start_web()
    cluster.start_media_worker()
    where = {"host": a, "speaker": b, "fan": a, "ear": b, "other": a}
    sockets = {
        name: await Socket([web.ws_url], scene.path, cookie=scene.cookies[name]).start() for name, web in where.items()
    }
    sockets["anonymous-a"] = await Socket([a.ws_url], scene.path).start()
    sockets["anonymous-b"] = await Socket([b.ws_url], scene.path).start()
    speaker = await MediaClient(sockets["speaker"], wav=write_tone(tmp_path / "a440.wav", 440)).start()
    ear = await MediaClient(sockets["ear"]).start()
    await until(lambda: rms(ear.heard.since_last(0.5)) > 500, timeout=15, what="the listener hears the speaker")

    # when: nothing at all is sent for longer than every timeout, then the host approves and reacts
    await asyncio.sleep(IDLE_S)
    await sockets["host"].send({"type": "approve", "user": "fan"})
    await sockets["host"].send({"type": "react", "emoji": "🔥"})

    # then: every socket is still open and gets both events; the listener still hears the tone
    for name, socket in sockets.items():
        await until(lambda s=socket: s.seen("reaction"), timeout=5, what=f"{name} sees the reaction")
        assert [e["participant"]["role"] for e in socket.seen("participant.updated")] == ["speaker"], name
        assert socket.closes == [] and socket.errors() == [], name
    heard = await ear.heard.record(1.5)
    assert rms(heard) > 500 and peaks(heard, count=1) == [440]
    for client in (speaker, ear):
        await client.close()
    for socket in sockets.values():
        await socket.close()


async def test_the_configured_layer_waits_past_its_blocking_read_and_a_health_check(cluster):
    # given: the channel layer as settings configure it, on this test's Redis
    host = {**settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0], "address": cluster.redis.url}
    layer = RedisChannelLayer(hosts=[host], prefix="idle")
    channel = await layer.new_channel()

    # when: a receive waits longer than channels-redis's 5 s blocking read before a message comes
    loop = asyncio.get_running_loop()
    loop.call_later(RedisChannelLayer.brpop_timeout + 3, lambda: loop.create_task(layer.send(channel, {"type": "hi"})))
    message = await asyncio.wait_for(layer.receive(channel), timeout=RedisChannelLayer.brpop_timeout + 10)

    # then: it arrives (redis-py's default 5 s socket timeout made this read fail)
    assert message == {"type": "hi"}
    await layer.flush()
