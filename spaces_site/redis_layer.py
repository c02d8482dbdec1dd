"""channels_redis's layer, with an inbox per socket and no tasks made per message.

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

Here, as there, one waiting receiver at a time reads the process's key,
in its own task, through channels_redis's own `receive_single` (its backup
queue keeps a message whose read was cancelled), and puts each message into
the inbox of every channel it names. Every other receiver waits on one
future, woken when its inbox gets a message or when it is its turn to read:

- a receiver whose inbox is empty reads Redis itself when nobody else is;
  after a read that brought it a message, it hands the reading on to the
  longest-waiting receiver; a read that fails (Redis down) is raised in the
  receiver that made it, and the next one reads again (so each receiver
  hears the failure, as with channels_redis);
- a message for a channel nobody is waiting on is kept for it; each inbox
  holds at most the channel's capacity (the oldest goes, as channels_redis's
  buffer does), and an inbox nobody has read or waited on for `expiry`
  seconds is dropped with what it holds (a socket that has gone);
- each receiver gets its own shallow copy of the message;
- one event loop at a time receives (as in channels_redis); once that loop
  has closed (tests, `async_to_sync`), another may;
- channels without `!` (a named channel any process may read, such as a
  worker's) are read as channels_redis reads them.
"""

import asyncio
import contextlib
import time
from collections import deque

from channels_redis.core import ChannelLock, RedisChannelLayer

from spaces_site.outages import stop_if_cancelled

Message = dict
Waiter = asyncio.Future[None]

# The queue of receivers that may read next drops the ones already woken once it is past this
# size, and past twice what remains after that.
MIN_COMPACT_AT = 1024


def _wake(waiter: Waiter) -> bool:
    """Resolve a waiting receiver's future; False when it is done already or its loop has closed."""
    if waiter.done() or waiter.get_loop().is_closed():
        return False
    waiter.set_result(None)
    return True


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
        self.wake_one()

    def wake_one(self) -> None:
        while self.waiters:
            if _wake(self.waiters.popleft()):
                return

    def forget_waiter(self, waiter: Waiter) -> None:
        with contextlib.suppress(ValueError):  # already woken
            self.waiters.remove(waiter)
        if self.messages:  # a wake-up it may have had goes to the next receiver
            self.wake_one()


class ProcessReaderRedisChannelLayer(RedisChannelLayer):
    """See the module docstring."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._inboxes: dict[str, _Inbox] = {}
        self._reading = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # Receivers waiting, oldest first, any of which may be asked to read next (done ones are skipped).
        self._next_readers: deque[Waiter] = deque()
        self._compact_at = MIN_COMPACT_AT
        self._next_sweep = 0.0

    async def receive(self, channel: str) -> Message:
        if "!" not in channel:
            return await super().receive(channel)
        assert self.require_valid_channel_name(channel)
        process_channel = self.non_local_name(channel)
        assert process_channel.endswith(self.client_prefix + "!"), "Wrong client prefix"
        loop = self._enter(asyncio.get_running_loop())
        while True:
            # A cancellation swallowed on its way (redis-py, sync_to_async) must not send us round again:
            # a test loop's teardown would wait for ever on this receive (`stop_if_cancelled`).
            stop_if_cancelled()
            inbox = self._inbox(channel, time.monotonic())
            if inbox.messages:
                message = inbox.messages.popleft()
                inbox.touched = time.monotonic()
                self._forget_if_idle(channel, inbox)
                return dict(message)
            if not self._reading:
                try:
                    await self._read(process_channel, inbox)
                except BaseException:
                    self._forget_if_idle(channel, inbox)
                    raise
                continue
            waiter = loop.create_future()
            inbox.waiters.append(waiter)
            self._queue_next_reader(waiter)
            try:
                await waiter  # its inbox has a message, or it is its turn to read
            except BaseException:
                inbox.forget_waiter(waiter)
                self._forget_if_idle(channel, inbox)
                if not self._reading:
                    self._hand_reading_on()  # a turn it may have been given
                raise
            with contextlib.suppress(ValueError):  # woken for its turn, not by its inbox
                inbox.waiters.remove(waiter)

    async def flush(self) -> None:
        for inbox in self._inboxes.values():
            inbox.messages.clear()
        await super().flush()

    # Reading

    def _enter(self, loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed():
                raise RuntimeError("Two event loops are trying to receive() on one channel layer at once!")
            # What the closed loop left is void: its reader and waiters are gone, and channels_redis's
            # per-key locks belong to it (one held by a cleaner it never finished would stay locked).
            self._loop, self._reading = loop, False
            self._next_readers.clear()
            self.receive_clean_locks = ChannelLock()
        return loop

    async def _read(self, process_channel: str, mine: _Inbox) -> None:
        """Read one message off Redis for the whole process; another receiver reads next."""
        self._reading = True
        try:
            channels, message = await self.receive_single(process_channel)
        except BaseException:
            self._reading = False
            self._hand_reading_on()
            raise
        self._reading = False
        now = time.monotonic()
        for channel in [channels] if isinstance(channels, str) else channels:
            self._inbox(channel, now).put(message, now)
        if now >= self._next_sweep:
            self._sweep(now)
        if mine.messages:  # off to handle it: someone else reads meanwhile
            self._hand_reading_on()

    async def _brpop_with_clean(self, index, channel, timeout):
        # channels_redis's `receive_single` goes round until a message comes; a cancellation swallowed in
        # a round (redis-py's own timeout turns one into a blocking pop that answers nothing) would send
        # it round for ever, every `brpop_timeout`, and a closing loop would wait on it for ever.
        stop_if_cancelled()
        return await super()._brpop_with_clean(index, channel, timeout)

    def _queue_next_reader(self, waiter: Waiter) -> None:
        self._next_readers.append(waiter)
        if len(self._next_readers) > self._compact_at:  # those woken by their inbox, left behind
            self._next_readers = deque(w for w in self._next_readers if not w.done())
            self._compact_at = max(MIN_COMPACT_AT, 2 * len(self._next_readers))

    def _hand_reading_on(self) -> None:
        while self._next_readers:
            if _wake(self._next_readers.popleft()):
                return

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
