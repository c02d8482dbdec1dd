"""Each web process vouches for its own sockets, then sweeps presence.

Every `SPACES_PRESENCE_SWEEP_S` the loop stamps `last_seen_at` on the
`Connection` rows of the sockets this process holds right now, then runs
`presence_sweep`. A process that dies (`kill -9`) stops vouching, so its
sockets are dropped `SPACES_PRESENCE_TIMEOUT_S` after its last stamp, by
whichever process sweeps next: no client heartbeat has to reach the
database, and no ghost outlives the window.

A process judges others' sockets only after it has itself reached the
database for a whole timeout: after an outage every row is old, and the
other processes need one pass to vouch for theirs again.

A process that missed its window (a stall, its own cut-off) may find that
another swept some of its open sockets away: it tells each of them
(`presence.restore`), and the socket enters again as a reconnect would.

A process that was killed and started again doesn't wait for the timeout to
judge what its previous life left: under daphne the loop starts with the
server (`start_with_the_server`, before any request; elsewhere with the first
socket), and its first pass drops every socket opened before this process
started that can only have been its own (`sweep_previous_life`): all of
them when the channel layer is in-process (the one-command default: no other
process can hold a socket), those under its `SPACES_PROCESS_NAME` otherwise.
A process with neither leaves them to the timeout, as another process's.
"""

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.utils import timezone

from rooms.services import presence
from spaces_site.channel_layer import LocalChannelLayer
from spaces_site.outages import OUTAGE_ERRORS, REDIS_ERRORS, OutageLog, stop_if_cancelled
from spaces_site.serving import on_server_start

log = logging.getLogger(__name__)

# Channel names of the sockets open in this process.
OPEN_SOCKETS: set[str] = set()
# Every socket this process opens is recorded after this moment (the module loads with the site).
STARTED_AT = timezone.now()


def only_process() -> bool:
    """An in-process channel layer reaches no other process: every socket of the site is this one's."""
    return isinstance(get_channel_layer(), LocalChannelLayer | InMemoryChannelLayer)


class PresenceLoop:
    def __init__(self) -> None:
        self.healthy_since: float | None = None
        self.outage = OutageLog("database (presence)")
        self.swept_away: list[str] = []  # open sockets of this process that lost their row
        self.restart_swept = False

    def pass_once(self) -> dict | None:
        """Vouch, then sweep; returns the sweep's report (None if the database didn't answer). The
        first pass that reaches the database first drops what this process's previous life left."""
        try:
            if not self.restart_swept:
                self.sweep_previous_life()
            self.swept_away = presence.connections_seen(channel_names=list(OPEN_SOCKETS))
            now = time.monotonic()
            if self.healthy_since is None:
                self.healthy_since = now
            trusted = now - self.healthy_since >= settings.SPACES_PRESENCE_TIMEOUT_S
            report = presence.presence_sweep(drop_stale=trusted)
        except OUTAGE_ERRORS as error:
            self.healthy_since = None
            self.outage.failed(error)
            return None
        self.outage.succeeded()
        return report

    def sweep_previous_life(self) -> None:
        if only_process():
            dropped = presence.presence_restart_sweep(booted_at=STARTED_AT, process=None)
        elif settings.SPACES_PROCESS_NAME:
            dropped = presence.presence_restart_sweep(booted_at=STARTED_AT, process=settings.SPACES_PROCESS_NAME)
        else:
            dropped = 0  # another process's sockets look the same: the timeout will tell
        if dropped:
            log.info("presence: dropped %d sockets this process left before it started again", dropped)
        self.restart_swept = True

    async def pass_and_restore(self) -> dict | None:
        """A pass, then a word to each open socket of this process that was swept away."""
        report = await database_sync_to_async(self.pass_once)()
        swept_away = [name for name in self.swept_away if name in OPEN_SOCKETS]
        try:
            for name in swept_away:
                await get_channel_layer().send(name, {"type": "presence.restore"})
        except REDIS_ERRORS as error:
            log.info("presence: %d swept sockets not told yet: %r", len(swept_away), error)  # the next pass tries
        return report

    async def run(self, interval: float) -> None:
        while True:
            stop_if_cancelled()
            await self.pass_and_restore()
            await asyncio.sleep(interval)


_loops: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}


def start_with_the_server() -> None:
    """Under daphne, start the loop as soon as the server's event loop runs, before any request: a
    restarted process sweeps what its previous life left even if nobody connects again. (Elsewhere,
    and in tests, the loop starts with the first socket.)"""
    on_server_start(start_presence_loop)


def start_presence_loop() -> None:
    """Run the loop in this process, once per event loop (started with daphne, or by the first socket)."""
    interval = settings.SPACES_PRESENCE_SWEEP_S  # > 0: settings refuse anything else
    loop = asyncio.get_running_loop()
    task = _loops.get(loop)
    if task is None or task.done():
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("presence loop stopped", exc_info=task.exception())
        _loops.clear()
        _loops[loop] = loop.create_task(PresenceLoop().run(interval))
