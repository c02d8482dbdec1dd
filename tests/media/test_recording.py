"""Recording (issue 11): the room's one encoded mix into Ogg Opus, its replay, and clips of it.

The Ogg tests work on packets from the mixer's own encoder. The others run the
real in-process media worker with aiortc peers on loopback, as test_audio.py
does, and decode what was stored with PyAV.
"""

import asyncio
import io
import time

import pytest
from channels.db import database_sync_to_async

from media import worker, worker_recording
from media.models import Clip, ClipState, Recording, RecordingState
from media.recording import ogg, services
from media.recording.ogg import OggOpusWriter
from media.recording.recorder import Recorder
from media.room import Room
from rooms import services as rooms_services
from rooms.models import Role
from tests.factories import UserFactory
from tests.media.clients import join_as_listener, join_as_speaker, peaks, rms, wait_connected, write_tone
from tests.media.recordings import (
    RATE,
    ScriptedTrack,
    decode,
    encoded_tone,
    join_with_track,
    packet_count,
    seconds,
)
from tests.rooms.scene import make_host, make_space, seat
from tests.rooms.ws import connect
from tests.topology.cluster import until

db = database_sync_to_async
# 440 Hz for 5 s, zero samples for 2 s, 880 Hz for 3 s, on the recording's own clock.
SCRIPT = [(5.0, 440), (2.0, 0), (3.0, 880)]
SCRIPT_S = sum(part for part, _ in SCRIPT)


@pytest.fixture
def recording_folders(settings, tmp_path):
    """The spool and the storage (MEDIA_ROOT) in this test's own folder."""
    settings.SPACES_RECORDING_SPOOL_DIR = tmp_path / "spool"
    settings.MEDIA_ROOT = tmp_path / "uploads"
    return tmp_path


def room_of(space_id: int):
    rooms = [w.rooms[space_id] for w in worker.in_process_workers() if space_id in w.rooms]
    assert len(rooms) == 1, rooms
    return rooms[0]


def ready_recordings(space_id: int) -> list[Recording]:
    return list(Recording.objects.filter(space_id=space_id, state=RecordingState.READY).order_by("pk"))


# The container


def unfinished_file(packets: int) -> tuple[bytes, bytes, int]:
    """A tone's file as a writer that died leaves it (never closed): its bytes, its head, its whole pages' packets."""
    head, encoded = encoded_tone(440, packets)
    file = io.BytesIO()
    writer = OggOpusWriter(file, head=head)
    for packet in encoded:
        writer.write(packet)
    return file.getvalue(), head, packets - packets % ogg.PAGE_PACKETS


def test_a_file_cut_short_mid_page_reads_up_to_its_last_whole_page():
    # given: 60 packets written, the last 10 still held (never flushed), and the file cut inside its last page
    data, head, kept = unfinished_file(60)
    assert kept == 50
    last_page_at = data.rfind(b"OggS")
    truncated = data[: last_page_at + 40]

    # when: it is read, measured, and cut from its start to well past its end
    read_head, packets = ogg.read(io.BytesIO(truncated))
    clip = io.BytesIO()
    clipped = ogg.cut(io.BytesIO(truncated), clip, start_ms=0, end_ms=30_000)

    # then: everything up to the last whole page is there, and nothing of the broken one
    whole_ms = (kept * ogg.PACKET_SAMPLES - ogg.pre_skip_of(head)) * 1000 // ogg.SAMPLE_RATE
    assert read_head == head
    assert len(list(packets)) == kept - ogg.PAGE_PACKETS  # the page cut in two is dropped
    assert ogg.duration_ms(io.BytesIO(truncated)) == whole_ms - ogg.PAGE_PACKETS * ogg.PACKET_MS
    assert ogg.duration_ms(io.BytesIO(data)) == whole_ms  # uncut, the unflushed packets are all that's missing
    assert clipped == ogg.duration_ms(io.BytesIO(clip.getvalue()))
    assert clipped == whole_ms - ogg.PAGE_PACKETS * ogg.PACKET_MS


def test_a_cut_copies_the_packets_of_its_moments_and_plays_for_its_length(tmp_path):
    # given: a whole 5.2 s file of 440 Hz
    head, encoded = encoded_tone(440, 260)
    path = tmp_path / "whole.ogg"
    with path.open("wb") as file:
        writer = OggOpusWriter(file, head=head)
        for packet in encoded:
            writer.write(packet)
        writer.close()

    # when: 1 s to 3 s is cut from it
    clip_path = tmp_path / "clip.ogg"
    with path.open("rb") as source, clip_path.open("wb") as target:
        clipped = ogg.cut(source, target, start_ms=1000, end_ms=3000)

    # then: the clip holds exactly those packets, unchanged, says its length and plays for it
    with clip_path.open("rb") as file:
        clip_head, packets = ogg.read(file)
        assert list(packets) == encoded[50:150]
    assert clip_head == head
    with clip_path.open("rb") as file:
        assert ogg.duration_ms(file) == clipped
    assert abs(clipped - 2000) <= ogg.PACKET_MS
    heard = decode(clip_path)
    assert abs(len(heard) / RATE - clipped / 1000) < 0.005
    assert peaks(heard, count=1) == [440]
    with path.open("rb") as file:
        assert abs(ogg.duration_ms(file) - len(decode(path)) * 1000 / RATE) < 1


class CountedReads(io.BytesIO):
    """A file that counts the bytes read from it."""

    read_bytes = 0

    def read(self, size=-1):
        data = super().read(size)
        self.read_bytes += len(data)
        return data


def test_a_clip_of_a_long_recordings_end_reads_its_own_pages_not_the_whole_recording():
    # given: two hours of packets (numbered, so each is known by its bytes), some holding "OggS" to mislead
    # the search for pages, and a page flushed short here and there as a live clip's flush leaves them
    packets = [(b"OggS%06d" if n % 97 == 0 else b"pk%06d") % n + b"." * 50 for n in range(360_000)]
    file = io.BytesIO()
    writer = OggOpusWriter(file, head=ogg.opus_head())
    for n, packet in enumerate(packets):
        writer.write(packet)
        if n % 1_001 == 0:
            writer.flush()
    writer.close()
    source = CountedReads(file.getvalue())

    # when: the 30 s from 1:59:00 are cut
    clip = io.BytesIO()
    clipped = ogg.cut(source, clip, start_ms=7_140_000, end_ms=7_170_000)

    # then: exactly those packets, having read a small part of the file
    _, copied = ogg.read(io.BytesIO(clip.getvalue()))
    first = (7_140_000 * 48 + ogg.DEFAULT_PRE_SKIP) // ogg.PACKET_SAMPLES
    assert list(copied) == packets[first : first + 1_500]
    assert clipped == (1_500 * ogg.PACKET_SAMPLES - ogg.DEFAULT_PRE_SKIP) * 1000 // ogg.SAMPLE_RATE
    assert source.read_bytes < 12 * ogg.SEEK_WINDOW < len(source.getvalue()) // 25


def test_a_file_with_no_whole_audio_page_is_no_ogg_opus_or_lasts_nothing():
    data, _, _ = unfinished_file(10)  # head and tags only: 10 packets never reach a page
    assert ogg.duration_ms(io.BytesIO(data)) == 0
    assert ogg.duration_ms(io.BytesIO(data[:20])) == 0
    with pytest.raises(ValueError):
        ogg.read(io.BytesIO(b"not an ogg file at all"))


# The room's clock


@pytest.mark.parametrize(("stall_s", "padded"), [(0.15, False), (0.6, True)], ids=["caught-up", "skipped"])
async def test_a_recording_keeps_to_the_wall_clock_when_the_room_falls_behind(tmp_path, stall_s, padded):
    # given: a room recording its (silent) mix
    room = Room(1, ssrc=1, emit=lambda event: None)
    recorder = Recorder(1, tmp_path / "spool.ogg", head=room.mixer.opus_head())
    room.record(recorder)
    room.start()
    await asyncio.sleep(1.0)

    # when: the event loop is blocked for a while: 150 ms, which the room's clock catches up on by
    # ticking faster; 600 ms, more than it catches up on, so it skips those ticks
    time.sleep(stall_s)
    await asyncio.sleep(1.0)
    wall_ms = (time.monotonic() - recorder.started) * 1000
    recorded_ms = recorder.writer.packets * ogg.PACKET_MS
    await room.close()
    room.stop_recording()

    # then: the recording is as long as the time that passed: silence fills only the ticks that were skipped
    assert abs(recorded_ms - wall_ms) <= 3 * ogg.PACKET_MS, (recorded_ms, wall_ms, recorder.padded)
    assert (recorder.padded > 0) == padded, recorder.padded
    with recorder.path.open("rb") as file:
        assert ogg.duration_ms(file) == recorder.writer.duration_ms


# The worker


@pytest.mark.media
@pytest.mark.django_db(transaction=True)
async def test_a_recorded_space_replays_what_was_said_when_it_was_said_and_clips_from_its_replay(
    loopback, recording_folders
):
    # given: a recorded space with a speaker; a listener comes for a while
    host = await db(make_host)()
    space = await db(make_space)(host=host, recording_enabled=True)
    singer, fan = await db(UserFactory)(), await db(UserFactory)()
    await db(seat)(space, singer, Role.SPEAKER, muted=False)
    singer_socket, _ = await connect(space.pk, singer)
    fan_socket, _ = await connect(space.pk, fan)

    # when: the speaker plays 440 Hz for 5 s, zero samples for 2 s, then 880 Hz for 3 s, timed from the
    # moment the recording started; a listener hears from 1.5 s to 8 s (the room records with and without
    # one); the space ends at 10 s
    began = time.monotonic()
    track = ScriptedTrack(SCRIPT)
    singer_pc, answer = await join_with_track(singer_socket, track)
    assert answer["type"] == "media.answer", answer
    room = room_of(space.pk)
    recorder = room.recorder
    assert recorder is not None, "the room records from its first offer"
    track.origin = recorder.started
    await wait_connected(singer_pc)
    await asyncio.sleep(recorder.started + 1.5 - time.monotonic())
    assert not room.listeners
    fan_pc, fan_heard, _ = await join_as_listener(fan_socket)
    await wait_connected(fan_pc)
    await asyncio.sleep(recorder.started + 8.0 - time.monotonic())
    assert len(room.listeners) == 1
    await fan_pc.close()
    await fan_socket.disconnect()
    await asyncio.sleep(recorder.started + SCRIPT_S - time.monotonic())
    assert not room.listeners
    await db(rooms_services.space_end)(actor=host, space_id=space.pk)
    recordings = await until(lambda: db(ready_recordings)(space.pk), timeout=10, what="the recording is ready")
    ended = time.monotonic()

    # then: one recording, ready, 10 s long, kept for the retention period
    assert len(recordings) == 1
    recording = recordings[0]
    assert not recording.ended_early
    assert recording.size_bytes == recording.file.size > 0
    assert recording.expires_at > recording.ended_at
    assert not recorder.path.exists(), "the spool file was moved into storage"
    heard = decode(recording.file.path)
    assert abs(len(heard) / RATE - SCRIPT_S) <= 0.3, len(heard) / RATE
    assert abs(recording.duration_ms - len(heard) * 1000 / RATE) < 25

    # and: 440 Hz in the first part, silence in the middle, 880 Hz in the last, where they were said
    assert peaks(seconds(heard, 1.0, 4.8), count=1) == [440]
    assert rms(seconds(heard, 1.0, 4.8)) > 2000
    assert rms(seconds(heard, 5.3, 6.7)) < 50
    assert peaks(seconds(heard, 7.3, 9.6), count=1) == [880]
    assert rms(seconds(heard, 7.3, 9.6)) > 2000

    # and: the room encoded once per tick at most, with or without a listener: one packet recorded per encode
    # or per packet forwarded (one voice: issue 14), no stretch left empty (filled with silence), and the
    # listener heard that same stream
    assert recorder.padded * ogg.PACKET_MS <= 300, "silence filled in: the room stopped encoding for a while"
    assert room.mixer.encodes + room.forwarded == packet_count(recording.file.path) - recorder.padded
    assert room.mixer.encodes <= room.ticks <= (ended - began) / 0.020 + 1
    assert peaks(fan_heard.since(0), count=1) == [440]
    print(
        f"recording: {len(heard) / RATE:.3f} s decoded; {room.mixer.encodes} encodes, {room.forwarded} forwarded"
        f" in {room.ticks} ticks"
        f" over {ended - began:.2f} s"
    )

    # when: someone who heard it clips seconds 2 to 5 of the replay
    clip = await db(services.clip_from_replay)(actor=fan, recording_id=recording.pk, start_ms=2000, duration_ms=3000)

    # then: the clip is ready and plays 3 s of 440 Hz
    clip = await db(Clip.objects.get)(pk=clip.pk)
    assert clip.state == ClipState.READY and clip.recording_id == recording.pk
    assert (clip.start_ms, clip.end_ms) == (2000, 2000 + clip.duration_ms)
    clipped = decode(clip.file.path)
    assert abs(len(clipped) / RATE - 3.0) <= 0.1, len(clipped) / RATE
    assert peaks(clipped, count=1) == [440]
    assert rms(clipped) > 2000

    await singer_pc.close()
    await singer_socket.disconnect()


@pytest.mark.media
@pytest.mark.django_db(transaction=True)
async def test_the_last_seconds_of_a_live_recording_end_at_the_moment_asked(
    loopback, recording_folders, tmp_path, monkeypatch
):
    # given: a recorded space whose speaker has been speaking for a few seconds; "the last 30 s" made
    # 4 s here, so that a few seconds of recording show where the clip starts as well as where it ends
    monkeypatch.setattr(services, "CLIP_MAX_MS", 4000)
    host = await db(make_host)()
    space = await db(make_space)(host=host, recording_enabled=True)
    singer, fan = await db(UserFactory)(), await db(UserFactory)()
    await db(seat)(space, singer, Role.SPEAKER, muted=False)
    singer_socket, _ = await connect(space.pk, singer)
    fan_socket, _ = await connect(space.pk, fan)
    singer_pc, _, answer = await join_as_speaker(singer_socket, write_tone(tmp_path / "a440.wav", 440))
    assert answer["type"] == "media.answer", answer
    await wait_connected(singer_pc)
    await asyncio.sleep(6.5)

    # when: a listener asks for the last seconds while it is live
    clip = await db(services.clip_of_live)(actor=fan, space_id=space.pk)
    assert clip.state == ClipState.PENDING
    clip = await until(
        lambda: db(Clip.objects.filter(pk=clip.pk, state=ClipState.READY).first)(),
        timeout=5,
        what="the worker cuts the clip",
    )

    # then: it ends within 1 s of the moment asked, on the recording's timeline, and plays its 4 s of 440 Hz
    recording = await db(Recording.objects.get)(space=space)
    assert clip.recording_id == recording.pk
    asked_ms = (clip.asked_at - recording.started_at).total_seconds() * 1000
    assert abs(clip.end_ms - asked_ms) <= 1000, (clip.end_ms, asked_ms)
    assert clip.start_ms == clip.end_ms - clip.duration_ms
    assert abs(clip.duration_ms - 4000) <= 2 * ogg.PACKET_MS
    heard = decode(clip.file.path)
    assert abs(len(heard) * 1000 / RATE - clip.duration_ms) < 25
    assert peaks(heard, count=1) == [440]
    assert rms(heard) > 500

    # and: the recording goes on, and is kept whole when the space ends
    await db(rooms_services.space_end)(actor=host, space_id=space.pk)
    recordings = await until(lambda: db(ready_recordings)(space.pk), timeout=10, what="the recording is ready")
    assert recordings[0].duration_ms > clip.end_ms
    await singer_pc.close()
    for socket in (singer_socket, fan_socket):
        await socket.disconnect()


async def test_a_recording_switched_off_while_it_was_being_set_up_stops_at_once(tmp_path, monkeypatch):
    # given: a room the space wants recorded, and the off switch arriving while the recording row is made
    media_worker = worker.MediaWorker("recording-switch-test")
    room = Room(1, ssrc=1, emit=lambda event: None)
    media_worker.rooms[1] = room
    room.recording_wanted = True

    def begin(*, space_id, folder):
        room.recording_wanted = False
        return 7, tmp_path / "spool.ogg"

    finished = []
    monkeypatch.setattr(worker_recording, "recording_begin", begin)
    monkeypatch.setattr(worker_recording, "recording_finish", lambda *, recording_id: finished.append(recording_id))

    # when
    await media_worker._start_recording(room)
    await asyncio.gather(*media_worker.finishing)

    # then: nothing goes on recording; what was opened is finished (an empty one is dropped there)
    assert room.recorder is None
    assert finished == [7]
