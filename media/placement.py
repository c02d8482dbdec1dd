"""Which worker carries what, when media workers run apart: a space's origin, and where each listener goes.

Every worker's heartbeat (`signalling.heartbeat`) says how loaded it is: its
listeners, how many it takes (`SPACES_MEDIA_WORKER_LISTENERS`), the rooms it
carries (as their origin or as an edge) and the address of its relay socket
(`media.cascade`). A worker whose heartbeat expired is dead here: nothing is
placed on it.

- A space's **origin** holds its stage: speakers publish there, and it sends
  the listener stream to the space's edges. It is chosen when the space first
  needs one (the least loaded live worker) and remembered under
  `signalling.origin_key` with the heartbeat's expiry, which the origin's
  heartbeat refreshes. When it dies, whoever notices first (a web process
  placing an offer, an edge checking its feed) claims the succession once,
  under a key named by the dead origin's boot (`cache.add`), so everyone who
  noticed agrees on one successor.
- A **listener** goes to the least loaded live worker that already carries the
  space and takes more listeners; when they are all full the space grows onto
  the least loaded other live worker (a new edge); when every worker is full,
  to the least loaded one that carries it (an overfull worker beats silence).

The web process places each offer (`media.sockets`); the chosen worker checks
the origin again on its own before it answers (`media.worker`).
"""

from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache

from media import signalling

ORIGIN = "origin"
EDGE = "edge"


@dataclass(frozen=True)
class Origin:
    index: int
    boot: str

    def as_dict(self) -> dict:
        return {"index": self.index, "boot": self.boot}


@dataclass(frozen=True)
class WorkerLoad:
    """One live worker as its last heartbeat described it."""

    index: int
    boot: str
    listeners: int = 0
    capacity: int = 1
    # space id -> ORIGIN or EDGE
    rooms: dict[int, str] = field(default_factory=dict)
    relay: tuple[str, int] | None = None
    at: float = 0.0  # when it stamped this (its clock, epoch seconds)
    stopped: bool = False  # its last stamp, as it stopped: nothing is placed on it, its clients move at once

    @classmethod
    def from_beat(cls, index: int, beat: dict) -> "WorkerLoad":
        relay = beat.get("relay")
        return cls(
            index=index,
            boot=beat["boot"],
            listeners=int(beat.get("listeners", 0)),
            capacity=max(1, int(beat.get("capacity", settings.SPACES_MEDIA_WORKER_LISTENERS))),
            rooms={int(space_id): role for space_id, role in beat.get("rooms", {}).items()},
            relay=tuple(relay) if relay else None,
            at=float(beat.get("at", 0.0)),
            stopped=bool(beat.get("stopped")),
        )

    @property
    def origin(self) -> Origin:
        return Origin(self.index, self.boot)

    @property
    def full(self) -> bool:
        return self.listeners >= self.capacity

    def order(self) -> tuple:
        """Least loaded first; among equals, the one holding fewer stages (a stage costs a decode per speaker)."""
        stages = sum(1 for role in self.rooms.values() if role == ORIGIN)
        return (self.listeners / self.capacity, stages, self.index)


async def heartbeats() -> dict[int, WorkerLoad]:
    """Every worker's heartbeat that hasn't expired, a stopping worker's last included (raises the cache's
    outage errors)."""
    keys = {signalling.heartbeat_key(n): n for n in range(settings.SPACES_MEDIA_WORKERS)}
    found = await cache.aget_many(list(keys))
    return {keys[key]: WorkerLoad.from_beat(keys[key], beat) for key, beat in found.items()}


async def live_workers() -> dict[int, WorkerLoad]:
    """The workers placement may use, by index: a heartbeat that hasn't expired, and isn't a stopping one's last."""
    return {index: worker for index, worker in (await heartbeats()).items() if not worker.stopped}


def _alive(origin: dict | None, workers: dict[int, WorkerLoad]) -> Origin | None:
    if origin is None:
        return None
    worker = workers.get(origin["index"])
    return worker.origin if worker is not None and worker.boot == origin["boot"] else None


async def room_origin(
    space_id: int, workers: dict[int, WorkerLoad], *, prefer: int | None = None, known: Origin | None = None
) -> Origin | None:
    """The live origin of a space, chosen now if it has none or its origin died (`prefer` if that worker is
    alive, else the least loaded). None when no worker is alive, or a successor was claimed by one that died since.

    `known` is the origin the caller was using: alive but forgotten (Redis restarted), it is recorded again
    rather than replaced, so a stage doesn't move because Redis lost its keys."""
    recorded = await cache.aget(signalling.origin_key(space_id))
    origin = _alive(recorded, workers)
    if origin is not None or not workers:
        return origin
    if recorded is None and known is not None and _alive(known.as_dict(), workers):
        choice = workers[known.index]
    elif prefer in workers:
        choice = workers[prefer]
    else:
        choice = min(workers.values(), key=WorkerLoad.order)
    ttl = settings.SPACES_MEDIA_HEARTBEAT_TTL_S
    if recorded is None:
        if await cache.aadd(signalling.origin_key(space_id), choice.origin.as_dict(), ttl):
            return choice.origin
        return _alive(await cache.aget(signalling.origin_key(space_id)), workers)  # chosen by another, just now
    claim = signalling.origin_claim_key(space_id, recorded["boot"])
    if await cache.aadd(claim, choice.origin.as_dict(), ttl * 2):
        await cache.aset(signalling.origin_key(space_id), choice.origin.as_dict(), ttl)
        return choice.origin
    return _alive(await cache.aget(claim), workers)  # another noticed first: its successor stands


async def keep_origins(origin: Origin, space_ids: list[int]) -> list[int]:
    """Refresh the origin keys of the spaces `origin` holds; return those whose origin is now another worker
    (its heartbeat was late and the stage moved on: the room here must hand over)."""
    if not space_ids:
        return []
    keys = {signalling.origin_key(space_id): space_id for space_id in space_ids}
    found = await cache.aget_many(list(keys))
    mine = origin.as_dict()
    lost = [space_id for key, space_id in keys.items() if key in found and found[key] != mine]
    await cache.aset_many(
        {key: mine for key, space_id in keys.items() if space_id not in lost}, settings.SPACES_MEDIA_HEARTBEAT_TTL_S
    )
    return lost


def listener_worker(space_id: int, workers: dict[int, WorkerLoad], origin: Origin) -> WorkerLoad:
    """Where a new listener of the space goes (`workers` holds the origin, alive)."""
    carrying = [w for w in workers.values() if w.index == origin.index or space_id in w.rooms]
    room_left = [w for w in carrying if not w.full]
    if room_left:
        return min(room_left, key=WorkerLoad.order)
    others = [w for w in workers.values() if w not in carrying and not w.full]
    if others:
        return min(others, key=WorkerLoad.order)  # the room grows onto a new edge
    return min(carrying, key=WorkerLoad.order)


async def place(space_id: int, *, publish: bool) -> WorkerLoad | None:
    """The worker an offer goes to: the origin for a speaker, `listener_worker` for a listener; None when no
    worker is alive (raises the cache's outage errors)."""
    workers = await live_workers()
    origin = await room_origin(space_id, workers)
    if origin is None:
        return None
    if publish:
        return workers[origin.index]
    return listener_worker(space_id, workers, origin)
