"""One space's audio in the worker: speakers in, forwarded to each other, mixed once for listeners.

With captions on, each unmuted speaker's decoded frame also goes to the
worker's captions process (`media.captions.feed`), keyed by space and user,
stamped with the milliseconds since the space started; the tick never waits
for it.

Every 20 ms `tick` pulls at most one frame per unmuted speaker, mixes and
encodes once, serializes one RTP packet per listener shape (listeners share
one SSRC, so usually one), and sends it to every listener through its
`ListenerSink`. Speakers hear each other by forwarding: a speaker's Opus
packets go untouched to a slot on every other speaker's connection.
"""

import asyncio
import fractions
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import av
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from media.aiortc_bridge import ListenerSink, RtpShape, sender_shape, serialize
from media.mixer import FRAME_SAMPLES, SPEAKING_RMS, TIME_BASE, Mixer, SpeakerInput
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


@dataclass
class Listener:
    key: str
    pc: RTCPeerConnection
    sink: ListenerSink
    shape: RtpShape | None = None


class Room:
    def __init__(self, space_id: int, *, ssrc: int, emit: Callable[[events.Event], None]) -> None:
        self.space_id = space_id
        self.ssrc = ssrc
        self.emit = emit
        self.speakers: dict[str, Speaker] = {}
        self.listeners: dict[str, Listener] = {}
        self.mixer = Mixer()
        self.sequence_number = 0
        self.timestamp = 0
        self.ticks = 0
        self.late_ticks = 0
        self.task: asyncio.Task | None = None
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

    def remove(self, key: str) -> RTCPeerConnection | None:
        peer = self.speakers.pop(key, None) or self.listeners.pop(key, None)
        if isinstance(peer, Speaker):
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
        for other in self.speakers.values():
            if other is speaker:
                continue
            for slot, uid in other.slot_of.items():
                if uid == speaker.user_id:
                    other.slots[slot].put(packet.payload)
        speaker.input.push(packet.sequence_number, packet.payload)

    # The clock

    def start(self) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

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
                    # gets their time as silence, so its timeline stays the wall clock's.
                    if self.recorder is not None:
                        self.recorder.gap(round(-delay / TICK_S))
                    next_at = loop.time()
                delay = 0
            await asyncio.sleep(delay)

    def tick(self) -> None:
        self.ticks += 1
        now = time.monotonic()
        frames = []
        captions = self.captions if self.captions_on else None
        for speaker in self.speakers.values():
            samples = None if speaker.muted else speaker.input.pull()
            if samples is not None:
                frames.append(samples)
                if captions is not None:
                    ms = int((time.time() - self.started_epoch) * 1000)
                    captions.audio(self.caption_key(speaker.user_id), ms, samples)
            self._update_speaking(speaker, samples is not None and speaker.input.level >= SPEAKING_RMS, now)
        if not self.listeners and self.recorder is None:
            return
        for payload in self.mixer.encode(self.mixer.mix(frames)):
            if self.recorder is not None:
                self.recorder.write(payload)
            self._fan_out(payload)

    def _fan_out(self, payload: bytes) -> None:
        self.sequence_number = (self.sequence_number + 1) & 0xFFFF
        self.timestamp = (self.timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        encoded: dict[tuple, bytes] = {}
        for listener in self.listeners.values():
            if listener.shape is None:
                if not listener.sink.ready():
                    continue
                listener.shape = sender_shape(listener.sink.transceiver)
            key = listener.shape.key()
            data = encoded.get(key)
            if data is None:
                data = encoded[key] = serialize(
                    listener.shape, payload=payload, sequence_number=self.sequence_number, timestamp=self.timestamp
                )
            listener.sink.send(data)

    # Speaking indicators

    def _update_speaking(self, speaker: Speaker, loud: bool, now: float) -> None:
        if loud:
            speaker.last_loud = now
        speaking = loud or (speaker.speaking and now - speaker.last_loud < SPEAKING_HANG_S)
        if speaking != speaker.speaking and now - speaker.last_event >= SPEAKING_EVENT_GAP_S:
            speaker.speaking = speaking
            speaker.last_event = now
            self._speaking_event(speaker, speaking)

    def _speaking_event(self, speaker: Speaker, speaking: bool) -> None:
        self.emit(events.speaking(self.space_id, speaker.user_id, speaker.username, speaking))

    # Recording

    def record(self, recorder: Recorder) -> None:
        """Write the mix's packets to `recorder` from the next tick on (the encoder's own OpusHead heads it)."""
        self.recorder = recorder

    def stop_recording(self) -> Recorder | None:
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.close()
        return recorder

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        peers = [*self.speakers.values(), *self.listeners.values()]
        self.speakers.clear()
        self.listeners.clear()
        await asyncio.gather(*(peer.pc.close() for peer in peers), return_exceptions=True)


__all__ = ["TIME_BASE", "ForwardTrack", "Listener", "Room", "Speaker"]
