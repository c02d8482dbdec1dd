"""Decode each speaker once, sum the stage on a 20 ms clock, encode once per room.

`SpeakerInput` keeps a speaker's Opus frames ordered by sequence number and
gives the mixer at most one per tick: it holds one frame, never four, and
after a loss it moves on at the next tick instead of waiting for the gap.
`Mixer` adds the decoded frames (48 kHz stereo s16) with numpy, clips, and
encodes the sum with one Opus encoder for every listener of the room.
"""

import fractions

import av
import numpy as np

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
CHANNELS = 2
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
# A frame this many ticks older than the newest is a loss; skip to newer ones.
MAX_BACKLOG = 3
# If at least two frames waited at every tick of this many ticks (0.5 s), the
# queue has settled one frame too deep (a hiccup's leftover): drop one.
RESYNC_TICKS = 25
# Speaking when the frame's RMS is above this (about -40 dBFS).
SPEAKING_RMS = 330.0


def _seq_newer(a: int, b: int) -> bool:
    """Is RTP sequence number `a` after `b`, allowing for wrap-around?"""
    return 0 < ((a - b) & 0xFFFF) < 0x8000


class SpeakerInput:
    """One speaker's incoming Opus frames, decoded one tick at a time."""

    def __init__(self) -> None:
        self.decoder = av.CodecContext.create("libopus", "r")
        self.decoder.format = "s16"
        self.decoder.layout = "stereo"
        self.decoder.sample_rate = SAMPLE_RATE
        self.pending: dict[int, bytes] = {}
        self.next_seq: int | None = None
        self.received = 0
        self.lost = 0
        self.level = 0.0
        self.resyncs = 0
        self._window_ticks = 0
        self._window_fewest = 0

    def push(self, sequence_number: int, payload: bytes) -> None:
        if self.next_seq is not None and not _seq_newer(sequence_number, (self.next_seq - 1) & 0xFFFF):
            return  # late: its tick has passed
        self.pending[sequence_number] = payload
        self.received += 1
        if len(self.pending) > MAX_BACKLOG:
            # The clock fell behind this speaker (or they sent a burst): drop the oldest.
            oldest = min(self.pending, key=lambda s: (s - (self.next_seq or s)) & 0xFFFF)
            del self.pending[oldest]

    def pull(self) -> np.ndarray | None:
        """The next frame as int16 samples (interleaved stereo), or None if nothing is due.

        Holds one frame: when two or more have waited at every tick for
        RESYNC_TICKS ticks, the oldest is decoded (keeping the decoder's state
        continuous) and dropped, so a passing hiccup doesn't add 20 ms for good.
        """
        waiting = len(self.pending)
        self._window_fewest = waiting if self._window_ticks == 0 else min(self._window_fewest, waiting)
        self._window_ticks += 1
        if self._window_ticks >= RESYNC_TICKS:
            self._window_ticks = 0
            if self._window_fewest >= 2:
                self._take()
                self.resyncs += 1
        return self._take()

    def _take(self) -> np.ndarray | None:
        if not self.pending:
            return None
        if self.next_seq is None or self.next_seq not in self.pending:
            # Start, or a loss: take the oldest frame we have.
            nearest = min(self.pending, key=lambda s: (s - (self.next_seq or s)) & 0xFFFF)
            if self.next_seq is not None:
                self.lost += (nearest - self.next_seq) & 0xFFFF
            self.next_seq = nearest
        payload = self.pending.pop(self.next_seq)
        self.next_seq = (self.next_seq + 1) & 0xFFFF
        samples = None
        for frame in self.decoder.decode(av.Packet(payload)):
            array = frame.to_ndarray().reshape(-1)
            samples = array if samples is None else np.concatenate([samples, array])
        if samples is not None:
            self.level = float(np.sqrt(np.mean(samples.astype(np.float32) ** 2)))
        return samples


class Mixer:
    """Sums the stage and encodes it once; `tick()` returns the room's next Opus payload."""

    def __init__(self, bitrate: int = 32_000) -> None:
        self.encoder = av.CodecContext.create("libopus", "w")
        self.encoder.bit_rate = bitrate
        self.encoder.format = "s16"
        self.encoder.layout = "stereo"
        self.encoder.sample_rate = SAMPLE_RATE
        self.encoder.time_base = TIME_BASE
        self.encoder.options = {"application": "voip", "frame_duration": "20"}
        self.pts = 0
        self.encodes = 0
        self.silence = np.zeros(FRAME_SAMPLES * CHANNELS, dtype=np.int16)

    def opus_head(self) -> bytes:
        """The encoder's OpusHead (its pre-skip): what heads an Ogg Opus file of its packets."""
        if not self.encoder.is_open:
            self.encoder.open()
        return bytes(self.encoder.extradata)

    def mix(self, frames: list[np.ndarray]) -> np.ndarray:
        if not frames:
            return self.silence
        if len(frames) == 1:
            return frames[0]
        total = np.zeros(FRAME_SAMPLES * CHANNELS, dtype=np.int32)
        for samples in frames:
            total[: len(samples)] += samples[: len(total)]
        return np.clip(total, -32768, 32767).astype(np.int16)

    def encode(self, samples: np.ndarray) -> list[bytes]:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self.pts
        frame.time_base = TIME_BASE
        self.pts += FRAME_SAMPLES
        self.encodes += 1
        return [bytes(packet) for packet in self.encoder.encode(frame)]
