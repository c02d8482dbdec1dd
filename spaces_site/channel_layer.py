"""An in-process channel layer whose broadcasts cost O(recipients).

Without Redis the site used channels' `InMemoryChannelLayer`. Its `receive`
and `group_send` walk every channel and group to drop expired messages, so
one event sent to a space of N open sockets costs O(N²), and it deep-copies
the message once per recipient. `LocalChannelLayer` keeps its semantics and
drops that cost:

- each channel has its own inbox, made on first use and removed once it is
  empty with nobody waiting on it; `receive` looks at its own channel only;
- `group_send` looks the group up and puts one message into each member's
  inbox; full inboxes are skipped, as channels does;
- a message is deep-copied once per `send` or `group_send`, so the sender may
  change its dict afterwards; each receiver gets a shallow copy of that one
  copy: it may change the top level, but must not change nested values;
- `capacity` and `channel_capacity` bound each inbox (`ChannelFull` on
  `send`); a message older than `expiry` is dropped when its inbox is next
  used, and, as in channels, its channel then leaves all its groups; a group
  membership older than `group_expiry` ends when the group is next sent to;
  a sweep of every inbox and group, at most once per `expiry` (1 s at least),
  frees what nothing uses any more;
- `flush` forgets every message and group; receivers already waiting keep
  waiting for new messages.

Several event loops may share one layer (tests, `async_to_sync`): a receiver
is woken in its own loop, thread-safely, and a receiver whose loop has
closed is passed over. The layer holds the messages themselves, never hands
them to a waiting future, so a receiver cancelled on its way out loses
nothing: the message stays for the next one.
"""

import asyncio
import contextlib
import copy
import secrets
import threading
import time
from collections import deque

from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer

# The sweep of every inbox and group runs at most this often, however short `expiry` is.
MIN_SWEEP_INTERVAL_S = 1.0

Message = dict
Waiter = asyncio.Future[None]


class _Inbox:
    """One channel's undelivered messages, oldest first, and the receivers waiting for one."""

    __slots__ = ("capacity", "messages", "waiters")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.messages: deque[tuple[float, Message]] = deque()
        self.waiters: deque[Waiter] = deque()

    def idle(self) -> bool:
        return not self.messages and not self.waiters

    def drop_expired(self, now: float) -> bool:
        """Drop the messages whose deadline has passed; True when there were any."""
        dropped = False
        while self.messages and self.messages[0][0] < now:
            self.messages.popleft()
            dropped = True
        return dropped

    def offer(self, message: Message, deadline: float, loop: asyncio.AbstractEventLoop) -> bool:
        """Queue the message and wake one receiver; False when the inbox is full (capacity 0: unbounded)."""
        if 0 < self.capacity <= len(self.messages):
            return False
        self.messages.append((deadline, message))
        self.wake_one(loop)
        return True

    def take(self) -> Message | None:
        if not self.messages:
            return None
        return self.messages.popleft()[1]

    def wake_one(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake the first waiter that can still run; `loop` is the caller's."""
        while self.waiters:
            if _wake(self.waiters.popleft(), loop):
                return

    def forget_waiter(self, waiter: Waiter) -> None:
        with contextlib.suppress(ValueError):  # already woken
            self.waiters.remove(waiter)


def _wake(waiter: Waiter, loop: asyncio.AbstractEventLoop) -> bool:
    """Resolve a receiver's future in its own loop; False when it was cancelled or its loop is gone."""
    if waiter.done():
        return False
    owner = waiter.get_loop()
    if owner is loop:
        waiter.set_result(None)
        return True
    try:
        owner.call_soon_threadsafe(_resolve, waiter)
    except RuntimeError:  # that loop is closed
        return False
    return True


def _resolve(waiter: Waiter) -> None:
    if not waiter.done():
        waiter.set_result(None)


class LocalChannelLayer(BaseChannelLayer):
    """Channels' in-memory layer semantics at O(recipients) per message; see the module docstring."""

    extensions = ["groups", "flush"]

    def __init__(
        self,
        expiry: float = 60,
        group_expiry: float = 86400,
        capacity: int = 100,
        channel_capacity: dict | None = None,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity)
        # The base class stores the dict as given, but `get_capacity` reads compiled patterns.
        self.channel_capacity = self.compile_capacities(channel_capacity or {})
        self.group_expiry = group_expiry
        self._inboxes: dict[str, _Inbox] = {}
        self._groups: dict[str, dict[str, float]] = {}  # group -> {channel: when it joined}
        self._memberships: dict[str, set[str]] = {}  # channel -> its groups
        # Held for dict and deque updates only, never across an await: loops in other threads may share the layer.
        self._lock = threading.Lock()
        self._next_sweep = time.monotonic() + self._sweep_interval()

    # Channel layer API

    async def send(self, channel: str, message: Message) -> None:
        """Put a message on a channel; `ChannelFull` when it holds `capacity` messages already."""
        assert isinstance(message, dict), "message is not a dict"
        assert "__asgi_channel__" not in message
        self.require_valid_channel_name(channel)
        copied = copy.deepcopy(message)
        loop = asyncio.get_running_loop()
        with self._lock:
            now = self._tick()
            inbox = self._inbox(channel)
            self._expire(channel, inbox, now)
            if not inbox.offer(copied, now + self.expiry, loop):
                raise ChannelFull(channel)

    async def receive(self, channel: str) -> Message:
        """The channel's oldest message, waiting for one if need be; one waiter of several gets it."""
        self.require_valid_channel_name(channel)
        loop = asyncio.get_running_loop()
        while True:
            with self._lock:
                message, inbox, waiter = self._take_or_wait(channel, loop)
            if message is not None:
                return message
            try:
                await waiter
            except GeneratorExit:
                raise  # finalised with its loop gone: the stale waiter is passed over later
            except BaseException:
                with self._lock:
                    self._abandon(channel, inbox, waiter, loop)
                raise

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A fresh process-local channel name."""
        return f"{prefix}.local!{secrets.token_hex(8)}"

    async def flush(self) -> None:
        with self._lock:
            self._groups.clear()
            self._memberships.clear()
            for channel, inbox in list(self._inboxes.items()):
                inbox.messages.clear()
                self._forget_if_idle(channel, inbox)

    async def close(self) -> None:
        """Nothing to release: everything lives in this process."""

    # Groups extension

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        with self._lock:
            self._groups.setdefault(group, {})[channel] = time.monotonic()
            self._memberships.setdefault(channel, set()).add(group)

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_channel_name(channel)
        self.require_valid_group_name(group)
        with self._lock:
            self._discard(group, channel)

    async def group_send(self, group: str, message: Message) -> None:
        """Put a message on every member's channel; members whose channel is full are skipped."""
        assert isinstance(message, dict), "message is not a dict"
        assert "__asgi_channel__" not in message
        self.require_valid_group_name(group)
        if not self._groups.get(group):
            return
        copied = copy.deepcopy(message)
        loop = asyncio.get_running_loop()
        with self._lock:
            now = self._tick()
            members = self._groups.get(group, {})
            joined_since, deadline = now - self.group_expiry, now + self.expiry
            for channel, joined in list(members.items()):
                if joined < joined_since:
                    self._discard(group, channel)
                    continue
                inbox = self._inbox(channel)
                if self._expire(channel, inbox, now):
                    self._forget_if_idle(channel, inbox)  # it has left the group
                else:
                    inbox.offer(copied, deadline, loop)

    # Under the lock

    def _inbox(self, channel: str) -> _Inbox:
        inbox = self._inboxes.get(channel)
        if inbox is None:
            inbox = self._inboxes[channel] = _Inbox(self.get_capacity(channel))
        return inbox

    def _take_or_wait(
        self, channel: str, loop: asyncio.AbstractEventLoop
    ) -> tuple[Message | None, _Inbox, Waiter | None]:
        """The channel's next message (a shallow copy), or a new waiter queued on its inbox."""
        now = self._tick()
        inbox = self._inbox(channel)
        self._expire(channel, inbox, now)
        message = inbox.take()
        if message is not None:
            self._forget_if_idle(channel, inbox)
            return dict(message), inbox, None
        waiter = loop.create_future()
        inbox.waiters.append(waiter)
        return None, inbox, waiter

    def _abandon(self, channel: str, inbox: _Inbox, waiter: Waiter, loop: asyncio.AbstractEventLoop) -> None:
        """A waiting receiver stopped: forget it, and hand a wake-up it may have had to the next one."""
        inbox.forget_waiter(waiter)
        if inbox.messages:
            inbox.wake_one(loop)
        self._forget_if_idle(channel, inbox)

    def _forget_if_idle(self, channel: str, inbox: _Inbox) -> None:
        if inbox.idle() and self._inboxes.get(channel) is inbox:
            del self._inboxes[channel]

    def _expire(self, channel: str, inbox: _Inbox, now: float) -> bool:
        """Drop the inbox's expired messages; a channel that had any leaves its groups (as in channels)."""
        if not inbox.drop_expired(now):
            return False
        self._leave_groups(channel)
        return True

    def _discard(self, group: str, channel: str) -> None:
        members = self._groups.get(group)
        if members is not None:
            members.pop(channel, None)
            if not members:
                del self._groups[group]
        groups = self._memberships.get(channel)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del self._memberships[channel]

    def _leave_groups(self, channel: str) -> None:
        for group in list(self._memberships.get(channel, ())):
            self._discard(group, channel)

    def _tick(self) -> float:
        """The time now, after the sweep if one is due."""
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self._sweep_interval()
            self._sweep(now)
        return now

    def _sweep(self, now: float) -> None:
        """Drop expired messages and memberships everywhere, and the inboxes left idle."""
        for channel, inbox in list(self._inboxes.items()):
            self._expire(channel, inbox, now)
            self._forget_if_idle(channel, inbox)
        joined_since = now - self.group_expiry
        for group, members in list(self._groups.items()):
            for channel in [channel for channel, joined in members.items() if joined < joined_since]:
                self._discard(group, channel)

    def _sweep_interval(self) -> float:
        return max(self.expiry, MIN_SWEEP_INTERVAL_S)
