"""channels_redis's layer with one reader per process for the process's own channels.

Every socket's channel is process-local (`specific.<process>!<socket>`), and
channels_redis keeps all of one process's in a single Redis key: a broadcast
to a thousand sockets of one daphne is one message there, naming the
thousand channels. Reading it back is where channels_redis spends: each
waiting `receive()` makes two tasks per round (the process's receive lock
and its own buffer), one receiver at a time holds the lock and reads Redis
for everyone, and every other receiver, woken by its buffer, cancels its
place in the lock's queue (O(waiters) each) and makes two new tasks for the
next message. With a thousand sockets that was a third of daphne's loop
(bench/room_events.py, docs/benchmarks.md).

Here one task per process, the reader, takes the process's messages off
Redis through channels_redis's own `receive_single` (its backup queue keeps a
message that was being read when the reader is cancelled) and puts each into
the inbox of every channel it names; `receive()` waits on its inbox only.

- The reader runs on the loop of the receivers; it starts with the first
  `receive()` and stops when the last waiting receiver is cancelled or when
  a read fails. A failed read (Redis down) is raised in every waiting
  receiver, which may call `receive()` again: that starts a new reader.
- A message for a channel nobody has asked for yet is kept for it; each
  inbox holds at most the channel's capacity (the oldest message goes, as
  channels_redis's buffer does), and an inbox nobody has read for `expiry`
  seconds is dropped with what it holds (a socket that has gone).
- Each receiver gets its own shallow copy of the message.
- One event loop at a time receives (as in channels_redis); a receiver on a
  new loop, once the old one has closed (tests, `async_to_sync`), starts a
  new reader there.
- Channels without `!` (a named channel every process may read, such as a
  worker's) are read as channels_redis reads them.
"""

import asyncio
import contextlib
import time
from collections import deque

from channels_redis.core import ChannelLock, RedisChannelLayer

Message = dict
Waiter = asyncio.Future[None]


class _Inbox:
    __slots__ = ("capacity", "messages", "touched", "waiters")

    def __init__(self, capacity: int, now: float) -> None:
        self.capacity = capacity
        self.messages: deque[Message] = deque()
        self.waiters: deque[Waiter] = deque()
        self.touched = now

    def put(self, message: Message, now: float) -> None:
        if len(self.messages) >= self.capacity > 0:
            self.messages.popleft()
        self.messages.append(message)
        self.touched = now
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def forget_waiter(self, waiter: Waiter) -> None:
        with contextlib.suppress(ValueError):  # already woken
            self.waiters.remove(waiter)
        if self.messages:  # a wake-up it may have had goes to the next receiver
            for other in self.waiters:
                if not other.done():
                    other.set_result(None)
                    break


class ProcessReaderRedisChannelLayer(RedisChannelLayer):
    """See the module docstring."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._inboxes: dict[str, _Inbox] = {}
        self._waiting = 0
        self._reader: asyncio.Task | None = None
        self._reader_loop: asyncio.AbstractEventLoop | None = None
        self._next_sweep = 0.0

    async def receive(self, channel: str) -> Message:
        if "!" not in channel:
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel)
        process_channel = self.non_local_name(channel)
        assert process_channel.endswith(self.client_prefix + "!"), "Wrong client prefix"
        while True:
            inbox = self._inbox(channel, time.monotonic())
            if inbox.messages:
                message = inbox.messages.popleft()
                inbox.touched = time.monotonic()
                self._forget_if_idle(channel, inbox)
                return dict(message)
            self._reader_for(process_channel)
            waiter = asyncio.get_running_loop().create_future()
            inbox.waiters.append(waiter)
            self._waiting += 1
            try:
                await waiter  # woken with a message in the inbox, or with the reader's failure
            except BaseException as error:
                inbox.forget_waiter(waiter)
                self._forget_if_idle(channel, inbox)
                if isinstance(error, asyncio.CancelledError) and self._waiting == 1:
                    self._cancel_reader()  # the last receiver of this process has gone
                raise
            finally:
                self._waiting -= 1

    async def close_pools(self) -> None:
        await self._stop_reader()
        await super().close_pools()

    async def flush(self) -> None:
        await self._stop_reader()
        for inbox in self._inboxes.values():
            inbox.messages.clear()
        await super().flush()

    # The reader

    def _reader_for(self, process_channel: str) -> asyncio.Task:
        loop = asyncio.get_running_loop()
        reader = self._reader
        if reader is not None and not reader.done():
            if reader.get_loop() is loop:
                return reader
            if not reader.get_loop().is_closed():
                raise RuntimeError("Two event loops are trying to receive() on one channel layer at once!")
        if self._reader_loop is not loop:
            # channels_redis's per-key locks belong to the loop that last waited on them; one
            # held by a cleaner its closed loop never finished would stay locked for good.
            self.receive_clean_locks = ChannelLock()
            self._reader_loop = loop
        self._reader = loop.create_task(self._read(process_channel), name="channel-layer-reader")
        return self._reader

    async def _read(self, process_channel: str) -> None:
        try:
            while True:
                channels, message = await self.receive_single(process_channel)
                now = time.monotonic()
                for channel in [channels] if isinstance(channels, str) else channels:
                    self._inbox(channel, now).put(message, now)
                if now >= self._next_sweep:
                    self._sweep(now)
        except asyncio.CancelledError:
            self._wake_all(None)  # those still waiting start a new reader
            raise
        except Exception as error:  # noqa: BLE001 - not swallowed: raised in every receiver
            # Redis down, or anything else the read raised: each receiver hears it, as each one
            # that read Redis itself did with channels_redis.
            self._wake_all(error)
        finally:
            if self._reader is asyncio.current_task():
                self._reader = None

    def _wake_all(self, error: Exception | None) -> None:
        for inbox in self._inboxes.values():
            while inbox.waiters:
                waiter = inbox.waiters.popleft()
                if waiter.done():
                    continue
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)

    def _cancel_reader(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None

    async def _stop_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is None or reader.done() or reader.get_loop() is not asyncio.get_running_loop():
            return
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader

    # Inboxes

    def _inbox(self, channel: str, now: float) -> _Inbox:
        inbox = self._inboxes.get(channel)
        if inbox is None:
            inbox = self._inboxes[channel] = _Inbox(self.get_capacity(channel), now)
        return inbox

    def _forget_if_idle(self, channel: str, inbox: _Inbox) -> None:
        if not inbox.messages and not inbox.waiters and self._inboxes.get(channel) is inbox:
            del self._inboxes[channel]

    def _sweep(self, now: float) -> None:
        """Drop the inboxes nobody has read or waited on for `expiry` seconds."""
        self._next_sweep = now + max(self.expiry, 1)
        stale = now - self.expiry
        for channel, inbox in list(self._inboxes.items()):
            if not inbox.waiters and inbox.touched < stale:
                del self._inboxes[channel]
