"""Helpers for the recording tests: a speaker that follows a timed script, decoding a recording, polling."""

import asyncio
import fractions
import time
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from media.aiortc_bridge import allow_loopback_candidates
from media.mixer import Mixer
from media.recording import ogg
from tests.media.clients import SLOTS, negotiate

RATE = 48_000
FRAME = 960  # 20 ms
AMPLITUDE = 12_000


def tone(frequency: float, start: int, count: int = FRAME) -> np.ndarray:
    """`count` int16 samples of a sine, from sample `start` of a continuous tone (0 Hz: silence)."""
    if not frequency:
        return np.zeros(count, dtype=np.int16)
    n = np.arange(start, start + count)
    return (np.sin(2 * np.pi * frequency * n / RATE) * AMPLITUDE).astype(np.int16)


class ScriptedTrack(MediaStreamTrack):
    """A microphone that plays a script of (seconds, frequency) parts, frequency 0 being zero samples.

    The script runs on the clock of `origin` (a `time.monotonic()` moment, set
    by the test once it knows it): the frame sent at `origin + t` carries the
    script's moment `t`. Before `origin` is known it sends zero samples; after
    the script, zero samples too. Frames are paced in real time, 20 ms each.
    """

    kind = "audio"

    def __init__(self, script: list[tuple[float, float]]) -> None:
        super().__init__()
        self.script = script
        self.origin: float | None = None
        self._start: float | None = None
        self._pts = 0

    def frequency_at(self, t: float) -> float:
        at = 0.0
        for seconds, frequency in self.script:
            if at <= t < at + seconds:
                return frequency
            at += seconds
        return 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += FRAME
            await asyncio.sleep(max(0.0, self._start + self._pts / RATE - time.monotonic()))
        sent_at = self._start + self._pts / RATE
        frequency = 0 if self.origin is None else self.frequency_at(sent_at - self.origin)
        samples = tone(frequency, self._pts)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


async def join_with_track(socket, track: MediaStreamTrack) -> tuple[RTCPeerConnection, dict]:
    """A speaker whose microphone is `track` (the rest as `clients.join_as_speaker`)."""
    allow_loopback_candidates()
    pc = RTCPeerConnection()
    pc.addTransceiver(track, direction="sendonly")
    for _ in range(SLOTS):
        pc.addTransceiver("audio", direction="recvonly")
    pc.on("track", lambda received: asyncio.get_running_loop().create_task(_drain(received)))
    return pc, await negotiate(socket, pc, publish=True)


async def _drain(track: MediaStreamTrack) -> None:
    try:
        while True:
            await track.recv()
    except MediaStreamError:
        return


def decode(source: Path | str | BinaryIO) -> np.ndarray:
    """An Ogg Opus file (a path or an open file) decoded with PyAV: its first channel at 48 kHz, int16 scale."""
    chunks = []
    with av.open(source if hasattr(source, "read") else str(source)) as container:
        for frame in container.decode(audio=0):
            samples = frame.to_ndarray()
            channel = samples[0] if frame.format.is_planar else samples.reshape(-1)[:: len(frame.layout.channels)]
            if frame.format.name.startswith(("flt", "dbl")):
                channel = channel * 32768
            chunks.append(channel.astype(np.float32))
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def seconds(samples: np.ndarray, start: float, end: float) -> np.ndarray:
    return samples[int(start * RATE) : int(end * RATE)]


def packet_count(path: Path | str) -> int:
    with open(path, "rb") as file:
        _, packets = ogg.read(file)
        return sum(1 for _ in packets)


def encoded_tone(frequency: float, packets: int) -> tuple[bytes, list[bytes]]:
    """The mixer's OpusHead and `packets` 20 ms Opus packets of a stereo tone, from the mixer's own encoder."""
    mixer = Mixer()
    head = mixer.opus_head()
    out: list[bytes] = []
    for index in range(packets):
        out.extend(mixer.encode(np.repeat(tone(frequency, index * FRAME), 2)))
    assert len(out) == packets
    return head, out
