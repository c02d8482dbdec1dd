"""Watch the Redis channel layer from each process and say when it comes back.

Channel-layer groups live in Redis: a Redis restart forgets every group, and
messages sent while it was down are gone. A process cannot learn this from
its own calls (one consumer per process holds the blocking read, and a quick
restart may fall between two reads), so one task per event loop asks each
Redis host for its `run_id` every `SPACES_LAYER_WATCH_S`. A failed probe, or
a `run_id` that changed, is an outage; the first good probe after one starts
a new *epoch*, and every subscriber (each open websocket, the media worker)
is called to join its groups again and catch up on what it missed.

The in-memory layer cannot fail this way: `layer_watch()` is then None.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from channels.layers import get_channel_layer
from django.conf import settings

from spaces_site.outages import OUTAGE_ERRORS, OutageLog, stop_if_cancelled

log = logging.getLogger(__name__)

Recovered = Callable[[], Awaitable[None]]


class LayerWatch:
    def __init__(self, layer) -> None:
        self.layer = layer
        self.up = asyncio.Event()
        self.up.set()
        self.epoch = 0
        self.run_ids: list[str] | None = None
        self.subscribers: dict[object, Recovered] = {}
        self.outage = OutageLog("channel layer (Redis)")
        self.task: asyncio.Task | None = None

    def subscribe(self, owner: object, on_recovered: Recovered) -> None:
        self.subscribers[owner] = on_recovered

    def unsubscribe(self, owner: object) -> None:
        self.subscribers.pop(owner, None)

    def failed(self, error: BaseException) -> None:
        """A caller's layer operation failed with an outage error: the layer is down until a probe says otherwise."""
        self.outage.failed(error)
        self.up.clear()

    async def wait_up(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self.up.wait()
        except TimeoutError:
            return False
        return True

    async def probe(self) -> None:
        """Ask every host for its run id; an error or a changed id means groups were lost."""
        try:
            run_ids = [
                (await self.layer.connection(index).info("server"))["run_id"] for index in range(self.layer.ring_size)
            ]
        except OUTAGE_ERRORS as error:
            self.failed(error)
            return
        restarted = self.run_ids is not None and run_ids != self.run_ids
        self.run_ids = run_ids
        if restarted:
            self.outage.failed(ConnectionError("Redis restarted"))
            self.up.clear()
        if not self.up.is_set():
            self.outage.succeeded()
            self.epoch += 1
            self.up.set()
            await self._tell_subscribers()

    async def _tell_subscribers(self) -> None:
        results = await asyncio.gather(*(call() for call in list(self.subscribers.values())), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            # A rejoin that fails again meets the next outage's probe; it is not lost.
            log.warning("%d of %d subscribers failed to rejoin: %r", len(failures), len(results), failures[0])

    async def run(self) -> None:
        while True:
            stop_if_cancelled()
            await self.probe()
            await asyncio.sleep(settings.SPACES_LAYER_WATCH_S if self.up.is_set() else 0.25)


_watches: dict[asyncio.AbstractEventLoop, LayerWatch] = {}


def layer_watch() -> LayerWatch | None:
    """This event loop's watch of the default channel layer, started on first use; None off Redis."""
    layer = get_channel_layer()
    if not hasattr(layer, "ring_size") or settings.SPACES_LAYER_WATCH_S <= 0:
        return None
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None or watch.layer is not layer or watch.task is None or watch.task.done():
        for stale in [other for other in _watches if other.is_closed()]:
            _watches.pop(stale)
        watch = _watches[loop] = LayerWatch(layer)
        watch.task = loop.create_task(watch.run())
    return watch
