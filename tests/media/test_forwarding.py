"""Forwarding one voice to listeners instead of mixing it (issue 14), and the cascade's entry points.

The unit tests drive a `Room` by hand: speakers' packets in through
`on_speaker_packet`, `tick()` on a clock of our own (`time.monotonic`
replaced), listeners as fake sinks that keep what they were sent. The last
test runs the real in-process worker with aiortc peers on loopback, as
test_audio.py does.
"""

import asyncio
import itertools
import time

import numpy as np
import pytest
from aiortc.rtp import RtpPacket
from channels.db import database_sync_to_async

from media import worker
from media.aiortc_bridge import RtpShape, watch_receiver
from media.mixer import FRAME_SAMPLES, Mixer
from media.recording.recorder import Recorder
from media.room import STALL_TICKS, Listener, Room, Speaker
from rooms.models import Role
from tests.factories import UserFactory
from tests.media.clients import join_as_listener, peaks, rms, wait_connected
from tests.media.recordings import ScriptedTrack, join_with_track, tone
from tests.media.sinks import KeptSink
from tests.rooms.scene import make_space, seat
from tests.rooms.ws import connect

db = database_sync_to_async
SHAPE = RtpShape(ssrc=0x5EED, payload_type=111, mid=None, extensions=())


def opus_frames(frequency: float, count: int) -> list[bytes]:
    """`count` 20 ms Opus packets of a continuous tone (0 Hz: zero samples), all different (a little noise)."""
    encoder = Mixer()
    noise = np.random.default_rng(int(frequency)).integers(-40, 40, size=(count, FRAME_SAMPLES), dtype=np.int16)
    if not frequency:
        noise[:] = 0
    frames = [encoder.encode(np.repeat(tone(frequency, n * FRAME_SAMPLES) + noise[n], 2))[0] for n in range(count)]
    if frequency:
        assert len(set(frames)) == count
    return frames


class FakeSink(KeptSink):
    """A listener's sink that keeps the RTP packets it was given, parsed."""

    def keep(self, data: bytes) -> None:
        self.sent.append(RtpPacket.parse(data))


class Stage:
    """A room with one fake listener, speakers fed by hand, and a clock that moves 20 ms per step."""

    def __init__(self, monkeypatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr(time, "monotonic", lambda: self.now)
        self.room = Room(1, ssrc=SHAPE.ssrc, emit=lambda event: None)
        self.sink = FakeSink()
        self.room.add_listener("fan", Listener(key="fan", pc=None, sink=self.sink, shape=SHAPE))
        self.next_seq: dict[str, int] = {}
        self.first_seq: dict[str, int] = {}
        self.ts_step: dict[str, int] = {}
        self.mixed: list[tuple[str, int]] = []  # (speaker, sequence number) of every frame the mix summed
        mix = self.room.mixer.mix

        def counted_mix(frames):
            for key, speaker in self.room.speakers.items():
                if any(frame is speaker.input.last_samples for frame in frames):
                    self.mixed.append((key, speaker.input.pulled_seq))
            return mix(frames)

        self.room.mixer.mix = counted_mix

    def add_speaker(self, key: str, user_id: int, first_seq: int, ts_step: int = FRAME_SAMPLES) -> Speaker:
        speaker = Speaker(user_id=user_id, username=key, pc=None, slots=[], muted=False)
        pull = speaker.input.pull

        def kept_pull(*args):
            speaker.input.last_samples = pull(*args)
            return speaker.input.last_samples

        speaker.input.last_samples = None
        speaker.input.pull = kept_pull
        self.room.add_speaker(key, speaker)
        self.next_seq[key] = self.first_seq[key] = first_seq
        self.ts_step[key] = ts_step
        return speaker

    def packet(self, key: str, payload: bytes, seq: int | None = None) -> int:
        """Speaker `key`'s next packet (or the one numbered `seq`) arrives now; returns its number."""
        if seq is None:
            seq = self.next_seq[key]
            self.next_seq[key] = (seq + 1) & 0xFFFF
        frames_in = (seq - self.first_seq[key]) & 0xFFFF
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=77_000 + frames_in * self.ts_step[key])
        packet.payload = payload
        self.room.on_speaker_packet(key, packet)
        return seq

    def step(self, sends: dict[str, bytes | None]) -> None:
        """Half a frame: the packets arrive; the other half: the room's tick."""
        self.now += 0.010
        for key, payload in sends.items():
            if payload is not None:
                self.packet(key, payload)
        self.now += 0.010
        self.room.tick()

    def heard(self) -> list[tuple[int, int, bytes]]:
        return [(p.sequence_number, p.timestamp, p.payload) for p in self.sink.sent]


def assert_continuous(heard: list[tuple[int, int, bytes]]) -> None:
    """Every packet follows the one before: sequence number + 1, timestamp + 960."""
    steps = {((b[0] - a[0]) & 0xFFFF, (b[1] - a[1]) & 0xFFFFFFFF) for a, b in itertools.pairwise(heard)}
    assert steps == {(1, FRAME_SAMPLES)}, steps


def test_one_voice_goes_to_listeners_as_it_arrives_with_no_encode(monkeypatch):
    # given: one unmuted speaker, whose stream starts near the end of the sequence numbers
    stage = Stage(monkeypatch)
    stage.add_speaker("alto", 1, first_seq=65_500)
    alto = opus_frames(440, 100)
    for n in range(10):
        stage.step({"alto": alto[n]})
    assert stage.room.forwarding is stage.room.speakers["alto"]
    encodes = stage.room.mixer.encodes
    sent_before = len(stage.sink.sent)

    # when: more packets arrive, between ticks
    stage.now += 0.005
    seq = stage.packet("alto", alto[10])

    # then: the listener has it at once, before any tick, untouched, on the room's SSRC
    assert len(stage.sink.sent) == sent_before + 1
    last = stage.sink.sent[-1]
    assert (last.payload, last.ssrc) == (alto[10], SHAPE.ssrc)
    stage.now += 0.015
    stage.room.tick()
    for n in range(11, 100):
        stage.step({"alto": alto[n]})

    # and: no encode while forwarding; one continuous stream across the wrap of the sequence numbers
    assert stage.room.mixer.encodes == encodes
    heard = stage.heard()
    assert_continuous(heard)
    assert [payload for _, _, payload in heard[-90:]] == alto[10:]
    assert seq == 65_510 and stage.room.forwarded >= 90


def test_a_second_voice_switches_to_the_mix_and_back_with_every_frame_heard_once(monkeypatch):
    # given: alto speaks alone; bass is unmuted but silent
    stage = Stage(monkeypatch)
    stage.add_speaker("alto", 1, first_seq=100)
    stage.add_speaker("bass", 2, first_seq=9_000)
    alto, bass, hush = opus_frames(440, 200), opus_frames(880, 200), opus_frames(0, 1)[0]
    for n in range(30):
        stage.step({"alto": alto[n], "bass": hush})
    assert stage.room.forwarding is stage.room.speakers["alto"]
    encodes = stage.room.mixer.encodes

    # when: bass starts speaking
    for n in range(30, 80):
        stage.step({"alto": alto[n], "bass": bass[n]})

    # then: the room mixes from bass's first loud frame on
    assert stage.room.forwarding is None
    assert stage.room.mixer.encodes - encodes == 50

    # when: alto stops (silence), bass goes on; past the speaking hang (0.4 s)
    for n in range(80, 200):
        stage.step({"alto": hush, "bass": bass[n]})

    # then: bass is forwarded
    assert stage.room.forwarding is stage.room.speakers["bass"]
    heard = stage.heard()
    assert_continuous(heard)
    forwarded = [payload for _, _, payload in heard]

    # and: every frame of alto's tone went out exactly once, forwarded or mixed
    alto_forwarded = [alto.index(p) for p in forwarded if p in alto]
    alto_mixed = [seq - 100 for key, seq in stage.mixed if key == "alto" and seq is not None and seq - 100 < 80]
    assert sorted(alto_forwarded + alto_mixed) == list(range(80))
    assert alto_forwarded and alto_mixed
    # and: bass's tone too, from its first loud frame (before that the room forwarded alto alone)
    bass_forwarded = [bass.index(p) for p in forwarded if p in bass]
    bass_mixed = [seq - 9_000 for key, seq in stage.mixed if key == "bass" and seq is not None and seq - 9_000 >= 30]
    assert sorted(bass_forwarded + bass_mixed) == list(range(30, 200))
    assert bass_forwarded == list(range(bass_forwarded[0], 200))
    assert stage.room.switches == 3


def test_frames_that_waited_at_the_switch_are_forwarded_at_once_in_order(monkeypatch):
    # given: two unmuted speakers mixing; alto's packets come two at a time
    stage = Stage(monkeypatch)
    stage.add_speaker("alto", 1, first_seq=500)
    stage.add_speaker("bass", 2, first_seq=0)
    alto, bass = opus_frames(440, 60), opus_frames(880, 60)
    for n in range(20):
        stage.step({"alto": alto[n], "bass": bass[n]})
    assert stage.room.forwarding is None

    # when: bass leaves the stage while alto has a frame waiting
    stage.packet("alto", alto[20])
    stage.packet("alto", alto[21])
    waiting = [seq for seq, _ in stage.room.speakers["alto"].input.waiting()]
    stage.room.remove("bass")
    stage.now += 0.020
    stage.room.tick()

    # then: the room forwards alto, the waiting frames first, continuing the mixed stream
    assert stage.room.forwarding is stage.room.speakers["alto"]
    assert waiting == [520, 521]
    heard = stage.heard()
    assert_continuous(heard)
    pulled = stage.room.speakers["alto"].input.pulled_seq
    assert heard[-1][2] == alto[21] and pulled == 520 and heard[-2][2] not in alto[21:]


def test_a_loss_upstream_stays_a_gap_and_a_reordered_packet_keeps_its_number(monkeypatch):
    # given: alto forwarded
    stage = Stage(monkeypatch)
    stage.add_speaker("alto", 1, first_seq=1000)
    alto = opus_frames(440, 40)
    for n in range(20):
        stage.step({"alto": alto[n]})
    assert stage.room.forwarding is not None
    last_seq, last_ts, _ = stage.heard()[-1]

    # when: frame 20 is lost, 22 comes before 21
    stage.step({})
    stage.now += 0.010
    stage.packet("alto", alto[22], seq=1022)
    stage.packet("alto", alto[21], seq=1021)
    stage.next_seq["alto"] = 1023
    stage.now += 0.010
    stage.room.tick()

    # then: the listener sees the gap where the loss was, and 21 and 22 at their own numbers
    sent = stage.heard()[-2:]
    assert [(seq - last_seq) & 0xFFFF for seq, _, _ in sent] == [3, 2]
    assert [(ts - last_ts) & 0xFFFFFFFF for _, ts, _ in sent] == [3 * FRAME_SAMPLES, 2 * FRAME_SAMPLES]
    assert [payload for _, _, payload in sent] == [alto[22], alto[21]]


def test_a_forwarded_speaker_whose_stream_starts_afresh_is_followed_on_without_a_jump(monkeypatch):
    # given: alto forwarded
    stage = Stage(monkeypatch)
    stage.add_speaker("alto", 1, first_seq=40_000)
    alto = opus_frames(440, 60)
    for n in range(20):
        stage.step({"alto": alto[n]})
    assert stage.room.forwarding is not None

    # when: alto's sequence numbers start again far away (a new stream on the same connection)
    stage.next_seq["alto"] = stage.first_seq["alto"] = 7
    for n in range(20, 60):
        stage.step({"alto": alto[n]})

    # then: the listener's stream goes on, one packet after the other, with all of alto's frames
    heard = stage.heard()
    assert_continuous(heard)
    assert [payload for _, _, payload in heard if payload in alto[20:]] == alto[20:]


def test_a_voice_in_packets_other_than_20_ms_is_mixed_not_forwarded(monkeypatch):
    # given: one speaker whose packets are stamped 10 ms apart
    stage = Stage(monkeypatch)
    stage.add_speaker("alto", 1, first_seq=0, ts_step=FRAME_SAMPLES // 2)

    # when
    for payload in opus_frames(440, 30):
        stage.step({"alto": payload})

    # then: the room mixes (one packet, one encode per tick), as it would a recording's 20 ms a packet
    assert stage.room.forwarding is None and stage.room.forwarded == 0
    assert stage.room.mixer.encodes == stage.room.ticks == 30


def test_a_forwarded_speaker_muted_is_cut_at_once_and_the_mix_goes_on_from_there(monkeypatch):
    # given: alto forwarded
    stage = Stage(monkeypatch)
    stage.add_speaker("alto", 1, first_seq=0)
    alto = opus_frames(440, 40)
    for n in range(20):
        stage.step({"alto": alto[n]})
    assert stage.room.forwarding is not None
    sent = len(stage.sink.sent)

    # when: the host mutes alto, whose browser goes on sending
    stage.room.set_muted(1, True)
    for n in range(20, 40):
        stage.step({"alto": alto[n]})

    # then: none of it reaches the listener; the mix (silence) follows on, one packet per tick
    heard = stage.heard()
    assert stage.room.forwarding is None
    assert not set(alto[20:]) & {payload for _, _, payload in heard}
    assert len(heard) - sent == 20
    assert_continuous(heard)


def test_a_stalled_voice_gives_way_to_the_mix_where_the_stream_would_be_by_now(monkeypatch, tmp_path):
    # given: alto forwarded, and the room recording
    stage = Stage(monkeypatch)
    recorder = Recorder(1, tmp_path / "spool.ogg", head=stage.room.mixer.opus_head())
    stage.room.record(recorder)
    stage.add_speaker("alto", 1, first_seq=3000)
    alto = opus_frames(440, 40)
    for n in range(20):
        stage.step({"alto": alto[n]})
    assert stage.room.forwarding is not None
    forwarded_seq, forwarded_ts, _ = stage.heard()[-1]
    sent = len(stage.sink.sent)

    # when: alto's packets stop coming
    for _ in range(STALL_TICKS + 10):
        stage.step({})

    # then: the room mixes silence, its first packet as far on as the time since the last forwarded one
    assert stage.room.forwarding is None
    heard = stage.heard()
    first_seq, first_ts, _ = heard[sent]
    skipped = (first_seq - forwarded_seq) & 0xFFFF
    assert skipped == STALL_TICKS
    assert (first_ts - forwarded_ts) & 0xFFFFFFFF == skipped * FRAME_SAMPLES
    # and: the recording holds a packet for every 20 ms, silence where nothing came
    assert recorder.writer.packets == len(heard) + STALL_TICKS - 1
    assert recorder.padded == STALL_TICKS - 1
    stage.room.stop_recording()


def test_every_listener_packet_goes_to_the_relays_too(monkeypatch):
    # given: a room with one relay, mixing then forwarding
    stage = Stage(monkeypatch)
    relayed: list[tuple[int, int, bytes]] = []
    stage.room.add_relay("edge-1", lambda payload, seq, ts: relayed.append((seq, ts, payload)))
    stage.add_speaker("alto", 1, first_seq=0)
    alto = opus_frames(440, 20)

    # when
    for n in range(10):
        stage.step({"alto": alto[n]})
    stage.room.remove_relay("edge-1")
    for n in range(10, 20):
        stage.step({"alto": alto[n]})

    # then: the relay got what the listeners got, mixed and forwarded, until it was removed
    heard = stage.heard()
    assert relayed == heard[: len(relayed)]
    assert stage.room.mixer.encodes >= 1 and stage.room.forwarded >= 5
    assert len(relayed) < len(heard)


async def test_an_edge_room_sends_what_its_origin_relays_as_it_is_and_never_encodes():
    # given: an edge room with a listener
    room = Room(1, ssrc=SHAPE.ssrc, emit=lambda event: None, edge=True)
    sink = FakeSink()
    room.add_listener("fan", Listener(key="fan", pc=None, sink=sink, shape=SHAPE))
    payload = opus_frames(440, 1)[0]

    # when
    room.start()
    room.tick()
    room.relayed(payload, 4321, 123_456)

    # then
    assert [(p.sequence_number, p.timestamp, p.payload, p.ssrc) for p in sink.sent] == [
        (4321, 123_456, payload, SHAPE.ssrc)
    ]
    assert room.task is None and room.mixer.encodes == 0 and room.ticks == 0


# The worker, with aiortc peers


class Voice(ScriptedTrack):
    """A microphone playing a tone whose frequency the test changes as it goes (0: zero samples)."""

    def __init__(self, frequency: float) -> None:
        super().__init__([])
        self.frequency = frequency
        self.origin = 0.0

    def frequency_at(self, t: float) -> float:
        return self.frequency


def room_of(space_id: int) -> Room:
    rooms = [w.rooms[space_id] for w in worker.in_process_workers() if space_id in w.rooms]
    assert len(rooms) == 1, rooms
    return rooms[0]


async def until(condition, *, timeout: float, what: str) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
    assert condition(), what


def longest_quiet_ms(samples: np.ndarray, *, window: int = 96, below: float = 300.0) -> float:
    """The longest run of 2 ms windows quieter than `below` (RMS), in milliseconds."""
    usable = len(samples) // window * window
    levels = np.sqrt(np.mean(samples[:usable].reshape(-1, window) ** 2, axis=1))
    longest = run = 0
    for quiet in levels < below:
        run = run + 1 if quiet else 0
        longest = max(longest, run)
    return longest * window * 1000 / 48_000


@pytest.mark.media
@pytest.mark.django_db(transaction=True)
async def test_one_voice_is_forwarded_a_second_brings_the_mix_and_its_end_brings_forwarding_back(loopback):
    # given: two unmuted speakers and a listener in a live space; the listener's RTP headers are kept
    space = await db(make_space)()
    alto, bass, fan = await db(UserFactory)(), await db(UserFactory)(), await db(UserFactory)()
    await db(seat)(space, alto, Role.SPEAKER, muted=False)
    await db(seat)(space, bass, Role.SPEAKER, muted=False)
    alto_socket, _ = await connect(space.pk, alto)
    bass_socket, _ = await connect(space.pk, bass)
    fan_socket, _ = await connect(space.pk, fan)
    alto_voice, bass_voice = Voice(440), Voice(880)
    alto_pc, answer = await join_with_track(alto_socket, alto_voice)
    assert answer["type"] == "media.answer", answer
    fan_pc, fan_heard, _ = await join_as_listener(fan_socket)
    received: list[tuple[int, int]] = []
    watch_receiver(fan_pc.getReceivers()[0], lambda packet: received.append((packet.sequence_number, packet.timestamp)))
    await wait_connected(alto_pc)
    await wait_connected(fan_pc)
    room = room_of(space.pk)
    alto_speaker = next(iter(room.speakers.values()))

    # when: alto alone plays 440 Hz
    await until(lambda: room.forwarding is alto_speaker and received, timeout=5, what="alto forwarded")
    await asyncio.sleep(0.5)
    start = time.monotonic()
    encodes = room.mixer.encodes
    alone = await fan_heard.record(1.5)

    # then: the listener hears it, forwarded: the room's encoder made nothing meanwhile
    assert room.mixer.encodes == encodes
    assert room.forwarding is alto_speaker
    assert rms(alone) > 500 and peaks(alone, count=1) == [440]

    # when: bass joins the stage playing 880 Hz
    bass_pc, _ = await join_with_track(bass_socket, bass_voice)
    await wait_connected(bass_pc)
    await until(lambda: room.forwarding is None, timeout=5, what="the room mixes")
    await asyncio.sleep(0.5)
    encodes = room.mixer.encodes
    both = await fan_heard.record(1.5)

    # then: the listener hears both, mixed
    assert room.forwarding is None and room.mixer.encodes - encodes >= 60
    assert sorted(peaks(both, count=2)) == [440, 880]

    # when: alto stops sounding (still unmuted, sending silence)
    alto_voice.frequency = 0
    bass_speaker = next(s for s in room.speakers.values() if s is not alto_speaker)
    await until(lambda: room.forwarding is bass_speaker, timeout=3, what="bass forwarded")
    await asyncio.sleep(0.3)
    encodes = room.mixer.encodes
    after = await fan_heard.record(1.5)

    # then: bass alone, forwarded again
    assert room.mixer.encodes == encodes and room.forwarding is bass_speaker
    assert rms(after) > 500 and peaks(after, count=1) == [880]

    # and: across both switches the listener's stream has no hole: every RTP packet follows the one
    # before (sequence number + 1, timestamp + 960), and the decoded audio is never quiet for over 20 ms
    assert room.switches >= 3
    steps = {((b[0] - a[0]) & 0xFFFF, (b[1] - a[1]) & 0xFFFFFFFF) for a, b in itertools.pairwise(received)}
    assert steps == {(1, FRAME_SAMPLES)}, steps
    quiet_ms = longest_quiet_ms(fan_heard.since(start))
    assert quiet_ms <= 20, quiet_ms
    print(
        f"forwarding: {room.switches} switches, {room.forwarded} packets forwarded, {len(received)} received,"
        f" longest quiet {quiet_ms:.0f} ms"
    )

    for pc in (alto_pc, bass_pc, fan_pc):
        await pc.close()
    for socket in (alto_socket, bass_socket, fan_socket):
        await socket.disconnect()
