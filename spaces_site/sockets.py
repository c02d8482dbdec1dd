"""The base of every websocket consumer: it outlives a Redis or database outage.

Channels ends a consumer (daphne closes the socket with 1011, a traceback
each) when a channel-layer read, a `group_add` or a database call raises.
`SteadyConsumer` instead:

- retries its channel-layer read while the layer is down, for at most
  `SPACES_OUTAGE_RETRY_S`; if the layer is still down it sends an
  `unavailable` error event and closes with 4503 (try again later), which
  the page scripts answer by reconnecting;
- remembers the groups it joined and joins them again after the layer
  comes back (`spaces_site.layer_watch`), then calls `caught_up()` so a
  subclass can resend what the client may have missed;
- answers any other handler that meets an outage with `unavailable` and
  stays open; a connect that meets one accepts, tells, and closes with 4503.

`OutageTolerantAuthMiddlewareStack` is channels' auth stack, except that a
database that can't load the session marks the scope instead of failing
the handshake with HTTP 500.
"""

import asyncio
import functools
import logging

from channels.auth import AuthMiddleware, UserLazyObject
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.sessions import CookieMiddleware, SessionMiddleware
from channels.utils import await_many_dispatch
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from spaces_site.layer_watch import layer_watch
from spaces_site.outages import OUTAGE_ERRORS, REDIS_ERRORS, is_outage, retrying, stop_if_cancelled, unavailable_event

log = logging.getLogger(__name__)

# Daphne allows 1000 or 3000-4999 from a server; 4503 is ours for "try again later" (docs/websocket.md).
CLOSE_TRY_AGAIN_LATER = 4503


class SteadyConsumer(AsyncJsonWebsocketConsumer):
    accepted = False
    closing = False

    async def __call__(self, scope, receive, send):
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = self._channel_receive
        self.base_send = send
        self.joined_groups: set[str] = set()
        self.watch = layer_watch()
        if self.watch is not None:
            self.watch.subscribe(self, self._layer_recovered)
        try:
            await await_many_dispatch([receive, self.channel_receive], self.dispatch)
        except StopConsumer:
            pass
        finally:
            if self.watch is not None:
                self.watch.unsubscribe(self)

    async def dispatch(self, message):
        """Run the handler; an outage it meets is told to the client instead of ending the socket.

        Like `rooms.consumers`' override, this skips channels' per-message
        `aclose_old_connections`: database calls go through
        `database_sync_to_async`, which closes stale connections itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        try:
            await handler(message)
        except OUTAGE_ERRORS as error:
            self._note(error)
            if message["type"] == "websocket.connect" or not self.accepted:
                await self.unavailable_close()
            elif message["type"] != "websocket.disconnect":
                await self.send_json(unavailable_event())
        # A handler's database call may have swallowed a cancellation (see `stop_if_cancelled`).
        stop_if_cancelled()

    async def websocket_connect(self, message):
        if self.scope.get("outage"):
            await self.unavailable_close()
            return
        await super().websocket_connect(message)

    async def accept(self, subprotocol=None, headers=None):
        await super().accept(subprotocol, headers)
        self.accepted = True

    async def close(self, code=None, reason=None):
        self.closing = True
        await super().close(code, reason)

    async def websocket_disconnect(self, message):
        # A departure is never refused: what can't be undone now (a group left
        # in Redis, a row) expires on its own (see docs/operations.md).
        try:
            await self.disconnect(message["code"])
        except OUTAGE_ERRORS as error:
            self._note(error)
        for group in list(self.joined_groups):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except OUTAGE_ERRORS as error:
                self._note(error)
        raise StopConsumer()

    # Groups

    async def join_group(self, group: str) -> None:
        """Join a group, retrying through a short outage; remembered so it is joined again after one."""
        self.joined_groups.add(group)
        await retrying(
            functools.partial(self.channel_layer.group_add, group, self.channel_name),
            within=settings.SPACES_OUTAGE_RETRY_S,
        )

    async def leave_group(self, group: str) -> None:
        self.joined_groups.discard(group)
        await self.channel_layer.group_discard(group, self.channel_name)

    async def _layer_recovered(self) -> None:
        await self.rejoin_groups_and_catch_up()

    async def rejoin_groups_and_catch_up(self) -> None:
        """Join every group again (they were lost), then `caught_up`."""
        if self.closing:
            return
        for group in list(self.joined_groups):
            await retrying(
                functools.partial(self.channel_layer.group_add, group, self.channel_name),
                within=settings.SPACES_OUTAGE_RETRY_S,
            )
        await self.caught_up()

    async def caught_up(self) -> None:
        """Called after the layer came back and the groups were joined again; events may have been lost."""

    # Outages

    async def _channel_receive(self) -> dict:
        while True:
            stop_if_cancelled()
            try:
                return await self.channel_layer.receive(self.channel_name)
            except OUTAGE_ERRORS as error:
                stop_if_cancelled()
                self._note(error)
                back = self.watch is not None and await self.watch.wait_up(settings.SPACES_OUTAGE_RETRY_S)
                if not back:
                    await self.unavailable_close()
                    # The client's disconnect ends this consumer; until then there is nothing to read.
                    await asyncio.Event().wait()

    async def unavailable_close(self) -> None:
        """Tell the client to come back later, and close with 4503."""
        if self.closing:
            return
        if not self.accepted:
            await self.accept()
        await self.send_json(unavailable_event())
        await self.close(code=CLOSE_TRY_AGAIN_LATER)

    def _note(self, error: BaseException) -> None:
        if self.watch is not None and isinstance(error, REDIS_ERRORS):
            self.watch.failed(error)
        log.debug("socket %s met an outage: %r", self.channel_name, error)


class OutageTolerantAuthMiddleware(AuthMiddleware):
    async def resolve_scope(self, scope):
        try:
            await super().resolve_scope(scope)
        except OUTAGE_ERRORS as error:
            log.debug("websocket handshake could not load its session: %r", error)
            scope["user"] = UserLazyObject()
            scope["user"]._wrapped = AnonymousUser()
            scope["outage"] = True


def OutageTolerantAuthMiddlewareStack(inner):
    return CookieMiddleware(SessionMiddleware(OutageTolerantAuthMiddleware(inner)))


__all__ = ["CLOSE_TRY_AGAIN_LATER", "OutageTolerantAuthMiddlewareStack", "SteadyConsumer", "is_outage"]
