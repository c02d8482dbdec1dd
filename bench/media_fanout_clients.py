"""Client processes of `bench/media_fanout.py`: the speakers, the listener pools and the probes (aiortc, loopback).

- `--role speakers`: three aiortc speakers, each offering one sendonly track and
  12 recvonly slots (as tests/media/clients.py). Each sends a quiet tone, or a
  louder one the worker counts as a voice (`voices` command: the first N speak);
  the first also sends a loud 20 ms click every 500 ms and keeps the wall-clock time
  (`time.time()`) at which each click frame left its track (`recv()` returned
  it, just before aiortc encodes it). The slots are tapped and counted, not
  decoded.
- `--role listeners`: many recvonly peer connections in one process. Each
  listener's `RTCRtpReceiver` is tapped with `media.aiortc_bridge.tap_receiver`,
  so packets are counted, never jitter-buffered or decoded.
- `--role probes`: listeners that also decode every Opus payload as it arrives
  (PyAV's libopus) and keep the wall-clock arrival time of each click onset
  (a frame's RMS jumping over `CLICK_RMS`).
"""

import argparse
import asyncio
import fractions
import json
import logging
import time

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from media_fanout_common import (
    CLICK_EVERY_FRAMES,
    CLICK_REFRACTORY_S,
    CLICK_RMS,
    FRAME_SAMPLES,
    SAMPLE_RATE,
    SPEAKER_SLOTS,
    VOICE_AMPLITUDE,
    loopback_only,
    run_child,
    serve_control,
    setup_logging,
)

log = logging.getLogger("bench.clients")

SIGNAL_TIMEOUT_S = 20.0
TONES_HZ = (220.0, 330.0, 550.0)
QUIET_AMPLITUDE = 300  # about -40 dBFS: a quiet stage
CLICK_AMPLITUDE = 16_000
CLICK_HZ = 1_000.0
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
LAG_PERIOD_S = 0.05


async def signal(port: int, role: str, sdp: str) -> str:
    """One offer to the worker's signalling server; its answer SDP."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    try:
        writer.write((json.dumps({"role": role, "sdp": sdp}) + "\n").encode())
        await writer.drain()
        answer = json.loads(await reader.readline())
    finally:
        writer.close()
    if "sdp" not in answer:
        raise RuntimeError(f"offer refused: {answer.get('error')}")
    return answer["sdp"]


async def connect(pc: RTCPeerConnection, port: int, role: str, timeout: float) -> None:
    """Offer, apply the answer, and wait for the connection (ICE + DTLS) to be up."""
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState in ("connected", "failed", "closed"):
            connected.set()

    async with asyncio.timeout(timeout):
        await pc.setLocalDescription(await pc.createOffer())
        answer = await signal(port, role, pc.localDescription.sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        await connected.wait()
    if pc.connectionState != "connected":
        raise ConnectionError(f"connection {pc.connectionState}")


def new_pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


# Speakers


class SignalTrack(MediaStreamTrack):
    """A quiet tone (or a voice: `amplitude`), paced at real time; with `clicks`, every 25th frame is a loud burst."""

    kind = "audio"

    def __init__(self, frequency: float, clicks: bool) -> None:
        super().__init__()
        self.frequency = frequency
        self.clicks = clicks
        self.amplitude = QUIET_AMPLITUDE
        self.click_times: list[float] = []
        self.frames = 0
        self.start: float | None = None
        t = np.arange(FRAME_SAMPLES) / SAMPLE_RATE
        self.click = (np.sin(2 * np.pi * CLICK_HZ * t) * CLICK_AMPLITUDE).astype(np.int16)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = self.frames * FRAME_SAMPLES
        if self.start is None:
            self.start = time.monotonic()
        else:
            wait = self.start + pts / SAMPLE_RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        is_click = self.clicks and self.frames > 0 and self.frames % CLICK_EVERY_FRAMES == 0
        if is_click:
            samples = self.click
        else:
            t = (pts + np.arange(FRAME_SAMPLES)) / SAMPLE_RATE
            samples = (np.sin(2 * np.pi * self.frequency * t) * self.amplitude).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = pts
        frame.time_base = TIME_BASE
        self.frames += 1
        if is_click:
            self.click_times.append(time.time())
        return frame


class Speakers:
    def __init__(self, port: int) -> None:
        self.port = port
        self.pcs: list[RTCPeerConnection] = []
        self.tracks: list[SignalTrack] = []
        self.slot_packets = 0

    def _count(self, packet) -> None:
        self.slot_packets += 1

    async def join(self, count: int, timeout: float) -> dict:
        from media.aiortc_bridge import tap_receiver

        # One after the other: the clicking speaker is the first the worker sees.
        for n in range(count):
            pc = new_pc()
            track = SignalTrack(TONES_HZ[n % len(TONES_HZ)], clicks=n == 0)
            pc.addTransceiver(track, direction="sendonly")
            for _ in range(SPEAKER_SLOTS):
                tap_receiver(pc.addTransceiver("audio", direction="recvonly").receiver, self._count)
            self.pcs.append(pc)
            self.tracks.append(track)
            await connect(pc, self.port, "speaker", timeout)
        return {"connected": sum(1 for pc in self.pcs if pc.connectionState == "connected")}

    def voices(self, count: int) -> dict:
        """The first `count` speakers speak (a voice's level), the others stay quiet."""
        for n, track in enumerate(self.tracks):
            track.amplitude = VOICE_AMPLITUDE if n < count else QUIET_AMPLITUDE
        return {"voices": count}

    def stats(self, since: float) -> dict:
        return {
            "clicks": [t for t in self.tracks[0].click_times if t >= since] if self.tracks else [],
            "frames": [track.frames for track in self.tracks],
            "slot_packets": self.slot_packets,
            "connected": sum(1 for pc in self.pcs if pc.connectionState == "connected"),
        }

    async def close(self) -> None:
        await asyncio.gather(*(pc.close() for pc in self.pcs), return_exceptions=True)


# Listeners and probes


class Pool:
    """Listeners in one process; each counts its packets, probes also find the clicks."""

    def __init__(self, port: int, probe: bool) -> None:
        self.port = port
        self.probe = probe
        self.pcs: list[RTCPeerConnection] = []
        self.counts: list[int] = []
        # Per listener: the latest RTP sequence number and the highest one, extended past wrap-around.
        self.lasts: list[int] = []
        self.highs: list[int] = []
        self.failed = 0
        self.errors: dict[str, int] = {}
        self.detections: list[float] = []  # wall-clock arrival of click onsets (probes)
        # How late this process's event loop runs (a 50 ms timer's overshoot): a listener process that
        # cannot keep up shows it here first (its packets wait in socket buffers, ICE consent answers
        # come late), before any packet is lost.
        self.lag_max = 0.0
        self.lag_sum = 0.0
        self.lag_count = 0
        self.lag_task = asyncio.get_running_loop().create_task(self._watch_lag())

    async def _watch_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(LAG_PERIOD_S)
            lag = loop.time() - started - LAG_PERIOD_S
            self.lag_max = max(self.lag_max, lag)
            self.lag_sum += lag
            self.lag_count += 1

    def _counter(self, index: int):
        counts, lasts, highs = self.counts, self.lasts, self.highs

        def count(packet) -> None:
            counts[index] += 1
            seq = packet.sequence_number
            last = lasts[index]
            if last < 0:
                lasts[index] = seq
                return
            delta = (seq - last) & 0xFFFF
            if delta < 0x8000:
                highs[index] += delta
                lasts[index] = seq

        if not self.probe:
            return count

        decoder = av.CodecContext.create("libopus", "r")
        decoder.format = "s16"
        decoder.layout = "stereo"
        decoder.sample_rate = SAMPLE_RATE
        state = {"loud": False, "last": 0.0}
        detections = self.detections

        def on_probe_packet(packet) -> None:
            arrived = time.time()
            count(packet)
            for frame in decoder.decode(av.Packet(packet.payload)):
                samples = frame.to_ndarray().astype(np.float32)
                loud = float(np.sqrt(np.mean(samples * samples))) >= CLICK_RMS
                if loud and not state["loud"] and arrived - state["last"] >= CLICK_REFRACTORY_S:
                    detections.append(arrived)
                    state["last"] = arrived
                state["loud"] = loud

        return on_probe_packet

    async def _one(self, semaphore: asyncio.Semaphore, timeout: float) -> None:
        from media.aiortc_bridge import tap_receiver

        async with semaphore:
            index = len(self.counts)
            self.counts.append(0)
            self.lasts.append(-1)
            self.highs.append(0)
            pc = new_pc()
            self.pcs.append(pc)
            transceiver = pc.addTransceiver("audio", direction="recvonly")
            tap_receiver(transceiver.receiver, self._counter(index))
            try:
                await connect(pc, self.port, "listener", timeout)
            except (TimeoutError, ConnectionError, RuntimeError, OSError, ValueError) as error:
                self.failed += 1
                name = type(error).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
                log.warning("listener %d did not connect: %r", index, error)

    async def grow(self, total: int, concurrency: int, timeout: float) -> dict:
        started = time.monotonic()
        semaphore = asyncio.Semaphore(concurrency)
        await asyncio.gather(*(self._one(semaphore, timeout) for _ in range(total - len(self.pcs))))
        return {**self.state(), "seconds": time.monotonic() - started}

    async def shrink(self, total: int) -> dict:
        """Hang up the newest listeners until `total` are left."""
        gone = self.pcs[total:]
        del self.pcs[total:]
        del self.counts[total:]
        del self.lasts[total:]
        del self.highs[total:]
        await asyncio.gather(*(pc.close() for pc in gone), return_exceptions=True)
        return self.state()

    def state(self) -> dict:
        return {
            "listeners": len(self.pcs),
            "connected": sum(1 for pc in self.pcs if pc.connectionState == "connected"),
            "failed": self.failed,
            "errors": self.errors,
        }

    def snapshot(self, since: float) -> dict:
        """Counters now; the loop lag since the previous snapshot (then reset)."""
        lag = {"lag_max": self.lag_max, "lag_mean": self.lag_sum / max(1, self.lag_count)}
        self.lag_max = self.lag_sum = 0.0
        self.lag_count = 0
        return {
            **self.state(),
            **lag,
            "t": time.monotonic(),
            "counts": list(self.counts),
            "highs": list(self.highs),
            "detections": [t for t in self.detections if t >= since],
        }

    async def close(self) -> None:
        self.lag_task.cancel()
        await asyncio.gather(*(pc.close() for pc in self.pcs), return_exceptions=True)


async def main(role: str, port: int) -> None:
    loopback_only()
    speakers = Speakers(port) if role == "speakers" else None
    pool = Pool(port, probe=role == "probes") if role != "speakers" else None

    async def handle(request: dict) -> dict:
        cmd = request["cmd"]
        if cmd == "join" and speakers is not None:
            return await speakers.join(request["count"], request["connect_timeout"])
        if cmd == "voices" and speakers is not None:
            return speakers.voices(request["count"])
        if cmd == "grow" and pool is not None:
            return await pool.grow(request["total"], request["concurrency"], request["connect_timeout"])
        if cmd == "shrink" and pool is not None:
            return await pool.shrink(request["total"])
        if cmd == "snapshot":
            since = request.get("since", 0.0)
            return speakers.stats(since) if speakers is not None else pool.snapshot(since)
        if cmd == "stop":
            try:
                await asyncio.wait_for((speakers or pool).close(), timeout=10)
            except TimeoutError:
                log.warning("closing the peer connections timed out")
            return {"stopped": True}
        raise ValueError(f"unknown command {cmd!r} for {role}")

    await serve_control(handle)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["speakers", "listeners", "probes"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    setup_logging(f"{args.role}{args.name}")
    run_child(main(args.role, args.port))
