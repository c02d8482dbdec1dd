"""Live captions end to end: an aiortc speaker, the real websocket, the in-process worker and its
captions process running the default engine (Moonshine) on recorded human speech."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from media import worker
from rooms.models import CaptionLine, Role
from tests.factories import UserFactory
from tests.media.clients import join_as_speaker, wait_connected
from tests.media.speech import BECKETT, BECKETT_S, TWO_CITIES, TWO_CITIES_S, speech_wav, word_error_rate
from tests.rooms.scene import make_host, make_space, seat
from tests.rooms.ws import connect, events_for

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]
db = database_sync_to_async


async def captions_on(socket) -> None:
    await socket.send_json_to({"type": "captions", "on": True, "ref": "cc"})
    async with asyncio.timeout(5):
        while (await socket.receive_json_from(timeout=5)).get("ref") != "cc":
            pass


async def caption_events(socket, *, until_final: str, timeout: float = 40) -> list[dict]:
    """Caption events on `socket` until a final line containing `until_final` (fails after `timeout` s)."""
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            event = await socket.receive_json_from(timeout=timeout)
            if event["type"].startswith("caption."):
                seen.append(event)
                if event["type"] == "caption.final" and until_final in event["text"].lower():
                    return seen


def finals(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "caption.final"]


async def test_a_speakers_words_reach_listeners_with_captions_on_as_partial_then_final_lines(loopback, tmp_path):
    # given: a speaker, a listener who turned captions on and one who didn't
    space = await db(make_space)()
    speaker, reader, other = await db(UserFactory)(), await db(UserFactory)(), await db(UserFactory)()
    await db(seat)(space, speaker, Role.SPEAKER, muted=False)
    speaker_socket, _ = await connect(space.pk, speaker)
    reader_socket, _ = await connect(space.pk, reader)
    other_socket, _ = await connect(space.pk, other)
    await captions_on(reader_socket)

    # when: the speaker reads the opening of A Tale of Two Cities
    wav = speech_wav(tmp_path / "two_cities.wav", "two_cities.wav", TWO_CITIES_S)
    pc, _, answer = await join_as_speaker(speaker_socket, wav, loop=False)
    assert answer["type"] == "media.answer"
    await wait_connected(pc)
    events = await caption_events(reader_socket, until_final="incredulity")

    # then: partial lines came before the finals, every line is the speaker's, and the words are right
    kinds = [e["type"] for e in events]
    assert "caption.partial" in kinds and kinds.index("caption.partial") < kinds.index("caption.final")
    assert {e["speaker"]["username"] for e in events} == {speaker.username}
    text = " ".join(e["text"] for e in finals(events))
    assert word_error_rate(text, TWO_CITIES) <= 0.15, text
    assert all(e["start_ms"] <= e["end_ms"] for e in events)
    # the listener with captions off got none
    assert not [e for e in await events_for(other_socket, 0.5) if e.get("type", "").startswith("caption.")]
    # and the transcript holds the finals, in order
    stored = await db(lambda: list(CaptionLine.objects.filter(space=space).order_by("start_ms")))()
    assert [(line.text, line.speaker_id) for line in stored] == [(e["text"], speaker.pk) for e in finals(events)]
    await pc.close()
    for socket in (speaker_socket, reader_socket, other_socket):
        await socket.disconnect()


async def test_two_speakers_in_turn_each_line_is_attributed_to_who_said_it(loopback, tmp_path):
    # given: two speakers and a reader
    space = await db(make_space)()
    first, second, reader = await db(UserFactory)(), await db(UserFactory)(), await db(UserFactory)()
    for person in (first, second):
        await db(seat)(space, person, Role.SPEAKER, muted=False)
    first_socket, _ = await connect(space.pk, first)
    second_socket, _ = await connect(space.pk, second)
    reader_socket, _ = await connect(space.pk, reader)
    await captions_on(reader_socket)

    # when: the first reads Dickens, then the second reads Beckett
    first_pc, _, _ = await join_as_speaker(
        first_socket, speech_wav(tmp_path / "a.wav", "two_cities.wav", TWO_CITIES_S), loop=False
    )
    events = await caption_events(reader_socket, until_final="incredulity")
    second_pc, _, _ = await join_as_speaker(
        second_socket, speech_wav(tmp_path / "b.wav", "beckett.wav", BECKETT_S), loop=False
    )
    events += await caption_events(reader_socket, until_final="better")

    # then: each final line is attributed to the one who said it
    by_speaker = {
        username: " ".join(e["text"] for e in finals(events) if e["speaker"]["username"] == username)
        for username in (first.username, second.username)
    }
    assert word_error_rate(by_speaker[first.username], TWO_CITIES) <= 0.2, by_speaker
    assert word_error_rate(by_speaker[second.username], BECKETT) <= 0.35, by_speaker
    for pc in (first_pc, second_pc):
        await pc.close()
    for socket in (first_socket, second_socket, reader_socket):
        await socket.disconnect()


async def test_the_host_turns_captions_off_and_on_and_no_audio_goes_to_recognition_while_off(loopback, tmp_path):
    # given: the host speaking (a recording on a loop), a reader with captions on
    host = await db(make_host)()
    space = await db(make_space)(host=host)
    await db(seat)(space, host, Role.HOST, muted=False)
    reader = await db(UserFactory)()
    host_socket, _ = await connect(space.pk, host)
    reader_socket, _ = await connect(space.pk, reader)
    await captions_on(reader_socket)
    wav = speech_wav(tmp_path / "loop.wav", "two_cities.wav", TWO_CITIES_S, silence_after=1.0)
    pc, _, _ = await join_as_speaker(host_socket, wav, loop=True)
    await caption_events(reader_socket, until_final="times")
    feed = worker.in_process_workers()[0].captions

    # when: the host turns captions off
    await host_socket.send_json_to({"type": "set_captions", "on": False, "ref": "off"})
    await asyncio.sleep(1.0)  # what was already on its way to recognition comes back now
    await events_for(reader_socket, 0.1)
    sent_when_off = feed.frames_sent
    quiet = await events_for(reader_socket, 4.0)

    # then: no caption events and no audio to the captions process while off
    assert not [e for e in quiet if e.get("type", "").startswith("caption.")]
    assert feed.frames_sent == sent_when_off
    assert [e["space"]["captions_enabled"] for e in quiet if e.get("type") == "space.updated"] in ([], [False])

    # when / then: on again, captions resume
    await host_socket.send_json_to({"type": "set_captions", "on": True})
    resumed = await caption_events(reader_socket, until_final="times", timeout=30)
    assert finals(resumed) and feed.frames_sent > sent_when_off
    await pc.close()
    for socket in (host_socket, reader_socket):
        await socket.disconnect()
