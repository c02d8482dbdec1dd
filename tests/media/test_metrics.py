"""Operators can see the media path: Prometheus metrics of the workers and the web process."""

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from media import metrics
from media.room import Room
from tests.media.sinks import KeptSink


class Worker:
    """What the collector reads of a `MediaWorker`."""

    def __init__(self, index: int):
        self.index, self.channel = index, f"media.worker.{index}"
        self.rooms: dict[int, Room] = {}
        self.retired_counts = metrics.Tally()


def sample(name: str, **labels) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_a_workers_rooms_listeners_and_packets_are_counted_and_kept_when_a_room_closes(monkeypatch):
    # given: a worker carrying one room with two listeners (stand-in sinks) and one edge room
    worker = Worker(index=7)
    metrics.worker_watched(worker)
    room = Room(1, ssrc=1234, emit=lambda event: None)
    monkeypatch.setattr("media.room.sender_shape", lambda transceiver: _Shape())
    monkeypatch.setattr("media.room.serialize", lambda shape, **fields: b"x" * 100)
    for key in ("a", "b"):
        room.add_listener(key, _Listener(KeptSink()))
    worker.rooms = {1: room, 2: Room(2, ssrc=99, emit=lambda event: None, edge=True)}

    # when: three packets go out to both listeners
    for n in range(3):
        room._to_listeners(b"opus", n, n * 960)

    # then: the scrape says so
    assert sample("spaces_media_rooms", worker="7", **{"as": "origin"}) == 1
    assert sample("spaces_media_rooms", worker="7", **{"as": "edge"}) == 1
    assert sample("spaces_media_listeners", worker="7") == 2
    assert sample("spaces_media_packets_out_total", worker="7") == 6
    assert sample("spaces_media_bytes_out_total", worker="7") == 600

    # when: the room closes, its counts stay with the worker (a counter never goes back)
    metrics.room_closed(worker, worker.rooms.pop(1))
    assert sample("spaces_media_packets_out_total", worker="7") == 6
    assert sample("spaces_media_listeners", worker="7") == 0


@pytest.mark.django_db
def test_the_web_process_serves_its_metrics_to_this_machine_or_with_the_token(settings):
    # no token: from this machine only
    local = Client(REMOTE_ADDR="127.0.0.1").get("/metrics")
    assert local.status_code == 200 and local["Content-Type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(local.content.decode())}
    assert {"spaces_media_failovers", "spaces_media_placements", "spaces_web_sockets_open"} <= names
    assert Client(REMOTE_ADDR="203.0.113.9").get("/metrics").status_code == 403
    # a token: only with it
    settings.SPACES_METRICS_TOKEN = "scrape-me"
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 403
    scraped = Client(REMOTE_ADDR="203.0.113.9").get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-me")
    assert scraped.status_code == 200


class _Shape:
    def key(self):
        return ("shape",)


class _Listener:
    def __init__(self, sink):
        self.sink, self.shape, self.pc = sink, None, None
