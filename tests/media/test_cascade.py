"""The cascade's parts on their own: the plain RTP between workers, and placement over heartbeats."""

import asyncio
import contextlib
import time

import pytest
from django.core.cache import cache

from media import placement, signalling
from media.cascade import open_relay_socket, pack, same_sender, unpack
from media.placement import Origin, WorkerLoad, listener_worker, room_origin
from media.watch import Placed, WorkerWatch


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def test_a_relay_packet_is_plain_rtp_naming_the_space_in_its_ssrc():
    data = pack(42, b"opus!", 65_535, 2**32 - 1)

    assert data[:2] == b"\x80\x6f" and len(data) == 12 + 5
    assert unpack(data) == (42, b"opus!", 65_535, 2**32 - 1)
    assert unpack(b"\x80\x00" + data[2:]) is None  # another payload type
    assert unpack(data[:12]) is None  # no payload


def test_only_the_origins_relay_address_is_trusted():
    assert same_sender(("127.0.0.1", 4000), ("127.0.0.1", 4000))
    assert not same_sender(("127.0.0.1", 4001), ("127.0.0.1", 4000))
    assert not same_sender(("10.0.0.9", 4000), ("10.0.0.8", 4000))
    assert same_sender(("10.0.0.9", 4000), ("0.0.0.0", 4000))
    assert not same_sender(("127.0.0.1", 4000), None)


class EdgeRoomStandIn:
    """What an edge room offers the relay: `relayed(payload, sequence_number, timestamp)`."""

    def __init__(self) -> None:
        self.packets: list[tuple[bytes, int, int]] = []

    def relayed(self, payload: bytes, sequence_number: int, timestamp: int) -> None:
        self.packets.append((payload, sequence_number, timestamp))


async def test_an_origins_relay_reaches_the_edge_room_once_per_packet():
    # given: an edge's relay socket that hands space 7's packets to its room, and an origin's socket
    room = EdgeRoomStandIn()
    edge = await open_relay_socket(lambda space_id, *packet: room.relayed(*packet[:3]), host="127.0.0.1")
    origin = await open_relay_socket(lambda *packet: None, host="127.0.0.1")
    send = origin.relay_to(7, edge.address)

    # when: the origin's room relays three listener packets
    for n in range(3):
        send(b"frame-%d" % n, 100 + n, 960 * n)

    # then: the edge's room gets each, as sent
    async with asyncio.timeout(2):
        while len(room.packets) < 3:
            await asyncio.sleep(0.01)
    assert room.packets == [(b"frame-0", 100, 0), (b"frame-1", 101, 960), (b"frame-2", 102, 1920)]
    assert origin.sent == 3 and edge.received == 3
    edge.close()
    origin.close()


def load(index: int, listeners: int = 0, capacity: int = 2, **rooms: str) -> WorkerLoad:
    return WorkerLoad(
        index=index,
        boot=f"boot-{index}",
        listeners=listeners,
        capacity=capacity,
        rooms={int(k.removeprefix("s")): v for k, v in rooms.items()},
    )


def test_a_listener_goes_to_the_least_loaded_worker_carrying_the_room():
    workers = {0: load(0, 1, s7="origin"), 1: load(1, 0, s7="edge"), 2: load(2, 0)}

    assert listener_worker(7, workers, Origin(0, "boot-0")).index == 1


def test_a_room_grows_onto_a_new_edge_when_its_workers_are_full():
    workers = {0: load(0, 2, s7="origin"), 1: load(1, 2, s7="edge"), 2: load(2, 1), 3: load(3, 0)}

    assert listener_worker(7, workers, Origin(0, "boot-0")).index == 3


def test_when_every_worker_is_full_a_listener_goes_to_the_least_loaded_carrying_the_room():
    workers = {0: load(0, 3, s7="origin"), 1: load(1, 2, s7="edge"), 2: load(2, 2)}

    assert listener_worker(7, workers, Origin(0, "boot-0")).index == 1


async def test_a_room_gets_one_origin_and_keeps_it_while_it_lives():
    workers = {0: load(0, 1), 1: load(1, 0)}

    first = await room_origin(7, workers)
    again = await room_origin(7, {0: load(0, 0), 1: load(1, 5)})

    assert first == again == Origin(1, "boot-1")
    assert await cache.aget(signalling.origin_key(7)) == {"index": 1, "boot": "boot-1"}


async def test_a_dead_origin_is_succeeded_once_whoever_notices():
    # given: space 7's origin is worker 0, which died (no heartbeat)
    await cache.aset(signalling.origin_key(7), {"index": 0, "boot": "boot-0"})
    alive = {1: load(1, 0), 2: load(2, 0)}

    # when: a web process and an edge (preferring itself) notice together
    first, second = await asyncio.gather(room_origin(7, alive), room_origin(7, alive, prefer=2))

    # then: both name the same successor, and it is recorded
    assert first == second
    assert first in (Origin(1, "boot-1"), Origin(2, "boot-2"))
    assert await cache.aget(signalling.origin_key(7)) == first.as_dict()


async def test_an_origin_whose_stage_moved_on_is_told_to_hand_over():
    await cache.aset(signalling.origin_key(7), {"index": 1, "boot": "boot-1"})

    lost = await placement.keep_origins(Origin(0, "boot-0"), [7, 8])

    assert lost == [7]
    assert await cache.aget(signalling.origin_key(8)) == {"index": 0, "boot": "boot-0"}


async def test_no_live_worker_no_placement(settings):
    settings.SPACES_MEDIA_WORKERS = 3

    assert await placement.place(7, publish=False) is None


async def test_an_edge_keeps_its_origin_when_redis_forgot_the_key():
    # given: Redis restarted (no origin key); the edge was fed by worker 0, still alive; worker 1 is less loaded
    alive = {0: load(0, 2), 1: load(1, 0)}

    # when: the edge checks its feed
    origin = await room_origin(7, alive, known=Origin(0, "boot-0"))

    # then: the stage stays where it was
    assert origin == Origin(0, "boot-0")


def test_the_watch_moves_the_clients_of_a_dead_restarted_or_stopping_worker_not_of_a_forgotten_one(settings):
    settings.SPACES_MEDIA_HEARTBEAT_TTL_S = 5
    watch = WorkerWatch()
    placed = Placed(space_id=7, index=0, boot="boot-0")
    now = time.time()

    watch.looks = 2
    watch.stamps[0] = ("boot-0", now - 1)  # stamped a second ago, then Redis lost it
    assert not watch._gone(placed, {})
    watch.stamps[0] = ("boot-0", now - 5)  # its last stamp expired
    assert watch._gone(placed, {})
    watch.looks = 1  # ... but Redis has only just answered again: look once more
    assert not watch._gone(placed, {})
    assert watch._gone(placed, {0: WorkerLoad(index=0, boot="boot-0b")})  # restarted
    assert watch._gone(placed, {0: WorkerLoad(index=0, boot="boot-0", stopped=True)})  # stopping
    assert not watch._gone(placed, {0: load(0)})  # alive


@pytest.mark.django_db
def test_media_health_names_a_stopping_worker(client, settings):
    settings.SPACES_MEDIA_IN_PROCESS = False
    settings.SPACES_MEDIA_WORKERS = 2
    cache.set(signalling.heartbeat_key(0), {"boot": "b0", "at": 0.0, "stopped": True})
    cache.set(signalling.heartbeat_key(1), {"boot": "b1", "at": 0.0})

    response = client.get("/healthz/media/")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "workers": {"0": "stopping", "1": "alive"}}


async def test_a_stopping_worker_gets_no_placement(settings):
    settings.SPACES_MEDIA_WORKERS = 2
    await cache.aset(signalling.heartbeat_key(0), {"boot": "b0", "at": 0.0, "stopped": True})
    await cache.aset(signalling.heartbeat_key(1), {"boot": "b1", "at": 0.0, "listeners": 5, "capacity": 10})

    assert (await placement.place(7, publish=True)).index == 1
    assert (await placement.place(7, publish=False)).index == 1


def test_a_clip_goes_to_the_worker_holding_the_stage_when_workers_run_apart(settings):
    # given: space 7's stage is on worker 2 of 3
    settings.SPACES_MEDIA_IN_PROCESS = False
    settings.SPACES_MEDIA_WORKERS = 3
    cache.set(signalling.origin_key(7), {"index": 2, "boot": "b2"})

    # then: what is meant for the stage (a clip of the recording) goes there; with none, by id as in process
    assert signalling.worker_channel(7) == "media.worker.2"
    assert signalling.worker_channel(8) == "media.worker.2"  # 8 % 3, no origin yet
    settings.SPACES_MEDIA_IN_PROCESS = True
    assert signalling.worker_channel(7) == "media.worker.1"


async def test_the_watch_stops_when_cancelled_even_if_a_heartbeat_read_swallows_the_cancellation(monkeypatch, settings):
    # A read through `sync_to_async` waits for its thread and returns normally when cancelled; a test
    # loop's teardown then waited for ever on the watch (CI hung in the Redis pass).
    settings.SPACES_MEDIA_HEARTBEAT_S = 0.01
    reading = asyncio.Event()

    async def swallowing_read():
        reading.set()
        with contextlib.suppress(asyncio.CancelledError):  # it goes no further, as in sync_to_async
            await asyncio.sleep(10)
        return {}

    monkeypatch.setattr(placement, "heartbeats", swallowing_read)
    watch = WorkerWatch()
    watch.attach("socket", Placed(space_id=1, index=0, boot="boot-0"))
    await asyncio.wait_for(reading.wait(), 2)

    watch.task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(watch.task, 2)
