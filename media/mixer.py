"""Decode each speaker once, sum the stage on a 20 ms clock, encode once per room.

`SpeakerInput` takes a speaker's Opus packets as they arrive and gives the
mixer one decoded frame per tick. Its `media.jitter.JitterBuffer` waits for a
late or reordered frame only as long as the measured jitter needs (on a clean
network a frame is played at the first tick after it arrives); a frame that
doesn't come in time is rebuilt from the FEC copy in the next packet, or
concealed by libopus (`media.opus`: PyAV's decoder can do neither), so a lost
packet costs a little quality, never 20 ms of silence.
`Mixer` adds the decoded frames (48 kHz stereo s16) with numpy, clips, and
encodes the sum with one Opus encoder for every listener of the room.
"""

import fractions
import time

import av
import numpy as np

from media.jitter import JitterBuffer
from media.opus import OpusDecoder, OpusError

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
CHANNELS = 2
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
# Speaking when the frame's RMS is above this (about -40 dBFS).
SPEAKING_RMS = 330.0


class SpeakerInput:
    """One speaker's incoming Opus frames, decoded one tick at a time.

    `push` as packets arrive, `pull` once per tick: 48 kHz stereo int16,
    interleaved (FRAME_SAMPLES x CHANNELS), or None when the speaker sends
    nothing. `pulled_seq` is the RTP sequence number of the frame the last
    `pull` decoded (None when it was concealed or rebuilt, or nothing);
    `waiting()` lists the frames pushed and not yet pulled, oldest first.
    """

    def __init__(self) -> None:
        self.buffer = JitterBuffer()
        self.decoder = OpusDecoder(CHANNELS)
        self.level = 0.0
        self.pulled_seq: int | None = None
        self.concealed = 0  # ticks played from PLC or FEC

    @property
    def pending(self) -> dict[int, bytes]:
        """The frames waiting, by sequence number (the room clears it on a mute)."""
        return self.buffer.pending

    @property
    def received(self) -> int:
        return self.buffer.received

    @property
    def lost(self) -> int:
        return self.buffer.lost

    def push(self, sequence_number: int, payload: bytes, arrival: float | None = None) -> None:
        """One packet, as it arrives; `arrival` on `time.monotonic`'s clock (now, if not given)."""
        if payload:
            self.buffer.push(sequence_number, payload, time.monotonic() if arrival is None else arrival)

    def waiting(self) -> list[tuple[int, bytes]]:
        return self.buffer.waiting()

    def pull(self, now: float | None = None) -> np.ndarray | None:
        """The next frame as int16 samples (interleaved stereo), or None if the speaker sends nothing."""
        step = self.buffer.next(time.monotonic() if now is None else now, quiet=self.level < SPEAKING_RMS)
        self.pulled_seq = None
        if step.kind == "none":
            return None
        if step.discard is not None:
            self._decode(step.discard)
        samples = None
        if step.kind == "play":
            samples = self._decode(step.payload)
            if samples is not None:
                self.pulled_seq = step.sequence_number
        elif step.kind == "recover":
            samples = self.decoder.recover(step.payload)
        if samples is None:
            samples = self.decoder.conceal()
        if self.pulled_seq is None:
            self.concealed += 1
        self.level = float(np.sqrt(np.mean(samples.astype(np.float32) ** 2))) if len(samples) else 0.0
        return samples

    def _decode(self, payload: bytes) -> np.ndarray | None:
        try:
            return self.decoder.decode(payload)
        except OpusError:
            return None  # a corrupt packet: concealed like a lost one


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
