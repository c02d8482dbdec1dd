"""aiortc clients for media tests: a speaker playing a WAV file, a listener that records."""

import asyncio
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError

from media.aiortc_bridge import allow_loopback_candidates
from tests.rooms.ws import next_event

SLOTS = 12


def write_tone(path: Path, frequency: float, seconds: float = 30.0, rate: int = 48_000) -> Path:
    """A mono 16-bit WAV carrying a sine tone."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (np.sin(2 * np.pi * frequency * t) * 12_000).astype(np.int16)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


@dataclass
class Recorder:
    """Keeps every received frame as (arrival time, mono samples at 48 kHz)."""

    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)
    tasks: list[asyncio.Task] = field(default_factory=list)

    def attach(self, track: MediaStreamTrack) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                samples = frame.to_ndarray().reshape(-1)
                if frame.layout.name == "stereo":
                    samples = samples[::2]
                self.frames.append((time.monotonic(), samples.astype(np.float32)))
        except MediaStreamError:
            return

    def since(self, start: float) -> np.ndarray:
        chunks = [s for t, s in self.frames if t >= start]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)

    def since_last(self, seconds: float) -> np.ndarray:
        return self.since(time.monotonic() - seconds)

    async def record(self, seconds: float) -> np.ndarray:
        start = time.monotonic()
        await asyncio.sleep(seconds)
        return self.since(start)


def peaks(samples: np.ndarray, rate: int = 48_000, count: int = 2) -> list[int]:
    """The strongest frequencies (Hz, rounded to 10), strongest first, at least 50 Hz apart."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    found: list[float] = []
    for index in np.argsort(spectrum)[::-1]:
        if all(abs(freqs[index] - f) > 50 for f in found):
            found.append(freqs[index])
        if len(found) == count:
            break
    return [int(round(f, -1)) for f in found]


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


async def negotiate(socket, pc: RTCPeerConnection, *, publish: bool) -> dict:
    """Send our offer on the space's socket; apply the worker's answer. Returns the answer event."""
    await pc.setLocalDescription(await pc.createOffer())
    await socket.send_json_to({"type": "media.offer", "sdp": pc.localDescription.sdp, "publish": publish})
    async with asyncio.timeout(10):
        while True:
            event = await socket.receive_json_from(timeout=10)
            if event["type"] == "media.answer":
                await pc.setRemoteDescription(RTCSessionDescription(sdp=event["sdp"], type="answer"))
                return event
            if event["type"] == "media.error":
                return event


async def join_as_speaker(socket, wav: Path, *, loop: bool = True) -> tuple[RTCPeerConnection, Recorder, dict]:
    allow_loopback_candidates()
    pc = RTCPeerConnection()
    player = MediaPlayer(str(wav), loop=loop)
    pc.addTransceiver(player.audio, direction="sendonly")
    heard = Recorder()
    pc.on("track", heard.attach)
    for _ in range(SLOTS):
        pc.addTransceiver("audio", direction="recvonly")
    return pc, heard, await negotiate(socket, pc, publish=True)


async def join_as_listener(socket, *, also_send: Path | None = None) -> tuple[RTCPeerConnection, Recorder, dict]:
    """A listener; with `also_send` it tries to publish on its one transceiver too."""
    allow_loopback_candidates()
    pc = RTCPeerConnection()
    heard = Recorder()
    pc.on("track", heard.attach)
    if also_send is not None:
        pc.addTransceiver(MediaPlayer(str(also_send), loop=True).audio, direction="sendrecv")
    else:
        pc.addTransceiver("audio", direction="recvonly")
    return pc, heard, await negotiate(socket, pc, publish=False)


async def wait_connected(pc: RTCPeerConnection, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while pc.connectionState != "connected":
            await asyncio.sleep(0.05)


__all__ = ["next_event"]
