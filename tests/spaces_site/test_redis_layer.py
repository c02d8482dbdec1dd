"""The Redis layer with one reader per process: channels_redis's semantics, one Redis read per message."""

import asyncio
import contextlib
import uuid

import pytest
import redis.exceptions
from asgiref.sync import async_to_sync
from django.conf import settings

from spaces_site.redis_layer import ProcessReaderRedisChannelLayer


def new_layer(**config) -> ProcessReaderRedisChannelLayer:
    """A layer of its own on the site's Redis, configured as the site's, under a prefix nothing else uses."""
    hosts = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]
    return ProcessReaderRedisChannelLayer(hosts=hosts, prefix=f"test-{uuid.uuid4().hex}", **config)


async def receive(layer, channel: str, timeout: float = 5) -> dict:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def started_receive(layer, channel: str) -> asyncio.Task:
    task = asyncio.ensure_future(layer.receive(channel))
    await asyncio.sleep(0.05)  # past its first read of Redis
    return task


@pytest.fixture
async def layer():
    layer = new_layer()
    yield layer
    await layer.flush()
    await layer.close_pools()


@pytest.mark.redis
async def test_a_group_message_reaches_every_channel_of_the_process_once(layer):
    channels = [await layer.new_channel() for _ in range(300)]
    for channel in channels:
        await layer.group_add("space.1", channel)
    waiting = [asyncio.ensure_future(layer.receive(channel)) for channel in channels[:150]]
    await asyncio.sleep(0.1)

    await layer.group_send("space.1", {"type": "space.event", "text": "hello"})

    # Those already waiting and those that ask later get it, once each.
    received = await asyncio.wait_for(asyncio.gather(*waiting), 5)
    received += [await receive(layer, channel) for channel in channels[150:]]
    assert received == [{"type": "space.event", "text": "hello"}] * 300
    received[0]["text"] = "changed"  # each receiver has its own copy
    assert received[1]["text"] == "hello"
    for channel in channels[:3]:
        with pytest.raises(TimeoutError):
            await receive(layer, channel, timeout=0.2)


@pytest.mark.redis
async def test_messages_of_one_channel_arrive_in_order(layer):
    channel = await layer.new_channel()

    for n in range(20):
        await layer.send(channel, {"type": "n", "n": n})

    assert [(await receive(layer, channel))["n"] for _ in range(20)] == list(range(20))


@pytest.mark.redis
async def test_a_receive_cancelled_while_it_reads_for_everyone_loses_nothing(layer):
    reading_channel, other_channel = await layer.new_channel(), await layer.new_channel()
    reading = await started_receive(layer, reading_channel)  # the first in reads Redis for both
    other = await started_receive(layer, other_channel)
    assert layer._reading

    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    await layer.send(other_channel, {"type": "for the other"})
    await layer.send(reading_channel, {"type": "after"})

    assert await asyncio.wait_for(other, 5) == {"type": "for the other"}  # it took the reading over
    assert await receive(layer, reading_channel) == {"type": "after"}


@pytest.mark.redis
async def test_one_receiver_cancelled_among_several_leaves_the_others_served(layer):
    first, second = await layer.new_channel(), await layer.new_channel()
    leaving = await started_receive(layer, first)
    staying = await started_receive(layer, second)

    leaving.cancel()
    await layer.send(second, {"type": "for second"})

    assert await asyncio.wait_for(staying, 5) == {"type": "for second"}


@pytest.mark.redis
async def test_named_channels_are_read_as_channels_redis_reads_them(layer):
    await layer.send("media.worker", {"type": "offer"})

    assert await receive(layer, "media.worker") == {"type": "offer"}


@pytest.mark.redis
def test_receivers_on_loops_one_after_another_are_served():
    layer = new_layer()
    channel = async_to_sync(layer.new_channel)()

    async def receive_and_settle():
        message = await layer.receive(channel)
        await asyncio.sleep(0.1)  # channels_redis clears its backup of the message in a task of its own
        return message

    for n in range(3):
        async_to_sync(layer.send)(channel, {"type": "n", "n": n})
        assert async_to_sync(receive_and_settle)() == {"type": "n", "n": n}
    async_to_sync(layer.flush)()


@pytest.mark.redis
async def test_an_inbox_nobody_reads_is_dropped_after_expiry():
    layer = new_layer(expiry=1)
    gone, alive = await layer.new_channel(), await layer.new_channel()
    await layer.send(gone, {"type": "never read"})
    await layer.send(alive, {"type": "first"})
    assert await receive(layer, alive) == {"type": "first"}
    assert gone in layer._inboxes  # read off Redis with the other, kept for a receiver to come

    await asyncio.sleep(1.2)
    await layer.send(alive, {"type": "second"})
    assert await receive(layer, alive) == {"type": "second"}

    assert gone not in layer._inboxes
    await layer.flush()
    await layer.close_pools()


async def test_a_failed_read_is_raised_in_every_waiting_receiver_in_turn():
    layer = ProcessReaderRedisChannelLayer(hosts=["redis://127.0.0.1:1"])  # nothing listens there
    channels = [await layer.new_channel() for _ in range(3)]

    results = await asyncio.wait_for(
        asyncio.gather(*(layer.receive(channel) for channel in channels), return_exceptions=True), 10
    )

    assert all(isinstance(result, redis.exceptions.ConnectionError) for result in results)
    assert not layer._reading
    assert layer._inboxes == {}


@pytest.mark.redis
async def test_a_receive_whose_read_swallowed_its_cancellation_stops_instead_of_reading_again(layer, monkeypatch):
    # given: a Redis read that, cancelled, returns normally instead (as a cancellation lost in redis-py does)
    reading = asyncio.Event()

    async def swallowing_read(process_channel):
        reading.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        return (process_channel + "someone-else", {"type": "other"})

    monkeypatch.setattr(layer, "receive_single", swallowing_read)
    channel = await layer.new_channel()
    task = asyncio.ensure_future(layer.receive(channel))
    await asyncio.wait_for(reading.wait(), 2)
    reading.clear()

    # when: it is cancelled
    task.cancel()

    # then: it ends (a test loop's teardown waited for ever on it), without reading Redis again
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert not reading.is_set()


class SwallowingRedis:
    """A connection whose blocking pop, cancelled, answers "nothing came" (as redis-py's own timeout can)."""

    def __init__(self) -> None:
        self.pops = 0

    async def eval(self, *args) -> None:
        return None

    async def bzpopmin(self, channel, timeout):
        self.pops += 1
        if self.pops > 1:  # only the first swallows, so that a receive going round can still be stopped
            await asyncio.sleep(timeout)
            return None
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(timeout)
        return None


async def test_a_cancellation_swallowed_by_the_redis_client_still_ends_the_receive():
    # given: a layer whose Redis connection swallows a cancellation in its blocking pop
    layer = ProcessReaderRedisChannelLayer(hosts=[{"address": "redis://127.0.0.1:1"}], prefix="swallow")
    fake = SwallowingRedis()
    layer.connection = lambda index: fake
    task = asyncio.ensure_future(layer.receive(f"specific.{layer.client_prefix}!one"))
    await asyncio.sleep(0.05)

    # when: the receive is cancelled mid-pop
    task.cancel()

    # then: it ends, instead of popping again every brpop_timeout for ever
    await asyncio.wait([task], timeout=2)
    assert task.cancelled()
    assert fake.pops == 1
