"""The websocket of a space, `/ws/spaces/<id>/` (protocol: docs/websocket.md).

On connect the client gets a snapshot; then every change to the space reaches
it as an event, filtered by what its role may see. Commands go through
`rooms.commands`, the same path as the REST API. Bad input is answered with an
`error` event and changes nothing; a flood of commands is refused, and a
client that keeps flooding is closed.
"""

import asyncio
import json
import logging
import time

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core.exceptions import ValidationError

from accounts.realtime import user_group
from media import signalling
from media.worker import ensure_in_process_worker
from rooms import commands, selectors
from rooms.models import MODERATOR_ROLES
from rooms.realtime import ALL, space_group
from rooms.services import presence
from spaces_site.errors import ServiceError

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009
CLOSE_NOT_FOUND = 4404
CLOSE_REFUSED = 4403
CLOSE_FLOODING = 4429
# How many refused commands a client may send before it is closed.
FLOOD_LIMIT = 50
# Heartbeats touch the database at most this often per socket.
SEEN_EVERY_S = 5.0


class TokenBucket:
    def __init__(self, rate: float, burst: int):
        self.rate, self.capacity = rate, burst
        self.tokens, self.stamp = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class SpaceConsumer(AsyncJsonWebsocketConsumer):
    space_id: int
    participant = None
    role = None
    joined = False
    media_open = False

    async def connect(self):
        self.space_id = int(self.scope["url_route"]["kwargs"]["space_id"])
        self.user = self.scope["user"]
        self.bucket = TokenBucket(settings.SPACES_WS_RATE, settings.SPACES_WS_BURST)
        self.refused = 0
        self.last_seen = time.monotonic()
        await self.accept()
        try:
            snapshot = await self._join()
        except ServiceError as error:
            await self.send_json({"type": "error", **error.as_dict()})
            await self.close(code=CLOSE_NOT_FOUND if error.status == 404 else CLOSE_REFUSED)
            return
        self.joined = True
        await self.channel_layer.group_add(space_group(self.space_id), self.channel_name)
        if self.user.is_authenticated:
            await self.channel_layer.group_add(user_group(self.user.pk), self.channel_name)
        await self.send_json(snapshot)
        await presence.listener_count_changed(self.space_id)
        start_sweeper()

    @database_sync_to_async
    def _join(self) -> dict:
        space = selectors.space_get(space_id=self.space_id)
        participant = presence.space_join(user=self.user, space=space)
        presence.connection_open(space=space, participant=participant, channel_name=self.channel_name)
        self.participant = participant
        self.role = participant.role if participant else None
        snapshot = selectors.space_snapshot(space=space, participant=participant)
        snapshot["heartbeat_s"] = settings.SPACES_HEARTBEAT_S
        snapshot["ice_servers"] = settings.SPACES_ICE_SERVERS
        return snapshot

    async def disconnect(self, code):
        if not self.joined:
            return
        # The database first: a channel-layer hiccup below must not leave a ghost behind.
        await database_sync_to_async(presence.connection_close)(channel_name=self.channel_name)
        try:
            if self.media_open:
                await self.channel_layer.send(
                    signalling.worker_channel(self.space_id), {"type": signalling.LEAVE, "reply_to": self.channel_name}
                )
            await self.channel_layer.group_discard(space_group(self.space_id), self.channel_name)
            if self.user.is_authenticated:
                await self.channel_layer.group_discard(user_group(self.user.pk), self.channel_name)
        finally:
            await presence.listener_count_changed(self.space_id)

    async def dispatch(self, message):
        """Handle a message without channels' per-message `aclose_old_connections`.

        Channels hops into the sync thread before every message to close stale
        database connections; one event to 1,000 sockets then queues 1,000 hops
        (measured: it doubles fan-out latency). Every database call here goes
        through `database_sync_to_async`, which does that closing itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # Client -> server

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if not self.joined:
            return
        frame = text_data if text_data is not None else bytes_data
        if len(frame) > settings.SPACES_WS_MAX_FRAME:
            await self.send_json(
                {"type": "error", "code": "frame_too_big", "detail": "That message is too big; the socket closes."}
            )
            await self.close(code=CLOSE_TOO_BIG)
            return
        if text_data is None:
            await self._refuse("bad_frame", "Send JSON text frames.")
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            await self._refuse("bad_json", "That message is not JSON.")
            return
        ref = message.get("ref") if isinstance(message, dict) else None
        if isinstance(message, dict) and message.get("type") == "ping":
            await self._heartbeat()
            await self.send_json({"type": "pong", **({"ref": ref} if ref is not None else {})})
            return
        if isinstance(message, dict) and message.get("type") == "leave":
            await self.close(code=CLOSE_NORMAL)
            return
        if not self.bucket.take():
            await self._refuse("rate_limited", "Slow down: too many commands.", ref=ref)
            return
        if isinstance(message, dict) and message.get("type") == signalling.OFFER:
            await self._media_offer(message, ref)
            return
        try:
            await database_sync_to_async(commands.execute)(actor=self.user, space_id=self.space_id, message=message)
        except ServiceError as error:
            await self._refuse(error.code, error.detail, ref=ref, **error.extra)
        except ValidationError as error:
            await self._refuse("invalid", " ".join(error.messages), ref=ref)
        else:
            if ref is not None:
                await self.send_json({"type": "ok", "ref": ref})

    async def _media_offer(self, message: dict, ref) -> None:
        """Pass an SDP offer to the space's media worker, which checks on its own who may send or hear."""
        sdp, publish = message.get("sdp"), message.get("publish", False)
        if not isinstance(sdp, str) or not isinstance(publish, bool):
            await self._refuse("bad_field", "media.offer needs an 'sdp' string and a 'publish' boolean.", ref=ref)
            return
        if len(sdp) > signalling.MAX_SDP:
            await self._refuse("bad_field", "That offer is too long.", ref=ref)
            return
        ensure_in_process_worker()
        self.media_open = True
        await self.channel_layer.send(
            signalling.worker_channel(self.space_id),
            {
                "type": signalling.OFFER,
                "space_id": self.space_id,
                "user_id": self.user.pk if self.user.is_authenticated else None,
                "reply_to": self.channel_name,
                "sdp": sdp,
                "publish": publish,
            },
        )

    async def media_answer(self, message):
        await self.send_json({"type": "media.answer", "sdp": message["sdp"], "publish": message["publish"]})

    async def media_error(self, message):
        await self.send_json({"type": "media.error", "code": message["code"], "detail": message["detail"]})

    async def _refuse(self, code: str, detail: str, *, ref=None, **extra) -> None:
        self.refused += 1
        event = {"type": "error", "code": code, "detail": detail, **extra}
        if ref is not None:
            event["ref"] = ref
        await self.send_json(event)
        if self.refused > FLOOD_LIMIT:
            await self.close(code=CLOSE_FLOODING)

    async def _heartbeat(self) -> None:
        now = time.monotonic()
        if now - self.last_seen >= SEEN_EVERY_S:
            self.last_seen = now
            await database_sync_to_async(presence.connection_seen)(channel_name=self.channel_name)

    # Server -> client

    async def space_event(self, message):
        event = message["event"]
        if not self._may_see(message["audience"]):
            return
        about_me = self._about_me(event)
        if event["type"] == "participant.removed" and about_me:
            await self.send_json({"type": "error", "code": "removed", "detail": "You were removed from this space."})
            await self.close(code=CLOSE_REFUSED)
            return
        await self.send_json(event)
        if event["type"] == "participant.updated" and about_me:
            was_moderator = self.role in MODERATOR_ROLES
            self.role = event["participant"]["role"]
            if self.role in MODERATOR_ROLES and not was_moderator:
                await self.send_json(await self._snapshot())
        elif event["type"] == "space.ended":
            await self.close(code=CLOSE_NORMAL)

    @database_sync_to_async
    def _snapshot(self) -> dict:
        space = selectors.space_get(space_id=self.space_id)
        participant = selectors.participant_of(space=space, user=self.user)
        return selectors.space_snapshot(space=space, participant=participant)

    def _may_see(self, audience) -> bool:
        if audience == ALL:
            return True
        return self.role in audience.get("roles", ()) or (
            self.user.is_authenticated and self.user.pk in audience.get("users", ())
        )

    def _about_me(self, event: dict) -> bool:
        if not self.user.is_authenticated:
            return False
        who = event.get("participant", {}).get("user") or event.get("user")
        return isinstance(who, dict) and who.get("username") == self.user.username

    async def account_banned(self, event):
        await self.send_json({"type": "error", "code": "account_banned", "detail": "This account has been banned."})
        await self.close(code=CLOSE_REFUSED)

    async def notification_new(self, event):
        """Notifications go to the user's group, which this socket joins too; `/ws/me/` shows them."""


_sweeper: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}


def start_sweeper() -> None:
    """Run the presence sweep every few seconds in this process, once per event loop."""
    interval = settings.SPACES_PRESENCE_SWEEP_S
    if interval <= 0:
        return
    loop = asyncio.get_running_loop()
    task = _sweeper.get(loop)
    if task is None or task.done():
        _sweeper.clear()
        _sweeper[loop] = loop.create_task(_sweep_forever(interval))


async def _sweep_forever(interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await database_sync_to_async(presence.presence_sweep)()
        except Exception:
            log.exception("presence sweep failed")
