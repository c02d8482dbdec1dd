"""The websocket of a space, `/ws/spaces/<id>/` (protocol: docs/websocket.md).

On connect the client gets a snapshot; then every change to the space it may
see reaches it as an event. Who sees what is decided where the event is made
(`rooms.events`): the socket joins the space's groups its role puts it in
(everyone, the moderators, its person), and only changes of its own role
move it between them. Commands go through
`rooms.commands`, the same path as the REST API. Bad input is answered with an
`error` event and changes nothing; a flood of commands is refused, and a
client that keeps flooding is closed. An outage of Redis or the database is
met by `SteadyConsumer`: after the channel layer comes back the socket joins
its groups again and gets a fresh snapshot.
"""

import contextlib
import json
import logging
import time
from collections import deque

from channels.db import database_sync_to_async
from django.conf import settings
from django.core.exceptions import ValidationError

from accounts.realtime import user_group
from rooms import commands, events, selectors
from rooms.models import is_moderator
from rooms.presence_loop import OPEN_SOCKETS, start_presence_loop
from rooms.services import presence
from spaces_site.errors import ServiceError
from spaces_site.outages import OUTAGE_ERRORS, unavailable_event
from spaces_site.sockets import SteadyConsumer

log = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009
CLOSE_NOT_FOUND = 4404
CLOSE_REFUSED = 4403
CLOSE_FLOODING = 4429
REMOVED = "You were removed from this space."
# How many refused commands a client may send before it is closed.
FLOOD_LIMIT = 50
# An event addressed to two of a socket's groups arrives twice, one after the other: a few ids suffice.
RECENT_EVENTS = 8
# Pings per socket: per second sustained, and burst (clients ping every SPACES_HEARTBEAT_S).
PING_RATE, PING_BURST = 1, 5
# Other messages per socket, whatever their kind (commands are also counted per person: rooms/limits.py).
SOCKET_RATE, SOCKET_BURST = 10, 20


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


class SpaceConsumer(SteadyConsumer):
    space_id: int
    participant = None
    role = None
    joined = False

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:
            # However this socket ended, this process no longer vouches for it: its row expires.
            OPEN_SOCKETS.discard(self.channel_name)

    async def connect(self):
        self.space_id = int(self.scope["url_route"]["kwargs"]["space_id"])
        self.user = self.scope["user"]
        self.bucket = TokenBucket(SOCKET_RATE, SOCKET_BURST)
        self.pings = TokenBucket(PING_RATE, PING_BURST)
        self.refused = 0
        self.recent_events = deque(maxlen=RECENT_EVENTS)
        await self.accept()
        try:
            snapshot = await self._join()
        except ServiceError as error:
            await self.send_json({"type": "error", **error.as_dict()})
            await self.close(code=CLOSE_NOT_FOUND if error.status == 404 else CLOSE_REFUSED)
            return
        self.joined = True
        OPEN_SOCKETS.add(self.channel_name)
        await self.join_group(events.space_group(self.space_id))
        if self.user.is_authenticated:
            await self.join_group(user_group(self.user.pk))
            await self.join_group(events.person_group(self.space_id, self.user.pk))
        await self._moderators_group(self.role)
        await self.send_json(snapshot)
        await presence.listener_count_changed(self.space_id)
        start_presence_loop()

    @database_sync_to_async
    def _join(self) -> dict:
        space = selectors.space_get(space_id=self.space_id)
        participant = presence.space_join(user=self.user, space=space)
        presence.connection_open(space=space, participant=participant, channel_name=self.channel_name)
        self.participant = participant
        self.role = participant.role if participant else None
        return self._for_this_socket(selectors.space_snapshot(space=space, participant=participant))

    @staticmethod
    def _for_this_socket(snapshot: dict) -> dict:
        snapshot["heartbeat_s"] = settings.SPACES_HEARTBEAT_S
        snapshot["ice_servers"] = settings.SPACES_ICE_SERVERS
        return snapshot

    async def presence_restore(self, message):
        """This process holds the socket, but a sweep dropped its presence while the process missed
        its window (`rooms.presence_loop`): enter again, as a reconnect does, and catch up."""
        if not self.joined or self.closing:
            return
        try:
            restored = await database_sync_to_async(self._restore)()
        except ServiceError as error:  # removed, banned or ended meanwhile
            await self.send_json({"type": "error", **error.as_dict()})
            await self.close(code=CLOSE_NOT_FOUND if error.status == 404 else CLOSE_REFUSED)
            return
        if restored:
            # The sweep took the socket out of its groups, and events may have been missed.
            await self.rejoin_groups_and_catch_up()
            await presence.listener_count_changed(self.space_id)

    def _restore(self) -> bool:
        space = selectors.space_get(space_id=self.space_id)
        return presence.connection_restore(user=self.user, space=space, channel_name=self.channel_name)

    async def caught_up(self):
        """Back after a channel-layer outage: events may have been lost, so start the client afresh."""
        if self.joined:
            snapshot = await self._snapshot()
            role = (snapshot.get("you") or {}).get("role", self.role)
            await self._moderators_group(role)
            self.role = role
            await self.send_json(snapshot)

    async def disconnect(self, code):
        if not self.joined:
            return
        OPEN_SOCKETS.discard(self.channel_name)
        # The database first: a channel-layer hiccup below must not leave a ghost behind.
        # (If the database is what failed, the row is no longer vouched for and expires.)
        await database_sync_to_async(presence.connection_close)(channel_name=self.channel_name)
        try:
            await self.gone()
        finally:
            await presence.listener_count_changed(self.space_id)

    # Client -> server

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        if not self.joined or self.closing:
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
            # Presence doesn't depend on pings (`rooms.presence_loop`); they keep proxies from timing out.
            if not self.pings.take():
                await self._refuse("rate_limited", "Slow down: too many pings.", ref=ref)
                return
            await self.send_json({"type": "pong", **({"ref": ref} if ref is not None else {})})
            return
        if isinstance(message, dict) and message.get("type") == "leave":
            # A deliberate leave: out at once, every page told (a lost socket waits for the sweep).
            # On an outage the socket still closes; presence catches up as for a lost socket.
            with contextlib.suppress(*OUTAGE_ERRORS):
                await database_sync_to_async(presence.space_leave)(
                    user=self.user, space_id=self.space_id, channel_name=self.channel_name
                )
            await self.close(code=CLOSE_NORMAL)
            return
        if not self.bucket.take():
            await self._refuse("rate_limited", "Slow down: too many commands.", ref=ref)
            return
        if isinstance(message, dict) and await self.extra_message(message.get("type"), message, ref):
            return
        if isinstance(message, dict) and message.get("type") == "captions":
            await self._captions_display(message, ref)
            return
        try:
            await database_sync_to_async(commands.execute)(actor=self.user, space_id=self.space_id, message=message)
        except ServiceError as error:
            await self._refuse(error.code, error.detail, ref=ref, **error.extra)
        except ValidationError as error:
            await self._refuse("invalid", " ".join(error.messages), ref=ref)
        except OUTAGE_ERRORS:
            # Nothing was written (the transaction rolled back); the client may send it again.
            await self.send_json(unavailable_event(ref=ref))
        else:
            if ref is not None:
                await self.send_json({"type": "ok", "ref": ref})

    # What the floors above add to this socket (`workflows.consumers`): messages of their own, and a goodbye.

    async def extra_message(self, kind, message: dict, ref) -> bool:
        """Handle a client message this class doesn't know; True when handled."""
        return False

    async def gone(self) -> None:
        """The socket is gone (its presence is already closed)."""

    async def _captions_display(self, message: dict, ref) -> None:
        """This socket shows captions or not: a display choice of the person, not a change to the space."""
        on = message.get("on")
        if not isinstance(on, bool):
            await self._refuse("bad_field", "captions needs an 'on' boolean.", ref=ref)
            return
        group = events.captions_group(self.space_id)
        await (self.join_group(group) if on else self.leave_group(group))
        if ref is not None:
            await self.send_json({"type": "ok", "ref": ref})

    async def _refuse(self, code: str, detail: str, *, ref=None, **extra) -> None:
        self.refused += 1
        event = {"type": "error", "code": code, "detail": detail, **extra}
        if ref is not None:
            event["ref"] = ref
        await self.send_json(event)
        if self.refused > FLOOD_LIMIT:
            # Closed, and gone at once: what the flood has queued up behind is not worked through.
            await self.close(code=CLOSE_FLOODING)
            await self.websocket_disconnect({"code": CLOSE_FLOODING})

    # Server -> client

    async def space_event(self, message):
        """An event this socket's groups were sent: it goes out as it was encoded, once."""
        if message["id"] in self.recent_events:
            return
        self.recent_events.append(message["id"])
        kind = message["kind"]
        about_me = self.user.is_authenticated and message.get("user_id") == self.user.pk
        if kind == "participant.removed" and about_me:
            if events.event_of(message).get("reason", "removed") == "removed":
                await self.send_json({"type": "error", "code": "removed", "detail": REMOVED})
            # (for another reason, the socket was told why just before)
            await self.close(code=CLOSE_REFUSED)
            return
        await self.send(text_data=message["text"])
        if kind == "participant.updated" and about_me:
            role = events.event_of(message)["participant"]["role"]
            became_moderator = is_moderator(role) and not is_moderator(self.role)
            await self._moderators_group(role)
            self.role = role
            if became_moderator:
                await self.send_json(await self._snapshot())  # the requests and invites they now see
        elif kind == "space.ended":
            await self.close(code=CLOSE_NORMAL)

    async def _moderators_group(self, role) -> None:
        """In the moderators' group exactly while this socket's person hosts or co-hosts."""
        group = events.moderators_group(self.space_id)
        if is_moderator(role) and group not in self.joined_groups:
            await self.join_group(group)
        elif not is_moderator(role) and group in self.joined_groups:
            await self.leave_group(group)

    @database_sync_to_async
    def _snapshot(self) -> dict:
        space = selectors.space_get(space_id=self.space_id)
        participant = selectors.participant_of(space=space, user=self.user)
        return self._for_this_socket(selectors.space_snapshot(space=space, participant=participant))

    async def account_banned(self, event):
        await self.send_json(
            {
                "type": "error",
                "code": event.get("code", "account_banned"),
                "detail": event.get("detail", "This account has been banned."),
            }
        )
        await self.close(code=CLOSE_REFUSED)

    async def notification_new(self, event):
        """Notifications go to the user's group, which this socket joins too; `/ws/me/` shows them."""
