"""Prometheus metrics of the media path, with the maintained `prometheus-client` (docs/media.md lists them).

Each worker process serves its own at `SPACES_MEDIA_METRICS_PORT` + its
index (`manage.py media_worker`); a web process serves its own, and those of
the workers running inside it on the one-command default, at `/metrics`
(`media.views.metrics`). Room figures are read when scraped, from the rooms
themselves (nothing is added to the per-packet path but two sums); a room
that closes leaves its counts to its worker, so the counters never go back.
Placements and failovers are counted where they are decided.
"""

import weakref
from collections import Counter as Tally

from prometheus_client import REGISTRY, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from rooms.presence_loop import OPEN_SOCKETS

PLACEMENTS = Counter(
    "spaces_media_placements",
    "Offers placed on a media worker (when workers run apart): as a speaker (on the origin) or a listener.",
    ["as", "worker"],
)
FAILOVERS = Counter(
    "spaces_media_failovers",
    "Sockets told to offer again because the worker carrying their audio died, stopped or restarted.",
)
ORIGIN_TAKEOVERS = Counter(
    "spaces_media_origin_takeovers", "Spaces whose stage a worker took over from an origin that died."
)

SOCKETS_OPEN = Gauge("spaces_web_sockets_open", "Space websockets open in this web process.")


def web_process_seen() -> None:
    """Figures of the web process read as it is scraped."""
    SOCKETS_OPEN.set(len(OPEN_SOCKETS))


COUNTS = {
    "packets_out": "RTP packets sent to listeners.",
    "bytes_out": "Bytes of RTP sent to listeners (before SRTP).",
    "late_ticks": "Mix ticks that ran late.",
    "packets_lost_in": "Speakers' packets that never arrived (lost on the way in).",
    "encodes": "Frames the mixer encoded (none while one voice is forwarded).",
    "forwarded": "Packets forwarded untouched while one voice spoke.",
}

_workers: "weakref.WeakSet" = weakref.WeakSet()


def worker_watched(worker) -> None:
    """Count this worker (a `media.worker.MediaWorker`) in the process's metrics."""
    _workers.add(worker)


def room_closed(worker, room) -> None:
    """A room leaves its worker: its counts stay in the worker's totals."""
    worker.retired_counts.update(room.totals())


class MediaCollector:
    def collect(self):
        rooms = GaugeMetricFamily(
            "spaces_media_rooms", "Rooms a worker carries, as origin or edge.", labels=["worker", "as"]
        )
        speakers = GaugeMetricFamily("spaces_media_speakers", "Speakers connected to a worker.", labels=["worker"])
        listeners = GaugeMetricFamily("spaces_media_listeners", "Listeners connected to a worker.", labels=["worker"])
        counters = {
            name: CounterMetricFamily(f"spaces_media_{name}", help_text, labels=["worker"])
            for name, help_text in COUNTS.items()
        }
        for worker in list(_workers):
            label = worker.channel.rsplit(".", 1)[-1] if worker.index is None else str(worker.index)
            carried = list(worker.rooms.values())
            edges = sum(1 for room in carried if room.edge)
            rooms.add_metric([label, "origin"], len(carried) - edges)
            rooms.add_metric([label, "edge"], edges)
            speakers.add_metric([label], sum(len(room.speakers) for room in carried))
            listeners.add_metric([label], sum(len(room.listeners) for room in carried))
            totals = Tally(worker.retired_counts)
            for room in carried:
                totals.update(room.totals())
            for name, family in counters.items():
                family.add_metric([label], totals[name])
        yield rooms
        yield speakers
        yield listeners
        yield from counters.values()


REGISTRY.register(MediaCollector())
