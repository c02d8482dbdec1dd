"""Clients of `bench/captions.py`, in a process of their own: N aiortc speakers reading a speech
recording at real-time pace, one probe speaker sending a loud click every 500 ms over silence, and
one listener that times each click's arrival in the room's mix.

Driven over stdin/stdout (one JSON line each way, as `bench/media_fanout_common.py`): it reads
`{"port", "speakers": [user ids], "probe": user id, "listener": user id, "wav": path, "seconds": s}`,
signals each peer through the driver's TCP server, plays the run, and answers with
`{"starts": {user id: wall time of its first frame}, "click_latency_ms": [...], "clicks_sent": n}`.
"""

import asyncio
import fractions
import json
import sys
import time
import wave

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from media_fanout_common import FRAME_SAMPLES, SAMPLE_RATE, SPEAKER_SLOTS, loopback_only

CLICK_EVERY_FRAMES = 10  # a click every 200 ms
CLICK_RMS = 12_000.0  # a full-scale square burst decodes to ~19,000 RMS; one voice of speech stays under 6,000
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)


def new_pc_config() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[])


class PacedTrack(MediaStreamTrack):
    """Mono int16 samples sent in 20 ms frames at real-time pace; `start` is the wall time of frame 0."""

    kind = "audio"

    def __init__(self, samples: np.ndarray, clicks: bool = False) -> None:
        super().__init__()
        self.samples = samples
        self.clicks = clicks
        self.frames = 0
        self.start: float | None = None
        self.started_monotonic = 0.0
        self.click_times: list[float] = []

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start, self.started_monotonic = time.time(), time.monotonic()
        else:
            wait = self.started_monotonic + self.frames * FRAME_SAMPLES / SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        offset = self.frames * FRAME_SAMPLES
        chunk = self.samples[offset : offset + FRAME_SAMPLES]
        chunk = np.pad(chunk, (0, FRAME_SAMPLES - len(chunk)))
        is_click = self.clicks and self.frames > 0 and self.frames % CLICK_EVERY_FRAMES == 0
        if is_click:
            chunk = np.where(np.arange(FRAME_SAMPLES) % 48 < 24, 32_000, -32_000).astype(np.int16)
            self.click_times.append(time.time())
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = offset
        frame.time_base = TIME_BASE
        self.frames += 1
        return frame


async def signal(port: int, user_id: int, publish: bool, sdp: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((json.dumps({"user_id": user_id, "publish": publish, "sdp": sdp}) + "\n").encode())
    await writer.drain()
    answer = json.loads(await reader.readline())
    writer.close()
    if "sdp" not in answer:
        raise RuntimeError(f"offer refused: {answer}")
    return answer["sdp"]


async def connect(pc: RTCPeerConnection, port: int, user_id: int, publish: bool) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    sdp = await signal(port, user_id, publish, pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
    async with asyncio.timeout(10):
        while pc.connectionState != "connected":
            await asyncio.sleep(0.05)


async def drain(track: MediaStreamTrack) -> None:
    try:
        while True:
            await track.recv()
    except MediaStreamError:
        return


async def run(request: dict) -> dict:
    with wave.open(request["wav"]) as source:
        speech = np.frombuffer(source.readframes(source.getnframes()), dtype=np.int16)
    pcs: list[RTCPeerConnection] = []
    tracks: dict[int, PacedTrack] = {}
    arrivals: list[float] = []

    listener = RTCPeerConnection(new_pc_config())
    pcs.append(listener)

    @listener.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        async def read() -> None:
            last = 0.0
            try:
                while True:
                    frame = await track.recv()
                    samples = frame.to_ndarray().reshape(-1).astype(np.float32)
                    now = time.time()
                    level = float(np.sqrt(np.mean(samples**2)))
                    if level > CLICK_RMS and now - last > 0.1:
                        arrivals.append(now)
                        last = now
            except MediaStreamError:
                return

        asyncio.get_running_loop().create_task(read())

    listener.addTransceiver("audio", direction="recvonly")
    await connect(listener, request["port"], request["listener"], False)

    silence = np.zeros(int(request["seconds"] * SAMPLE_RATE), dtype=np.int16)
    for user_id in [*request["speakers"], request["probe"]]:
        pc = RTCPeerConnection(new_pc_config())
        is_probe = user_id == request["probe"]
        track = tracks[user_id] = PacedTrack(silence if is_probe else speech, clicks=is_probe)
        pc.addTransceiver(track, direction="sendonly")
        for _ in range(SPEAKER_SLOTS):
            pc.addTransceiver("audio", direction="recvonly")
        pc.on("track", lambda t: asyncio.get_running_loop().create_task(drain(t)))
        pcs.append(pc)
    # Offer all at once, so the speakers start together.
    await asyncio.gather(*(connect(pc, request["port"], uid, True) for pc, uid in zip(pcs[1:], tracks, strict=True)))
    await asyncio.sleep(request["seconds"] + 1.0)
    probe = tracks[request["probe"]]
    latencies = []
    for sent in probe.click_times:
        later = [a for a in arrivals if 0 <= a - sent < 0.15]
        if later:
            latencies.append(round((later[0] - sent) * 1000, 2))
    result = {
        "starts": {str(uid): t.start for uid, t in tracks.items() if uid != request["probe"]},
        "click_latency_ms": latencies,
        "clicks_sent": len(probe.click_times),
    }
    await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)
    return result


async def main() -> None:
    loopback_only()
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        result = await run(json.loads(line))
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(main())
