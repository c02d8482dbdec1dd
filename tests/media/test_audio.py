"""Real audio through the media worker, with aiortc clients on loopback."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from rooms import services
from rooms.models import Role
from tests.factories import UserFactory
from tests.media.clients import join_as_listener, join_as_speaker, peaks, rms, wait_connected, write_tone
from tests.rooms.scene import make_host, make_space, seat
from tests.rooms.ws import connect, next_event

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]
db = database_sync_to_async


async def test_tone_reaches_listener_mute_silences_and_speakers_hear_only_each_other(loopback, tmp_path):
    # given: a host, two speakers and a listener in a live space
    host = await db(make_host)()
    space = await db(make_space)(host=host)
    alto, bass, fan = await db(UserFactory)(), await db(UserFactory)(), await db(UserFactory)()
    await db(seat)(space, alto, Role.SPEAKER, muted=False)
    await db(seat)(space, bass, Role.SPEAKER, muted=False)
    alto_socket, _ = await connect(space.pk, alto)
    bass_socket, _ = await connect(space.pk, bass)
    fan_socket, _ = await connect(space.pk, fan)

    # when: the first speaker plays 440 Hz and the listener records
    alto_pc, alto_heard, answer = await join_as_speaker(alto_socket, write_tone(tmp_path / "a440.wav", 440))
    assert answer["type"] == "media.answer", answer
    fan_pc, fan_heard, _ = await join_as_listener(fan_socket)
    await wait_connected(alto_pc)
    await wait_connected(fan_pc)
    await asyncio.sleep(1.0)
    alone = await fan_heard.record(1.5)

    # then: the listener hears 440 Hz, and everyone sees who is speaking
    assert rms(alone) > 500
    assert peaks(alone, count=1) == [440]
    speaking = await next_event(fan_socket, "speaking")
    assert speaking == {"type": "speaking", "space_id": space.pk, "user": {"username": alto.username}, "speaking": True}

    # when: the host mutes that speaker
    await db(services.speaker_mute)(actor=host, space_id=space.pk, target=alto)
    await asyncio.sleep(0.5)
    muted = await fan_heard.record(1.0)

    # then: silence reaches the listener
    assert rms(muted) < 50

    # when: the speaker unmutes and a second speaker plays 880 Hz
    await db(services.self_unmute)(actor=alto, space_id=space.pk)
    bass_pc, bass_heard, _ = await join_as_speaker(bass_socket, write_tone(tmp_path / "a880.wav", 880))
    await wait_connected(bass_pc)
    await asyncio.sleep(1.0)
    both = await fan_heard.record(1.5)
    alto_hears = await alto_heard.record(1.0)
    bass_hears = await bass_heard.record(1.0)

    # then: listeners hear both; each speaker hears only the other
    assert sorted(peaks(both, count=2)) == [440, 880]
    assert peaks(alto_hears, count=1) == [880]
    assert peaks(bass_hears, count=1) == [440]
    assert rms(alto_hears) > 500 and rms(bass_hears) > 500
    spectrum_of_self = peaks(alto_hears, count=2)
    assert 440 not in spectrum_of_self[:1]

    for pc in (alto_pc, bass_pc, fan_pc):
        await pc.close()
    for socket in (alto_socket, bass_socket, fan_socket):
        await socket.disconnect()


async def test_a_speaker_whose_connection_drops_reconnects_and_is_heard_again(loopback, tmp_path):
    # given: a speaker heard by a listener
    space = await db(make_space)()
    singer, fan = await db(UserFactory)(), await db(UserFactory)()
    await db(seat)(space, singer, Role.SPEAKER, muted=False)
    singer_socket, _ = await connect(space.pk, singer)
    fan_socket, _ = await connect(space.pk, fan)
    wav = write_tone(tmp_path / "a440.wav", 440)
    first_pc, _, _ = await join_as_speaker(singer_socket, wav)
    fan_pc, fan_heard, _ = await join_as_listener(fan_socket)
    await wait_connected(first_pc)
    await wait_connected(fan_pc)

    # when: the speaker's connection dies and their client offers again on the same socket
    await first_pc.close()
    await asyncio.sleep(0.5)
    gap = await fan_heard.record(0.5)
    second_pc, _, answer = await join_as_speaker(singer_socket, wav)
    await wait_connected(second_pc)
    await asyncio.sleep(1.0)
    back = await fan_heard.record(1.5)

    # then: silence while they were gone, their tone again after, as a speaker
    assert rms(gap) < 50
    assert answer["type"] == "media.answer" and answer["publish"] is True
    assert peaks(back, count=1) == [440]
    for pc in (second_pc, fan_pc):
        await pc.close()
    for socket in (singer_socket, fan_socket):
        await socket.disconnect()
