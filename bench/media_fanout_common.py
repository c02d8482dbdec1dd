"""Shared by the processes of `bench/media_fanout.py`: control over stdin/stdout, loopback-only ICE, /proc readers.

Every child process of the benchmark is driven the same way: one JSON request
per line on its stdin, one JSON reply per line on its stdout (nothing else is
written there; logs go to stderr). A child stops on `{"cmd": "stop"}` or when
its stdin closes, so it never outlives the driver.
"""

import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PACKETS_PER_S = 50  # 20 ms Opus frames
CLICK_EVERY_FRAMES = 25  # a click every 500 ms
SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960
SPEAKER_SLOTS = 12  # as tests/media/clients.py: one sendonly microphone, 12 recvonly slots
CLICK_RMS = 2_000.0  # the quiet stage mixes to RMS < 400; a click frame is far above this
# A voice: a tone the worker counts as speaking (its RMS, about 700, is above `media.mixer.SPEAKING_RMS`);
# three of them mix to about 1,200, still well under CLICK_RMS.
VOICE_AMPLITUDE = 1_000
CLICK_REFRACTORY_S = 0.25

Handler = Callable[[dict], Awaitable[dict]]


def loopback_only() -> None:
    """ICE host candidates on 127.0.0.1 only: one UDP socket per connection, nothing leaves loopback.

    `media.aiortc_bridge.allow_loopback_candidates` adds 127.0.0.1 to the
    machine's addresses (what the worker does under `SPACES_MEDIA_ICE_LOOPBACK`);
    this narrows whatever `aioice.ice.get_host_addresses` then returns to it.
    """
    import aioice.ice

    from media.aiortc_bridge import allow_loopback_candidates

    allow_loopback_candidates()
    with_loopback = aioice.ice.get_host_addresses

    def only_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in with_loopback(use_ipv4, use_ipv6) if a == "127.0.0.1"]

    aioice.ice.get_host_addresses = only_loopback


def setup_logging(name: str) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format=f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s"
    )


def reply(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def serve_control(handle: Handler) -> None:
    """Answer the driver's requests until `stop`; at the end of stdin (the driver is gone), stop too."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            await handle({"cmd": "stop"})
            return
        request = json.loads(line)
        try:
            answer = await handle(request)
        except Exception as error:
            logging.getLogger("bench").exception("request %s failed", request.get("cmd"))
            answer = {"error": f"{type(error).__name__}: {error}"}
        answer["id"] = request.get("id")
        reply(answer)
        if request.get("cmd") == "stop":
            return


def run_child(main: Awaitable[None]) -> None:
    """Run a child's main coroutine, then leave at once: aiortc's decoder threads are not daemons."""
    try:
        asyncio.run(main)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_split(pid: int, tid: int | None = None) -> tuple[float, float]:
    """(utime, stime) of a process, or of one of its threads, in seconds."""
    stat = Path(f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores since boot, from /proc/stat (steal counts as busy)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
