"""Client processes of `bench/recording.py`: one speaker per room reading speech, and many listeners per room.

- `--role speakers`: one aiortc speaker per room (`--ports`, one signalling port
  a room), each offering one sendonly track and 12 recvonly slots (as
  tests/media/clients.py) and sending the same recording of human speech (the
  13.4 s of A Tale of Two Cities the captions bench uses, then 2 s of silence,
  looped), Opus-encoded once beforehand, at real-time pace, each from its own
  offset. A speaker whose connection dies joins again.
- `--role listeners`: as many recvonly aiortc peer connections in each room as
  the driver asks (`grow`, `shrink`; `media_fanout_clients.Pool`: full ICE and
  DTLS-SRTP, as a browser). RTP and RTCP are counted and dropped as each
  datagram arrives, before aiortc decrypts or parses it (`count_and_drop_media`):
  the worker's work per listener is unchanged (it protects and sends every
  packet), but a listener costs this side about 10 µs per packet instead of
  about 40, so hundreds fit beside the worker on 2 cores. STUN (ICE consent)
  and DTLS still reach aiortc.

Driven over stdin/stdout as the other bench children (`media_fanout_common.serve_control`).
"""

import argparse
import asyncio
import contextlib
import logging
import time
import wave
from abc import ABC, abstractmethod
from collections import Counter

import aioice.ice
import media_fanout_common as common
import numpy as np
from media_fanout_clients import Pool, connect, new_pc

log = logging.getLogger("bench.recording_clients")

# Per connection (by id of its aioice protocol): RTP packets received since it connected.
RTP_PACKETS: Counter[int] = Counter()
RTCP_PACKETS = [0]


def count_and_drop_media() -> None:
    """Count RTP (and RTCP) datagrams per connection and drop them: the listener never decrypts them.

    RFC 7983 demultiplexing: a first byte of 128-191 is RTP or RTCP (RTCP has a
    second byte of 192-223); STUN (0-3) and DTLS (20-63) go on to aioice and aiortc.
    """
    original = aioice.ice.StunProtocol.datagram_received

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if data and 128 <= data[0] <= 191:
            if 192 <= data[1] <= 223:
                RTCP_PACKETS[0] += 1
            else:
                RTP_PACKETS[id(self)] += 1
            return
        original(self, data, addr)

    aioice.ice.StunProtocol.datagram_received = datagram_received


def received(pc) -> int:
    """RTP packets this listener's connection has had (0 until its ICE pair is chosen)."""
    try:
        pair = pc.getTransceivers()[0].receiver.transport.transport._connection._nominated.get(1)
    except (AttributeError, IndexError):
        return 0
    return RTP_PACKETS.get(id(pair.protocol), 0) if pair is not None else 0


class Clients(ABC):
    """What both roles answer: `on_<cmd>(request)` for each command of the driver."""

    @abstractmethod
    async def close(self) -> None:
        """Hang up every connection of this role."""

    async def on_stop(self, request: dict) -> dict:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.close(), timeout=10)
        return {"stopped": True}


class Speakers(Clients):
    """One speaker per room, each sending the same speech from its own offset, encoded once beforehand.

    The recording is encoded here once with the worker's own `Mixer` (Opus, 32 kb/s, 20 ms); each
    speaker's track is a `ForwardTrack` that one pacing task feeds a packet every 20 ms. aiortc sends
    an already-encoded packet as it is: no encoder, and none of its per-sample audio-level loop,
    which would cost about 0.4 of a core for 20 speakers.
    """

    def __init__(self, ports: list[int], wav: str) -> None:
        from media.mixer import Mixer

        self.ports = ports
        with wave.open(wav) as source:
            speech = np.frombuffer(source.readframes(source.getnframes()), dtype=np.int16)
        mixer = Mixer()
        self.packets: list[bytes] = []
        for start in range(0, len(speech) - common.FRAME_SAMPLES + 1, common.FRAME_SAMPLES):
            self.packets += mixer.encode(np.repeat(speech[start : start + common.FRAME_SAMPLES], 2))
        self.pcs: list = []
        self.tracks: list = []
        self.frames = 0
        self.rejoins = 0
        self.closing = False
        self.pacing: asyncio.Task | None = None

    async def on_join(self, request: dict) -> dict:
        timeout = request["connect_timeout"]
        self.pcs = [None] * len(self.ports)
        self.tracks = [None] * len(self.ports)
        await asyncio.gather(*(self._one(k, timeout) for k in range(len(self.ports))))
        self.pacing = asyncio.get_running_loop().create_task(self._pace())
        return await self.on_snapshot(request)

    async def _one(self, k: int, timeout: float) -> None:
        """Speaker k joins its room (again, if its connection died: see `_rejoin`)."""
        from media.room import ForwardTrack

        pc = new_pc()
        track = ForwardTrack()
        pc.addTransceiver(track, direction="sendonly")
        for _ in range(common.SPEAKER_SLOTS):
            pc.addTransceiver("audio", direction="recvonly")
        self.pcs[k], self.tracks[k] = pc, track

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and not self.closing and self.pcs[k] is pc:
                asyncio.get_running_loop().create_task(self._rejoin(k, pc, timeout))

        await connect(pc, self.ports[k], "speaker", timeout)

    async def _rejoin(self, k: int, pc, timeout: float) -> None:
        """The connection died (most likely its ICE consent: aioice gives each check 0.5 s and closes after
        six failures in a row, so a worker that answers late for ~30 s loses aiortc clients): come back,
        as a browser's page would offer again."""
        self.rejoins += 1
        log.warning("speaker %d: connection %s; joining again", k, pc.connectionState)
        await pc.close()
        try:
            await self._one(k, timeout)
        except (TimeoutError, ConnectionError, RuntimeError, OSError, ValueError) as error:
            log.warning("speaker %d could not join again: %r", k, error)

    async def _pace(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        count = len(self.packets)
        offsets = [k * count // len(self.tracks) for k in range(len(self.tracks))]
        while True:
            for track, offset in zip(self.tracks, offsets, strict=True):
                track.put(self.packets[(self.frames + offset) % count])
            self.frames += 1
            due = started + self.frames * common.FRAME_SAMPLES / common.SAMPLE_RATE
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def on_snapshot(self, request: dict) -> dict:
        return {
            "speakers": len(self.pcs),
            "connected": sum(1 for pc in self.pcs if pc.connectionState == "connected"),
            "states": dict(Counter(pc.connectionState for pc in self.pcs)),
            "frames": self.frames,
            "rejoins": self.rejoins,
        }

    async def close(self) -> None:
        self.closing = True
        if self.pacing is not None:
            self.pacing.cancel()
        await asyncio.gather(*(pc.close() for pc in self.pcs), return_exceptions=True)


class Listeners(Clients):
    """`per_room` listeners on each room's port, one `Pool` a room, all in this process."""

    def __init__(self, ports: list[int]) -> None:
        self.pools = [Pool(port, probe=False) for port in ports]

    async def on_grow(self, request: dict) -> dict:
        per_room, timeout = request["per_room"], request["connect_timeout"]
        started = time.monotonic()
        # The rooms fill side by side; `concurrency` connections in flight in all.
        semaphore = asyncio.Semaphore(request["concurrency"])

        async def fill(pool: Pool) -> None:
            await asyncio.gather(*(pool._one(semaphore, timeout) for _ in range(per_room - len(pool.pcs))))

        await asyncio.gather(*(fill(pool) for pool in self.pools))
        return {**await self.on_snapshot(request), "seconds": time.monotonic() - started}

    async def on_shrink(self, request: dict) -> dict:
        await asyncio.gather(*(pool.shrink(request["per_room"]) for pool in self.pools))
        return await self.on_snapshot(request)

    async def on_snapshot(self, request: dict) -> dict:
        states = [pool.state() for pool in self.pools]
        counts = [received(pc) for pool in self.pools for pc in pool.pcs]
        lags = [pool.snapshot(0.0) for pool in self.pools]  # resets each pool's loop-lag figures
        errors: Counter[str] = Counter()
        for state in states:
            errors.update(state["errors"])
        return {
            "t": time.monotonic(),
            "listeners": sum(s["listeners"] for s in states),
            "connected": sum(s["connected"] for s in states),
            "failed": sum(s["failed"] for s in states),
            "errors": dict(errors),
            "rtp_per_connection": counts,
            "rtcp": RTCP_PACKETS[0],
            "lag_max": max((lag["lag_max"] for lag in lags), default=0.0),
            "lag_mean": max((lag["lag_mean"] for lag in lags), default=0.0),
        }

    async def close(self) -> None:
        await asyncio.gather(*(pool.close() for pool in self.pools), return_exceptions=True)


async def main(args: argparse.Namespace) -> None:
    common.loopback_only()
    ports = [int(p) for p in args.ports.split(",")]
    if args.role == "speakers":
        logging.getLogger("aioice.ice").setLevel(logging.INFO)  # says so when a connection's consent expires
        clients: Clients = Speakers(ports, args.wav)
    else:
        count_and_drop_media()
        clients = Listeners(ports)

    async def handle(request: dict) -> dict:
        command = getattr(clients, f"on_{request['cmd']}", None)
        if command is None:
            raise ValueError(f"unknown command {request['cmd']!r} for {args.role}")
        return await command(request)

    await common.serve_control(handle)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--role", choices=["speakers", "listeners"], required=True)
    parser.add_argument("--ports", required=True, help="the rooms' signalling ports, comma-separated")
    parser.add_argument("--wav", default="", help="speakers: 48 kHz mono speech to loop")
    parser.add_argument("--name", default="")
    args = parser.parse_args()
    common.setup_logging(f"recording-{args.role}{args.name}")
    common.run_child(main(args))
