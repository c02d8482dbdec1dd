"""Signalling between the web processes and the media workers, over the channel layer.

A client sends its SDP offer on the space's websocket (`media.offer`); the
consumer passes it to the worker that hosts the space (`worker_channel`),
naming its own channel as `reply_to`; the worker answers there with
`media.answer` or `media.error`, which the consumer relays. When the socket
closes the consumer sends `media.leave`. The worker also listens to the
space's event group, so mutes, stage changes and the end reach it as they
reach every client. Offers are complete (ICE gathered), so no trickle.

Each worker stamps a heartbeat key in the cache every
`SPACES_MEDIA_HEARTBEAT_S` that expires after `SPACES_MEDIA_HEARTBEAT_TTL_S`,
with its load; `media.placement` reads them to pick a live worker for each
offer, and a web process that finds none alive answers an offer at once with
`media_unavailable` instead of leaving it unread. A socket whose worker's
heartbeat expires is told `media.reset` (`media.watch`). Between workers:
`media.relay` asks a space's origin for its listener stream (`media.cascade`). Offers carry the time they
were sent; a worker that reads one older than `OFFER_MAX_AGE_S` (it queued
while the worker was down) drops it, since its client has moved on. A worker
that starts tells the live spaces it serves (`media.reset`), and their
clients offer again.

`admit` is the worker's own check, made from the database, never from what
the web process says: may this user receive the space's audio, and may they
publish?
"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache

from accounts.models import User
from rooms import selectors
from rooms.errors import SpaceNotFound
from rooms.models import STAGE_ROLES, Participant

OFFER = "media.offer"
ANSWER = "media.answer"
ERROR = "media.error"
LEAVE = "media.leave"
RESET = "media.reset"  # to a space (a worker restarted) or to one socket (its worker died): offer again
RELAY = "media.relay"  # edge -> origin, every heartbeat: send me this space's listener stream
RELAY_STOP = "media.relay.stop"  # edge -> origin: this edge no longer carries the space
CLIP = "media.clip"  # cut "the last 30 s" of the recording the worker is writing
UNAVAILABLE = "media_unavailable"
MAX_SDP = 64 * 1024
OFFER_MAX_AGE_S = 10.0


def worker_index(space_id: int) -> int:
    """With the workers inside the web process, spaces are spread over them by id."""
    return space_id % settings.SPACES_MEDIA_WORKERS


def worker_channel(space_id: int) -> str:
    """The channel of the worker that holds a space's stage: by id in process, its origin when workers run apart
    (`media.placement`; by id while it has none)."""
    if not settings.SPACES_MEDIA_IN_PROCESS:
        origin = cache.get(origin_key(space_id))
        if origin is not None:
            return worker_channel_for_index(origin["index"])
    return worker_channel_for_index(worker_index(space_id))


def worker_channel_for_index(index: int) -> str:
    return f"media.worker.{index}"


def heartbeat_key(index: int) -> str:
    return f"media:worker-alive:{index}"


def origin_key(space_id: int) -> str:
    """Which worker holds a space's stage: {"index", "boot"}, kept alive by that worker's heartbeat."""
    return f"media:origin:{space_id}"


def origin_claim_key(space_id: int, boot: str) -> str:
    """Set once by whoever replaces the origin `boot` of a space first, so everyone agrees on one successor."""
    return f"media:origin-claim:{space_id}:{boot}"


async def heartbeat(index: int, boot_id: str, **load) -> None:
    """Stamp a worker's heartbeat with its load (listeners, capacity, rooms, relay address; `media.placement`)."""
    await cache.aset(
        heartbeat_key(index), {"boot": boot_id, "at": time.time(), **load}, settings.SPACES_MEDIA_HEARTBEAT_TTL_S
    )


def offer_is_stale(message: dict) -> bool:
    sent_at = message.get("sent_at")
    return sent_at is not None and time.time() - float(sent_at) > OFFER_MAX_AGE_S


@dataclass(frozen=True)
class Admission:
    allowed: bool
    code: str
    detail: str
    username: str = ""
    muted: bool = True
    name: str = ""


def admit(*, user_id: int | None, space_id: int, publish: bool) -> Admission:
    user = User.objects.filter(pk=user_id, is_active=True).first() if user_id else AnonymousUser()
    if user is None:
        return Admission(False, "not_allowed", "No such account.")
    try:
        space = selectors.space_get(space_id=space_id)
    except SpaceNotFound as error:
        return Admission(False, error.code, error.detail)
    entry = selectors.entry_decision(user=user, space=space)
    if not entry.allowed:
        return Admission(False, entry.code, entry.detail)
    username = user.username if user.is_authenticated else ""
    if not publish:
        return Admission(True, "listen", "Listening.", username)
    participant = Participant.objects.filter(space=space, user_id=user_id, left_at__isnull=True).first()
    if participant is None or participant.role not in STAGE_ROLES:
        return Admission(False, "not_on_stage", "Only people on stage can speak.", username)
    return Admission(True, "publish", "Speaking.", username, participant.muted, user.name)
