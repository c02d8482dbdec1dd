"""The worker decides on its own who gets a media path: the stage publishes, the admitted listen."""

import asyncio

import pytest
from aiortc import RTCPeerConnection
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone

from media import signalling, worker
from media.aiortc_bridge import allow_loopback_candidates
from rooms import services
from rooms.models import Role, SpaceBlock
from tests.factories import UserFactory
from tests.media.clients import join_as_listener, join_as_speaker, rms, wait_connected, write_tone
from tests.rooms.scene import make_host, make_space, seat
from tests.rooms.ws import connect

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]
db = database_sync_to_async


async def test_a_listener_asking_to_publish_is_refused(loopback, tmp_path):
    space = await db(make_space)()
    listener = await db(UserFactory)()
    socket, _ = await connect(space.pk, listener)

    pc, _, answer = await join_as_speaker(socket, write_tone(tmp_path / "t.wav", 440))

    assert answer == {"type": "media.error", "code": "not_on_stage", "detail": "Only people on stage can speak."}
    await pc.close()
    await socket.disconnect()


async def test_a_listener_sending_audio_on_its_listening_connection_reaches_nobody(loopback, tmp_path):
    space = await db(make_space)()
    sneaky, other = await db(UserFactory)(), await db(UserFactory)()
    sneaky_socket, _ = await connect(space.pk, sneaky)
    other_socket, _ = await connect(space.pk, other)

    sneaky_pc, _, answer = await join_as_listener(sneaky_socket, also_send=write_tone(tmp_path / "t.wav", 440))
    other_pc, other_heard, _ = await join_as_listener(other_socket)
    await wait_connected(sneaky_pc)
    await wait_connected(other_pc)
    await asyncio.sleep(1.0)
    heard = await other_heard.record(1.5)

    # the worker answered receive-nothing for the sneaky transceiver, and the room stays silent
    assert answer["type"] == "media.answer"
    assert "a=sendonly" in answer["sdp"] and "a=sendrecv" not in answer["sdp"]
    assert len(heard) > 0 and rms(heard) < 50
    for pc in (sneaky_pc, other_pc):
        await pc.close()
    for socket in (sneaky_socket, other_socket):
        await socket.disconnect()


async def test_the_worker_itself_refuses_someone_kept_out_of_the_space(loopback):
    # given: a removed user, who could not open the space's socket; we talk to the worker directly
    host = await db(make_host)()
    space = await db(make_space)(host=host)
    removed = await db(UserFactory)()
    await db(seat)(space, removed, Role.SPEAKER, left_at=timezone.now())
    await db(SpaceBlock.objects.create)(space=space, user=removed, blocked_by=host)
    layer = get_channel_layer()
    reply_to = await layer.new_channel()
    media = worker.MediaWorker("media.worker.test", layer)
    task = asyncio.get_running_loop().create_task(media.run())
    allow_loopback_candidates()
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())

    # when
    for publish in (False, True):
        await layer.send(
            "media.worker.test",
            {
                "type": signalling.OFFER,
                "space_id": space.pk,
                "user_id": removed.pk,
                "reply_to": reply_to,
                "sdp": pc.localDescription.sdp,
                "publish": publish,
            },
        )
        answer = await asyncio.wait_for(layer.receive(reply_to), timeout=5)

        # then
        assert answer == {"type": "media.error", "code": "removed", "detail": "You were removed from this space."}
    assert media.rooms == {}
    task.cancel()
    await pc.close()


async def test_a_speaker_moved_to_the_audience_loses_the_publishing_path(loopback, tmp_path):
    host = await db(make_host)()
    space = await db(make_space)(host=host)
    singer = await db(UserFactory)()
    await db(seat)(space, singer, Role.SPEAKER, muted=False)
    socket, _ = await connect(space.pk, singer)
    pc, _, answer = await join_as_speaker(socket, write_tone(tmp_path / "t.wav", 440))
    assert answer["type"] == "media.answer"

    await db(services.speaker_move_to_audience)(actor=host, space_id=space.pk, target=singer)
    async with asyncio.timeout(5):
        while True:
            event = await socket.receive_json_from(timeout=5)
            if event["type"] == "media.error":
                break

    assert event["code"] == "not_on_stage"
    await pc.close()
    await socket.disconnect()
