"""The in-process channel layer: channels' in-memory semantics, at O(recipients) per message."""

import asyncio
import contextlib
import threading

import pytest
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer

from spaces_site import channel_layer
from spaces_site.channel_layer import LocalChannelLayer


async def receive(layer: LocalChannelLayer, channel: str, timeout: float = 2) -> dict:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def assert_nothing_arrives(layer: LocalChannelLayer, channel: str, seconds: float = 0.1) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(channel), seconds)


async def started_receive(layer: LocalChannelLayer, channel: str) -> asyncio.Task:
    """A receive on `channel` that is already waiting."""
    task = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0)
    return task


def assert_idle(layer: LocalChannelLayer) -> None:
    """Nothing kept: no inbox, group or membership left over."""
    assert layer._inboxes == {}
    assert layer._groups == {}
    assert layer._memberships == {}


# Channels


async def test_a_sent_message_is_received_as_it_was_sent():
    layer = LocalChannelLayer()

    await layer.send("space.1", {"type": "hello", "nested": {"a": [1, 2]}})

    assert await receive(layer, "space.1") == {"type": "hello", "nested": {"a": [1, 2]}}
    assert_idle(layer)


async def test_a_receive_that_waits_gets_the_message_sent_later():
    layer = LocalChannelLayer()
    waiting = await started_receive(layer, "space.1")

    await layer.send("space.1", {"type": "late"})

    assert await asyncio.wait_for(waiting, 2) == {"type": "late"}
    assert_idle(layer)


async def test_messages_arrive_in_the_order_they_were_sent():
    layer = LocalChannelLayer()
    for number in range(5):
        await layer.send("space.1", {"type": "count", "n": number})

    received = [(await receive(layer, "space.1"))["n"] for _ in range(5)]

    assert received == [0, 1, 2, 3, 4]


async def test_a_full_channel_refuses_a_send_with_channel_full():
    layer = LocalChannelLayer(capacity=3)
    for number in range(3):
        await layer.send("space.1", {"type": "count", "n": number})

    with pytest.raises(ChannelFull):
        await layer.send("space.1", {"type": "count", "n": 3})

    # the three already queued are still there, and room is made by reading
    assert (await receive(layer, "space.1"))["n"] == 0
    await layer.send("space.1", {"type": "count", "n": 3})


async def test_channel_capacity_patterns_override_the_default_capacity():
    layer = LocalChannelLayer(capacity=5, channel_capacity={"media.*": 1})
    await layer.send("media.worker", {"type": "one"})
    for _ in range(5):
        await layer.send("space.1", {"type": "one"})

    with pytest.raises(ChannelFull):
        await layer.send("media.worker", {"type": "two"})
    with pytest.raises(ChannelFull):
        await layer.send("space.1", {"type": "six"})


async def test_new_channel_gives_distinct_process_local_names_that_work():
    layer = LocalChannelLayer()

    first, second = await layer.new_channel(), await layer.new_channel(prefix="socket")
    await layer.send(first, {"type": "to.first"})
    await layer.send(second, {"type": "to.second"})

    assert first != second
    assert "!" in first and "!" in second
    assert second.startswith("socket")
    assert await receive(layer, second) == {"type": "to.second"}
    assert await receive(layer, first) == {"type": "to.first"}


async def test_each_message_goes_to_one_of_several_waiting_receivers():
    layer = LocalChannelLayer()
    first = await started_receive(layer, "space.1")
    second = await started_receive(layer, "space.1")

    await layer.send("space.1", {"type": "one"})
    done, pending = await asyncio.wait({first, second}, timeout=2, return_when=asyncio.FIRST_COMPLETED)
    await layer.send("space.1", {"type": "two"})
    rest, _ = await asyncio.wait(pending, timeout=2)

    assert len(done) == 1 and len(rest) == 1
    assert {task.result()["type"] for task in done | rest} == {"one", "two"}
    assert_idle(layer)


async def test_messages_must_be_dicts():
    layer = LocalChannelLayer()

    with pytest.raises(AssertionError):
        await layer.send("space.1", ["not", "a", "dict"])
    with pytest.raises(AssertionError):
        await layer.group_send("space", "not a dict")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda layer: layer.send("has space", {"type": "x"}), id="send-bad-characters"),
        pytest.param(lambda layer: layer.send("x" * 100, {"type": "x"}), id="send-too-long"),
        pytest.param(lambda layer: layer.send(42, {"type": "x"}), id="send-not-text"),
        pytest.param(lambda layer: layer.receive("what?"), id="receive"),
        pytest.param(lambda layer: layer.group_add("bad!group", "space.1"), id="group_add-group"),
        pytest.param(lambda layer: layer.group_add("space", "bad channel"), id="group_add-channel"),
        pytest.param(lambda layer: layer.group_discard("bad group", "space.1"), id="group_discard-group"),
        pytest.param(lambda layer: layer.group_discard("space", "bad channel"), id="group_discard-channel"),
        pytest.param(lambda layer: layer.group_send("bad group", {"type": "x"}), id="group_send"),
    ],
)
async def test_invalid_channel_and_group_names_raise_type_error(call):
    layer = LocalChannelLayer()

    with pytest.raises(TypeError):
        await call(layer)

    assert_idle(layer)


# Groups


async def test_a_group_send_reaches_the_members_only_until_they_leave():
    layer = LocalChannelLayer()
    await layer.group_add("space", "socket.a")
    await layer.group_add("space", "socket.b")
    await layer.group_add("other", "socket.c")

    await layer.group_send("space", {"type": "event", "n": 1})
    await layer.group_discard("space", "socket.b")
    await layer.group_send("space", {"type": "event", "n": 2})

    assert (await receive(layer, "socket.a"))["n"] == 1
    assert (await receive(layer, "socket.a"))["n"] == 2
    assert (await receive(layer, "socket.b"))["n"] == 1
    await assert_nothing_arrives(layer, "socket.b")
    await assert_nothing_arrives(layer, "socket.c")


async def test_a_group_send_to_an_unknown_group_does_nothing():
    layer = LocalChannelLayer()

    await layer.group_send("nobody", {"type": "event"})
    await layer.group_discard("nobody", "socket.a")

    assert_idle(layer)


async def test_a_group_send_skips_a_full_member_silently():
    layer = LocalChannelLayer(capacity=1)
    await layer.group_add("space", "socket.full")
    await layer.group_add("space", "socket.free")
    await layer.send("socket.full", {"type": "already.there"})

    await layer.group_send("space", {"type": "event"})

    assert await receive(layer, "socket.full") == {"type": "already.there"}
    await assert_nothing_arrives(layer, "socket.full")
    assert await receive(layer, "socket.free") == {"type": "event"}


async def test_leaving_every_group_leaves_nothing_behind():
    layer = LocalChannelLayer()
    await layer.group_add("space", "socket.a")
    await layer.group_add("moderators", "socket.a")

    await layer.group_discard("space", "socket.a")
    await layer.group_discard("moderators", "socket.a")

    assert_idle(layer)


# Copies


async def test_the_sender_may_change_its_message_after_sending():
    layer = LocalChannelLayer()
    await layer.group_add("space", "socket.a")
    message = {"type": "event", "people": [{"name": "ana"}]}

    await layer.send("socket.b", message)
    await layer.group_send("space", message)
    message["people"][0]["name"] = "changed"
    message["type"] = "changed"

    for channel in ("socket.a", "socket.b"):
        assert await receive(layer, channel) == {"type": "event", "people": [{"name": "ana"}]}


async def test_a_recipient_changing_its_message_leaves_another_recipients_copy_alone():
    layer = LocalChannelLayer()
    for channel in ("socket.a", "socket.b"):
        await layer.group_add("space", channel)
    await layer.group_send("space", {"type": "event", "text": "hi", "extra": 1})

    first = await receive(layer, "socket.a")
    first["type"] = "rewritten"
    first["added"] = True
    del first["extra"]
    second = await receive(layer, "socket.b")

    assert second == {"type": "event", "text": "hi", "extra": 1}


# Work proportional to the recipients


class LookupSpy(dict):
    """The layer's inboxes, recording each key looked up and each walk over all of them."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.looked_up: list[str] = []
        self.walks = 0

    def get(self, key, default=None):
        self.looked_up.append(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.looked_up.append(key)
        return super().__getitem__(key)

    def __contains__(self, key) -> bool:
        self.looked_up.append(key)
        return super().__contains__(key)

    def __iter__(self):
        self.walks += 1
        return super().__iter__()

    def items(self):
        self.walks += 1
        return super().items()

    def keys(self):
        self.walks += 1
        return super().keys()

    def values(self):
        self.walks += 1
        return super().values()


async def test_a_broadcast_to_1000_members_touches_only_their_inboxes():
    # given: 1,000 members of a space, and 1,000 other channels each holding an unread message
    layer = LocalChannelLayer()
    members = [await layer.new_channel() for _ in range(1000)]
    bystanders = [await layer.new_channel() for _ in range(1000)]
    for channel in members:
        await layer.group_add("space.1", channel)
    for channel in bystanders:
        await layer.send(channel, {"type": "unread"})
    spy = layer._inboxes = LookupSpy(layer._inboxes)

    # when: one broadcast
    await layer.group_send("space.1", {"type": "event"})

    # then: it looked up each member's inbox, never a bystander's, and walked none
    assert set(spy.looked_up) == set(members)
    assert len(spy.looked_up) <= 2 * len(members)
    assert spy.walks == 0

    # and each member's receive looks at its own inbox only
    for channel in members:
        spy.looked_up.clear()
        assert await layer.receive(channel) == {"type": "event"}
        assert set(spy.looked_up) == {channel}
    assert spy.walks == 0

    # the members' inboxes are gone once read; the bystanders' are as they were
    assert set(dict.keys(spy)) == set(bystanders)
    assert all(len(dict.__getitem__(spy, channel).messages) == 1 for channel in bystanders)


# Expiry


async def test_an_expired_message_is_never_received():
    layer = LocalChannelLayer(expiry=0.05)
    await layer.send("space.1", {"type": "stale"})

    await asyncio.sleep(0.1)

    await assert_nothing_arrives(layer, "space.1")
    await layer.send("space.1", {"type": "fresh"})
    assert await receive(layer, "space.1") == {"type": "fresh"}


async def test_only_the_expired_messages_are_dropped():
    layer = LocalChannelLayer(expiry=0.2)
    await layer.send("space.1", {"type": "old"})
    await asyncio.sleep(0.25)
    await layer.send("space.1", {"type": "new"})

    assert await receive(layer, "space.1") == {"type": "new"}
    await assert_nothing_arrives(layer, "space.1")


async def test_an_expired_message_frees_room_for_a_send():
    layer = LocalChannelLayer(expiry=0.05, capacity=1)
    await layer.send("space.1", {"type": "old"})
    await asyncio.sleep(0.1)

    await layer.send("space.1", {"type": "new"})

    assert await receive(layer, "space.1") == {"type": "new"}


async def test_a_channel_whose_message_expired_leaves_its_groups():
    # given: two members; one reads its event, the other lets it expire
    layer = LocalChannelLayer(expiry=0.05)
    await layer.group_add("space", "socket.reads")
    await layer.group_add("space", "socket.sleeps")
    await layer.group_send("space", {"type": "event", "n": 1})
    assert (await receive(layer, "socket.reads"))["n"] == 1
    await asyncio.sleep(0.1)

    # when
    await layer.group_send("space", {"type": "event", "n": 2})

    # then: the sleeper was taken out of the group (as channels' in-memory layer does)
    assert (await receive(layer, "socket.reads"))["n"] == 2
    await assert_nothing_arrives(layer, "socket.sleeps")
    assert layer._memberships == {"socket.reads": {"space"}}


async def test_a_group_membership_expires_unless_renewed():
    layer = LocalChannelLayer(group_expiry=0.1)
    await layer.group_add("space", "socket.gone")
    await layer.group_add("space", "socket.renews")
    await asyncio.sleep(0.15)
    await layer.group_add("space", "socket.renews")

    await layer.group_send("space", {"type": "event"})

    assert await receive(layer, "socket.renews") == {"type": "event"}
    await assert_nothing_arrives(layer, "socket.gone")
    assert layer._memberships == {"socket.renews": {"space"}}


async def test_the_sweep_frees_channels_nobody_reads(monkeypatch):
    # given: sweeps as often as messages expire, and a channel that is never read
    monkeypatch.setattr(channel_layer, "MIN_SWEEP_INTERVAL_S", 0.05)
    layer = LocalChannelLayer(expiry=0.05, group_expiry=0.05)
    await layer.send("socket.dead", {"type": "never.read"})
    await layer.group_add("unused", "socket.dead")
    await asyncio.sleep(0.1)

    # when: anything else uses the layer
    await layer.send("socket.alive", {"type": "read"})

    # then
    assert set(layer._inboxes) == {"socket.alive"}
    assert layer._groups == {}
    assert layer._memberships == {}


# Flush, close, cancellation


async def test_flush_forgets_every_message_and_group():
    layer = LocalChannelLayer()
    await layer.send("space.1", {"type": "queued"})
    await layer.group_add("space", "socket.a")

    await layer.flush()
    await layer.group_send("space", {"type": "event"})

    await assert_nothing_arrives(layer, "space.1")
    await assert_nothing_arrives(layer, "socket.a")
    assert_idle(layer)


async def test_a_receiver_waiting_through_a_flush_still_gets_the_next_message():
    layer = LocalChannelLayer()
    waiting = await started_receive(layer, "space.1")

    await layer.flush()
    await layer.send("space.1", {"type": "after.flush"})

    assert await asyncio.wait_for(waiting, 2) == {"type": "after.flush"}


async def test_close_keeps_the_layer_usable():
    layer = LocalChannelLayer()

    await layer.close()
    await layer.send("space.1", {"type": "after.close"})

    assert await receive(layer, "space.1") == {"type": "after.close"}
    assert layer.extensions == ["groups", "flush"]


async def test_a_cancelled_receive_leaves_nothing_behind():
    layer = LocalChannelLayer()
    waiting = await started_receive(layer, "space.1")

    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting

    assert waiting.cancelled()
    assert_idle(layer)
    await assert_nothing_arrives(layer, "space.1")
    assert_idle(layer)


async def test_a_receiver_cancelled_as_its_message_came_leaves_the_message_to_the_next():
    # given: two receivers waiting; a send wakes the first
    layer = LocalChannelLayer()
    first = await started_receive(layer, "space.1")
    second = await started_receive(layer, "space.1")
    await layer.send("space.1", {"type": "event"})

    # when: the first is cancelled before it could run
    first.cancel()

    # then: the second gets the message
    assert await asyncio.wait_for(second, 2) == {"type": "event"}
    assert first.cancelled()
    assert_idle(layer)


# Several event loops


def test_it_works_from_sync_code_through_async_to_sync():
    layer = LocalChannelLayer()

    async_to_sync(layer.group_add)("space", "socket.a")
    async_to_sync(layer.group_send)("space", {"type": "from.sync"})
    async_to_sync(layer.send)("socket.a", {"type": "direct"})

    assert async_to_sync(layer.receive)("socket.a") == {"type": "from.sync"}
    assert asyncio.run(layer.receive("socket.a")) == {"type": "direct"}


def test_a_receiver_waiting_in_another_threads_loop_is_woken_by_a_send():
    # given: a receive waiting in an event loop of its own thread, with a long timeout
    layer = LocalChannelLayer()
    received: list[dict] = []
    waiting = threading.Event()

    async def receive_there() -> None:
        task = await started_receive(layer, "space.1")
        waiting.set()
        received.append(await asyncio.wait_for(task, 30))

    thread = threading.Thread(target=asyncio.run, args=(receive_there(),))
    thread.start()
    assert waiting.wait(5)

    # when: a send from this thread's loop
    asyncio.run(layer.send("space.1", {"type": "across"}))

    # then: that loop wakes now, not at its timeout
    thread.join(5)
    assert not thread.is_alive()
    assert received == [{"type": "across"}]


def test_a_receiver_whose_loop_closed_is_passed_over():
    # given: a receive left waiting in a loop that was then closed
    layer = LocalChannelLayer()
    loop = asyncio.new_event_loop()
    left = loop.create_task(layer.receive("space.1"))
    left._log_destroy_pending = False  # it can never finish: no "Task was destroyed" log at exit
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()

    # when
    async def send_then_receive() -> dict:
        await layer.send("space.1", {"type": "kept"})
        return await receive(layer, "space.1")

    # then: the message waits for a receiver that can take it
    assert asyncio.run(send_then_receive()) == {"type": "kept"}
    assert not left.done()


# Settings


def test_the_channel_layers_setting_builds_it_with_its_config(settings):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "spaces_site.channel_layer.LocalChannelLayer", "CONFIG": {"capacity": 7, "expiry": 5}}
    }

    layer = get_channel_layer()

    assert isinstance(layer, LocalChannelLayer)
    assert (layer.capacity, layer.expiry, layer.group_expiry) == (7, 5, 86400)
