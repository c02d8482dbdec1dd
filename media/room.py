"""One space's audio in the worker: speakers in, forwarded to each other, mixed once for listeners.

With captions on, each unmuted speaker's decoded frame also goes to the
worker's captions process (`media.captions.feed`), keyed by space and user,
stamped with the milliseconds since the space started; the tick never waits
for it.

Every 20 ms `tick` pulls at most one frame per unmuted speaker (speaking
indicators, captions), and then either mixes and encodes once, or leaves the
listeners to forwarding. Speakers hear each other by forwarding: a speaker's
Opus packets go untouched to a slot on every other speaker's connection.

Listeners get one stream on the room's SSRC, from one of two sources:

- **The mix**, when several voices sound (or none): the frames of the tick
  summed and encoded once, one packet per tick.
- **Forwarding**, when exactly one unmuted speaker is sounding (or only one is
  unmuted at all): that speaker's Opus packets as they arrive, no wait for
  the tick and no encode, their sequence numbers and timestamps moved by an
  offset fixed at the switch, so a loss upstream stays a gap the listener's
  decoder can conceal and a reordered packet keeps its place.

Switches happen at a tick and keep the listeners' stream continuous: the first
forwarded packet follows the last mixed one (frames that arrived but were not
yet mixed are forwarded at once), and the first mixed packet follows the last
forwarded one, leaving out frames that already went out by forwarding. Every
packet bound for listeners goes through `_to_listeners`, which also feeds the
relays to edge workers (the cascade); an edge room (`edge=True`) has no
speakers and no clock: it sends what its origin relays (`relayed`).

Listeners cost the worker per packet, so the fan-out is kept lean: the
connected listeners are grouped by the shape of their packets once, when one
connects or goes (`_build_fanout`), and each group sends a packet with one
tight loop (`media.aiortc_bridge.SrtpFanout`). RTCP to listeners is the
room's too: one timer sends each listener a sender report about once a
second, a tenth of them every 100 ms, instead of a task per listener.
"""

import asyncio
import fractions
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import av
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from media.aiortc_bridge import ListenerSink, RtpShape, sender_shape, serialize
from media.mixer import FRAME_SAMPLES, SAMPLE_RATE, SPEAKING_RMS, TIME_BASE, Mixer, SpeakerInput
from media.recording.recorder import Recorder
from rooms import events

log = logging.getLogger(__name__)

TICK_S = 0.020
# A clock this late catches up by ticking at once; later than this, it skips the missed ticks.
CATCH_UP_S = 0.2
# Speaking indicators: at most one event per speaker per this many seconds.
SPEAKING_EVENT_GAP_S = 0.2
# Speaking stops being shown after this long under the threshold.
SPEAKING_HANG_S = 0.4
# A forwarded speaker with no frame for this many ticks has stalled: the room mixes (silence) again,
# so listeners and a recording keep a packet every 20 ms.
STALL_TICKS = 5
# Sender reports: each listener gets one every REPORT_S, sent to 1/REPORT_PARTS of them at a time.
REPORT_S = 1.0
REPORT_PARTS = 10
# While some listeners are still connecting, the fan-out is built again every this many packets.
RECHECK_PACKETS = 10
# Seconds from the NTP epoch (1900) to the Unix one.
NTP_UNIX_OFFSET = 2_208_988_800
# A forwarded packet this far behind the newest one is dropped, not sent late.
REORDER_WINDOW = 50
# A forwarded speaker's sequence number this far from the last one is a new stream, not a loss.
RESTART_SEQ_GAP = 1000
# RTP timestamps kept per speaker, by sequence number: enough for the frames waiting at a switch.
STAMPS_KEPT = 64
# A recording fills a forwarded stream's lost packets with silence, up to this many at once.
MAX_GAP_FILL = 250

RelaySend = Callable[[bytes, int, int], None]


def _seq_after(a: int, b: int) -> bool:
    """Is RTP sequence number `a` after `b`, allowing for wrap-around?"""
    return 0 < ((a - b) & 0xFFFF) < 0x8000


def _seq_delta(a: int, b: int) -> int:
    """`a - b` for RTP sequence numbers, in -32768 … 32767."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


class ForwardTrack(MediaStreamTrack):
    """A slot on a speaker's connection that carries another speaker's Opus packets, not re-encoded."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=10)
        self.pts = 0

    def put(self, payload: bytes) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # the speaker's connection is behind: drop the oldest
        self.queue.put_nowait(payload)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        payload = await self.queue.get()
        packet = av.Packet(payload)
        packet.pts = self.pts
        packet.time_base = fractions.Fraction(1, 48_000)
        self.pts += FRAME_SAMPLES
        return packet


@dataclass
class Speaker:
    user_id: int
    username: str
    pc: RTCPeerConnection
    slots: list[ForwardTrack]
    muted: bool = True
    name: str = ""
    input: SpeakerInput = field(default_factory=SpeakerInput)
    # which other speaker (user id) each slot carries
    slot_of: dict[int, int] = field(default_factory=dict)
    speaking: bool = False
    last_loud: float = 0.0
    last_event: float = 0.0
    # Level above SPEAKING_RMS now or within the hang: what decides between forwarding and the mix
    # (`speaking` is the same, held back by SPEAKING_EVENT_GAP_S for the indicator's sake).
    sounding: bool = False
    # Ticks in a row whose pull gave no frame (a new speaker counts as stalled until its first).
    idle_ticks: int = STALL_TICKS
    # The newest sequence numbers this speaker sent that the mix pulled and that went out by forwarding.
    last_pulled: int | None = None
    last_forwarded: int | None = None
    # RTP timestamps of the latest packets, by sequence number (the input keeps payloads only).
    stamps: dict[int, int] = field(default_factory=dict)
    # Whether the last two packets in a row were 20 ms apart: only then is this speaker forwarded (the
    # mix and a recording count 20 ms a packet; `minptime=10` lets a browser send 10 ms packets).
    twenty_ms: bool = False


class Fanout(Protocol):
    """Listeners of one packet shape, sent to together (`ListenerSink.group`: `SrtpFanout`)."""

    def send(self, data: bytes) -> int: ...

    def send_reports(self, part: int, parts: int, *, ntp: int, rtp_timestamp: int, counts: tuple[int, int]) -> None: ...


@dataclass
class Listener:
    key: str
    pc: RTCPeerConnection
    sink: ListenerSink
    shape: RtpShape | None = None


class Room:
    def __init__(self, space_id: int, *, ssrc: int, emit: Callable[[events.Event], None], edge: bool = False) -> None:
        self.space_id = space_id
        self.ssrc = ssrc
        self.emit = emit
        # An edge room only passes on what its origin relays: no speakers, no clock, no encoder at work.
        self.edge = edge
        # Other workers' copies of this room (the cascade): each gets every packet the listeners get.
        self.relays: dict[str, RelaySend] = {}
        self.speakers: dict[str, Speaker] = {}
        self.listeners: dict[str, Listener] = {}
        self.mixer = Mixer()
        # The listeners' stream: the newest packet sent, by the mix or by forwarding.
        self.sequence_number = 0
        self.timestamp = 0
        self.ticks = 0
        self.late_ticks = 0
        # What went out to listeners (packets and bytes, over every listener), and what speakers who
        # left had lost on the way in: the worker's metrics (`media.metrics`).
        self.packets_out = 0
        self.bytes_out = 0
        self.lost_by_gone_speakers = 0
        # The listeners' stream itself: packets and payload octets, and its newest timestamp with the
        # wall-clock time it went out (sender reports are made of these).
        self.stream_packets = 0
        self.stream_octets = 0
        self._stream_ts = 0
        self._stream_wall: float | None = None
        # The connected listeners grouped by packet shape (None: build again before the next packet).
        self._fanout: list[tuple[RtpShape, Fanout]] | None = None
        self._rebuild_in = 0
        # Forwarding: whose packets go to listeners as they come, and how they are renumbered.
        self.forwarding: Speaker | None = None
        self.forwarded = 0  # packets sent to listeners by forwarding
        self.switches = 0  # mix -> forwarding and back, each counted
        self._seq_offset: int | None = None  # fixed by the first packet forwarded after a switch
        self._ts_offset = 0
        self._forward_floor: int | None = None  # the speaker's sequence numbers up to this are not forwarded
        self.task: asyncio.Task | None = None
        self.reports: asyncio.Task | None = None
        # Live captions: the worker's feed, whether the space wants them, and its start (epoch seconds).
        self.captions = None
        self.captions_on = False
        self.started_epoch = time.time()
        # Recording: the mix's packets go to this as the one encoder makes them (`media.recording`).
        self.recorder: Recorder | None = None
        self.recording_wanted = False  # what the space last said; the recorder follows it

    # Membership

    def add_speaker(self, key: str, speaker: Speaker) -> None:
        self.speakers[key] = speaker
        self._assign_slots()

    def add_listener(self, key: str, listener: Listener) -> None:
        self.listeners[key] = listener
        listener.sink.on_change = self._refan
        self._refan()

    def _refan(self) -> None:
        """A listener came, went, connected or lost its connection: group them again before the next packet."""
        self._fanout = None

    def add_relay(self, key: str, send: RelaySend) -> None:
        """Send every listener packet to `send(payload, sequence_number, timestamp)` too (an edge worker).

        `send` runs inside the packet path: it must not block or raise.
        """
        self.relays[key] = send

    def remove_relay(self, key: str) -> None:
        self.relays.pop(key, None)

    def remove(self, key: str) -> RTCPeerConnection | None:
        peer = self.speakers.pop(key, None) or self.listeners.pop(key, None)
        if isinstance(peer, Listener):
            peer.sink.on_change = None
            self._refan()
        if isinstance(peer, Speaker):
            self.lost_by_gone_speakers += peer.input.lost
            if peer is self.forwarding:
                self._stop_forwarding()
            self._end_captions(peer)
            self._assign_slots()
            if peer.speaking:
                self._speaking_event(peer, False)
        return peer.pc if peer else None

    def peers_of(self, user_id: int) -> list[str]:
        return [key for key, s in self.speakers.items() if s.user_id == user_id]

    def set_muted(self, user_id: int, muted: bool) -> None:
        for speaker in self.speakers.values():
            if speaker.user_id == user_id:
                if speaker.muted != muted:
                    # Packets sent while muted never reach the room: what it remembers of this speaker's
                    # sequence numbers would be stale.
                    speaker.last_pulled = speaker.last_forwarded = None
                speaker.muted = muted
                if muted:
                    speaker.input.pending.clear()
                    self._end_captions(speaker)

    def caption_key(self, user_id: int) -> str:
        return f"{self.space_id}:{user_id}"

    def set_captions(self, on: bool) -> None:
        if self.captions_on and not on:
            for speaker in self.speakers.values():
                self._end_captions(speaker)
        self.captions_on = on

    def _end_captions(self, speaker: Speaker) -> None:
        if self.captions is not None:
            self.captions.end(self.caption_key(speaker.user_id))

    def _assign_slots(self) -> None:
        """Give every speaker one slot per other speaker; a slot keeps its speaker while both stay."""
        speakers = list(self.speakers.values())
        for speaker in speakers:
            others = [o.user_id for o in speakers if o.user_id != speaker.user_id]
            speaker.slot_of = {slot: uid for slot, uid in speaker.slot_of.items() if uid in others}
            free = [n for n in range(len(speaker.slots)) if n not in speaker.slot_of]
            for uid in others:
                if uid not in speaker.slot_of.values() and free:
                    speaker.slot_of[free.pop(0)] = uid

    # Packets in

    def on_speaker_packet(self, key: str, packet: RtpPacket) -> None:
        speaker = self.speakers.get(key)
        if speaker is None or speaker.muted:
            return  # a muted speaker's audio stops here, whatever their browser sends
        seq, payload = packet.sequence_number, packet.payload
        if speaker is self.forwarding:
            self._forward(speaker, seq, packet.timestamp, payload)
        for other in self.speakers.values():
            if other is speaker:
                continue
            for slot, uid in other.slot_of.items():
                if uid == speaker.user_id:
                    other.slots[slot].put(payload)
        stamps = speaker.stamps
        previous = stamps.get((seq - 1) & 0xFFFF)
        if previous is not None:
            speaker.twenty_ms = (packet.timestamp - previous) & 0xFFFFFFFF == FRAME_SAMPLES
        stamps[seq] = packet.timestamp
        if len(stamps) > STAMPS_KEPT:
            del stamps[next(iter(stamps))]
        speaker.input.push(seq, payload)

    # The clock

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.reports is None or self.reports.done():
            self.reports = loop.create_task(self._report())
        if self.edge:
            return  # nothing to mix: the origin's packets come through `relayed`
        if self.task is None or self.task.done():
            self.task = loop.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += TICK_S
            try:
                self.tick()
            except Exception:
                log.exception("room %s: tick failed", self.space_id)
            delay = next_at - loop.time()
            if delay < 0:
                self.late_ticks += 1
                if delay < -CATCH_UP_S:
                    # Far behind: skip the ticks missed rather than burst through them; a recording
                    # gets their time as silence, so its timeline stays the wall clock's (while
                    # forwarding, the speaker's packets keep that timeline themselves).
                    if self.recorder is not None and self.forwarding is None:
                        self.recorder.gap(round(-delay / TICK_S))
                    next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)

    def tick(self) -> None:
        if self.edge:
            return
        self.ticks += 1
        now = time.monotonic()
        frames = []
        captions = self.captions if self.captions_on else None
        for speaker in self.speakers.values():
            samples = pulled = None
            if not speaker.muted:
                samples = speaker.input.pull()
                pulled = speaker.input.pulled_seq
            if pulled is None:
                speaker.idle_ticks += 1
            else:
                speaker.idle_ticks = 0
                speaker.last_pulled = pulled
            if samples is not None:
                if not self._forwarded_already(speaker, pulled):
                    frames.append(samples)
                if captions is not None:
                    ms = int((time.time() - self.started_epoch) * 1000)
                    captions.audio(self.caption_key(speaker.user_id), ms, samples)
            self._update_speaking(speaker, samples is not None and speaker.input.level >= SPEAKING_RMS, now)
        target = self._forward_target()
        skipped = 0
        if self.forwarding is not None and target is not self.forwarding:
            # A stalled speaker's silence took time: the mix goes on where the stream would be by now.
            skipped = max(0, self.forwarding.idle_ticks - 1)
            self._stop_forwarding()
        if self.forwarding is None:
            if self.listeners or self.relays or self.recorder is not None:
                self._send_mix(frames, skipped)
            if target is not None:
                self._start_forwarding(target)

    def _send_mix(self, frames: list, skipped: int) -> None:
        for payload in self.mixer.encode(self.mixer.mix(frames)):
            step = 1 + skipped
            skipped = 0
            self._publish(
                payload,
                (self.sequence_number + step) & 0xFFFF,
                (self.timestamp + step * FRAME_SAMPLES) & 0xFFFFFFFF,
            )

    # Forwarding

    def _forward_target(self) -> Speaker | None:
        """The one voice to forward: the only unmuted speaker sounding, or the only unmuted speaker; else mix."""
        unmuted = [speaker for speaker in self.speakers.values() if not speaker.muted]
        sounding = [speaker for speaker in unmuted if speaker.sounding]
        if len(sounding) == 1:
            chosen = sounding[0]
        elif len(unmuted) == 1:
            chosen = unmuted[0]
        else:
            return None
        return chosen if chosen.idle_ticks < STALL_TICKS and chosen.twenty_ms else None

    def _start_forwarding(self, speaker: Speaker) -> None:
        """From now on `speaker`'s packets go to listeners as they come, the ones not yet mixed at once."""
        self.forwarding = speaker
        self.switches += 1
        self._seq_offset = None
        # Frames up to the newest one mixed, or already forwarded, have been heard.
        floor = speaker.last_pulled
        if speaker.last_forwarded is not None and (floor is None or _seq_after(speaker.last_forwarded, floor)):
            floor = speaker.last_forwarded
        self._forward_floor = floor
        for seq, payload in speaker.input.waiting():
            ts = speaker.stamps.get(seq)
            if ts is not None:
                self._forward(speaker, seq, ts, payload)

    def _stop_forwarding(self) -> None:
        """Back to the mix: its next packet follows the last one forwarded."""
        self.forwarding = None
        self.switches += 1
        self._seq_offset = None
        self._forward_floor = None

    def _forward(self, speaker: Speaker, seq: int, ts: int, payload: bytes) -> None:
        """One packet of the forwarded speaker to the listeners, renumbered onto their stream."""
        newest = speaker.last_forwarded if self._seq_offset is not None else self._forward_floor
        if newest is not None and abs(_seq_delta(seq, newest)) > RESTART_SEQ_GAP:
            # No packet is this late or this early: the speaker's stream started afresh. Go on from it.
            self._seq_offset = self._forward_floor = None
        floor = self._forward_floor
        if floor is not None and not _seq_after(seq, floor):
            return  # heard already (mixed or forwarded), or too late to be of use
        if self._seq_offset is None:
            # The first packet after the switch follows the listeners' last one; anything older
            # would land on a number the listeners already had.
            self._seq_offset = (self.sequence_number + 1 - seq) & 0xFFFF
            self._ts_offset = (self.timestamp + FRAME_SAMPLES - ts) & 0xFFFFFFFF
            floor = self._forward_floor = (seq - 1) & 0xFFFF
            speaker.last_forwarded = None
        newest = speaker.last_forwarded
        if newest is None or _seq_after(seq, newest):
            speaker.last_forwarded = seq
            trail = (seq - REORDER_WINDOW) & 0xFFFF
            if _seq_after(trail, floor):
                self._forward_floor = trail
        self.forwarded += 1
        self._publish(payload, (seq + self._seq_offset) & 0xFFFF, (ts + self._ts_offset) & 0xFFFFFFFF)

    def _forwarded_already(self, speaker: Speaker, pulled: int | None) -> bool:
        """Did this pulled frame reach the listeners by forwarding? Then the mix leaves it out."""
        last = speaker.last_forwarded
        if pulled is None or last is None:
            return False
        if _seq_after(pulled, last):
            if speaker is not self.forwarding:
                speaker.last_forwarded = None  # the mix is past what was forwarded
            return False
        return True

    # Packets out

    def _publish(self, payload: bytes, sequence_number: int, timestamp: int) -> None:
        """One packet of this room's own listener stream (mixed or forwarded): recorded, then sent."""
        ahead = (sequence_number - self.sequence_number) & 0xFFFF
        if 0 < ahead < 0x8000:
            if self.recorder is not None:
                if 1 < ahead <= MAX_GAP_FILL:
                    self.recorder.gap(ahead - 1)  # lost upstream: the recording keeps its time
                self.recorder.write(payload)
            self.sequence_number = sequence_number
            self.timestamp = timestamp
        # else a reordered packet: listeners' decoders put it in its place; the recording has moved on
        self._to_listeners(payload, sequence_number, timestamp)

    def relayed(self, payload: bytes, sequence_number: int, timestamp: int) -> None:
        """An edge room: a packet of the origin's listener stream, sent to this worker's listeners as is."""
        self._to_listeners(payload, sequence_number, timestamp)

    def _to_listeners(self, payload: bytes, sequence_number: int, timestamp: int) -> None:
        """Every packet bound for listeners: serialized once per listener shape, sent to each; and relayed."""
        self._rebuild_in -= 1
        if self._fanout is None or self._rebuild_in <= 0:
            self._build_fanout()
        for shape, group in self._fanout:
            data = serialize(shape, payload=payload, sequence_number=sequence_number, timestamp=timestamp)
            sent = group.send(data)
            self.packets_out += sent
            self.bytes_out += sent * len(data)
        self.stream_packets += 1
        self.stream_octets += len(payload)
        if (timestamp - self._stream_ts) & 0xFFFFFFFF < 0x80000000 or self._stream_wall is None:
            self._stream_ts = timestamp
            self._stream_wall = time.time()
        for send in self.relays.values():
            send(payload, sequence_number, timestamp)

    def _build_fanout(self) -> list[tuple[RtpShape, Fanout]]:
        """Group the connected listeners by the shape of their packets (in practice: one group)."""
        groups: dict[tuple, tuple[RtpShape, list]] = {}
        waiting = False
        for listener in self.listeners.values():
            sink = listener.sink
            if not sink.ready():
                waiting = True
                continue
            if listener.shape is None:
                listener.shape = sender_shape(sink.transceiver)
            if sink.counted_from is None:
                sink.counted_from = (self.stream_packets, self.stream_octets)
            groups.setdefault((type(sink), listener.shape.key()), (listener.shape, []))[1].append(sink)
        self._fanout = [(shape, type(sinks[0]).group(sinks)) for shape, sinks in groups.values()]
        # A listener still connecting says nothing when it is through: look again shortly.
        self._rebuild_in = RECHECK_PACKETS if waiting else 1 << 62
        return self._fanout

    # RTCP to listeners

    async def _report(self) -> None:
        part = 0
        while True:
            await asyncio.sleep(REPORT_S / REPORT_PARTS)
            try:
                self.send_reports(part, REPORT_PARTS)
            except Exception:
                log.exception("room %s: sender reports failed", self.space_id)
            part = (part + 1) % REPORT_PARTS

    def send_reports(self, part: int, parts: int) -> None:
        """Sender reports to every `parts`-th connected listener from `part`: the stream's clock and
        what that listener was sent. Nothing before the stream's first packet."""
        if self._stream_wall is None:
            return
        if self._fanout is None:
            self._build_fanout()
        now = time.time()
        rtp_timestamp = (self._stream_ts + round((now - self._stream_wall) * SAMPLE_RATE)) & 0xFFFFFFFF
        ntp = int((now + NTP_UNIX_OFFSET) * (1 << 32))
        counts = (self.stream_packets, self.stream_octets)
        for _, group in self._fanout:
            group.send_reports(part, parts, ntp=ntp, rtp_timestamp=rtp_timestamp, counts=counts)

    # Speaking indicators

    def _update_speaking(self, speaker: Speaker, loud: bool, now: float) -> None:
        if loud:
            speaker.last_loud = now
        speaker.sounding = loud or now - speaker.last_loud < SPEAKING_HANG_S
        speaking = loud or (speaker.speaking and now - speaker.last_loud < SPEAKING_HANG_S)
        if speaking != speaker.speaking and now - speaker.last_event >= SPEAKING_EVENT_GAP_S:
            speaker.speaking = speaking
            speaker.last_event = now
            self._speaking_event(speaker, speaking)

    def _speaking_event(self, speaker: Speaker, speaking: bool) -> None:
        self.emit(events.speaking(self.space_id, speaker.user_id, speaker.username, speaking))

    # Recording

    def record(self, recorder: Recorder) -> None:
        """Write the listeners' stream to `recorder` from now on: the mix's packets, or the forwarded ones.

        The mixer's OpusHead heads the file; forwarded packets are Opus of the same 48 kHz timeline.
        """
        self.recorder = recorder

    def stop_recording(self) -> Recorder | None:
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.close()
        return recorder

    def totals(self) -> dict[str, int]:
        """The room's running counts, for the worker's metrics."""
        return {
            "packets_out": self.packets_out,
            "bytes_out": self.bytes_out,
            "late_ticks": self.late_ticks,
            "packets_lost_in": self.lost_by_gone_speakers + sum(s.input.lost for s in self.speakers.values()),
            "encodes": self.mixer.encodes,
            "forwarded": self.forwarded,
        }

    async def close(self) -> None:
        for task in (self.task, self.reports):
            if task is not None:
                task.cancel()
        peers = [*self.speakers.values(), *self.listeners.values()]
        self.speakers.clear()
        self.listeners.clear()
        await asyncio.gather(*(peer.pc.close() for peer in peers), return_exceptions=True)


__all__ = ["TIME_BASE", "ForwardTrack", "Listener", "Room", "Speaker"]
