"""A web process's watch on the media workers its sockets are connected to: a dead one's clients offer again.

When workers run apart, each socket that sent an offer is placed on one
worker (`media.placement`) and remembered here with that worker's boot. Once
a heartbeat period (`SPACES_MEDIA_HEARTBEAT_S`) the watch reads the workers'
heartbeats, one read for every socket of the process; a socket whose worker's
heartbeat expired (`SPACES_MEDIA_HEARTBEAT_TTL_S`) or that restarted since (a
new boot) is sent `media.reset` on its own channel, and its client offers again
and is placed on a live worker, without reloading the page. A Redis outage is
not a death: the watch waits for Redis to answer, and after an outage looks
once more before it believes a missing heartbeat; nor is a Redis restart that
forgot the keys: a heartbeat missing although its last stamp (`at`) is younger
than the TTL was forgotten, not expired, and the worker stamps it again within
a heartbeat period. (The stamp is the worker's clock: keep hosts in sync.)
"""

import asyncio
import logging
import time
from dataclasses import dataclass

from channels.layers import get_channel_layer
from django.conf import settings

from media import metrics, placement, signalling
from spaces_site.outages import REDIS_ERRORS, stop_if_cancelled

log = logging.getLogger(__name__)

# A missing heartbeat whose last stamp is younger than the TTL less this was forgotten by Redis, not expired.
FORGOTTEN_SLACK_S = 0.25


@dataclass(frozen=True)
class Placed:
    space_id: int
    index: int
    boot: str


class WorkerWatch:
    def __init__(self) -> None:
        # socket channel -> the worker its media connection was placed on
        self.sockets: dict[str, Placed] = {}
        self.task: asyncio.Task | None = None
        self.resets = 0
        # worker index -> (boot, the newest stamp read from it)
        self.stamps: dict[int, tuple[str, float]] = {}
        self.looks = 0  # looks in a row that Redis answered

    def attach(self, channel: str, placed: Placed) -> None:
        self.sockets[channel] = placed
        if self.task is None or self.task.done():
            self.looks = 0
            self.task = asyncio.get_running_loop().create_task(self._run())

    def detach(self, channel: str) -> None:
        self.sockets.pop(channel, None)

    async def _run(self) -> None:
        layer = get_channel_layer()
        while self.sockets:
            # The heartbeats are read through `sync_to_async`, which can swallow a cancellation (a test
            # loop's teardown waited for ever): check on every round, as every long-running loop here does.
            stop_if_cancelled()
            await asyncio.sleep(settings.SPACES_MEDIA_HEARTBEAT_S)
            try:
                workers = await placement.heartbeats()
            except REDIS_ERRORS:
                stop_if_cancelled()
                self.looks = 0
                continue
            stop_if_cancelled()
            self.looks += 1
            self.stamps.update({index: (worker.boot, worker.at) for index, worker in workers.items()})
            lost = {channel: placed for channel, placed in self.sockets.items() if self._gone(placed, workers)}
            if lost:
                log.warning("media worker(s) %s gone: %d sockets told to offer again", _indices(lost), len(lost))
            for channel, placed in lost.items():
                if self.sockets.get(channel) is not placed:
                    continue  # placed anew while we read
                del self.sockets[channel]
                self.resets += 1
                metrics.FAILOVERS.inc()
                try:
                    await layer.send(channel, {"type": signalling.RESET, "space_id": placed.space_id})
                except REDIS_ERRORS:
                    self.sockets.setdefault(channel, placed)  # told at the next look

    def _gone(self, placed: Placed, workers: dict[int, placement.WorkerLoad]) -> bool:
        worker = workers.get(placed.index)
        if worker is not None:
            # stopping, or restarted: the connection ends, or ended, with the old process
            return worker.stopped or worker.boot != placed.boot
        if self.looks < 2:
            return False  # Redis just came back: the workers stamp again within a period
        boot, at = self.stamps.get(placed.index, (placed.boot, 0.0))
        forgotten = boot == placed.boot and time.time() - at < settings.SPACES_MEDIA_HEARTBEAT_TTL_S - FORGOTTEN_SLACK_S
        return not forgotten


def _indices(lost: dict[str, Placed]) -> str:
    return ", ".join(str(index) for index in sorted({placed.index for placed in lost.values()}))


_watches: dict[asyncio.AbstractEventLoop, WorkerWatch] = {}


def worker_watch() -> WorkerWatch:
    """This process's watch (one per event loop)."""
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None:
        for old in [other for other in _watches if other.is_closed()]:
            del _watches[old]
        watch = _watches[loop] = WorkerWatch()
    return watch
