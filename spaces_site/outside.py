"""A view that must wait on an outside service (Stripe) waits on the event loop, holding nothing scarce.

Our views are sync and run in the request's thread (`spaces_site.handler`),
with a place in the site's line (`spaces_site.admission`) and a database
connection. A view whose answer depends on an outside call does its own part
first (a seat held in a short transaction), then returns `OutsideCall(wait,
then)` instead of a response:

1. the site's ASGI handler (`spaces_site.handler.SiteHandler`) gives the
   request's database connections back (to the pool, or closed), its place
   in the line and its thread, and awaits `wait()` on the event loop: no
   thread, no connection, no place, however long the outside takes (within
   its own budget);
2. then it comes back to the line, ahead of the requests that came after it,
   and runs `then(outcome)` on a thread, where `outcome()` returns what `wait`
   returned or raises what it raised; `then` does the rest (a second short
   transaction) and returns the real response.

The middleware chain has already answered the `OutsideCall` itself (cookies,
security and CSP headers): the real response takes its status, body and own
headers, and keeps the chain's headers and cookies it doesn't set. Of the
chain's response phase only the `messages` framework's is run again, so a
note `then` adds reaches the next page; `then` must not rely on any other
(a session it changes is not saved). An exception in `then` is answered as
Django answers one from a view. A client that goes away meanwhile doesn't
cut the work short: what `wait` started is finished and recorded.

Under WSGI (Django's test client) `OutsideCallMiddleware`, first in the
chain, does the same in the request's thread.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from asgiref.sync import ThreadSensitiveContext, async_to_sync, sync_to_async
from django.core.handlers.exception import response_for_exception
from django.db import connections
from django.http import HttpRequest, HttpResponse
from prometheus_client import Gauge

from spaces_site.admission import PLACE, Place

if TYPE_CHECKING:
    from spaces_site.handler import RequestThread

# The scope's mark that the site's handler (`spaces_site.handler.SiteHandler`) serves the request, and so
# answers its `OutsideCall` on the event loop: the request's `RequestThread`, released for the wait.
ANSWERED_OUTSIDE = "spaces.outside.handler"

WAITING = Gauge("spaces_web_outside_waits", "Requests of this web process waiting on an outside service (Stripe).")

# The chain's headers the real response doesn't take: they describe the placeholder's body.
_BODY_HEADERS = {"content-length", "content-type"}


class OutsideCall(HttpResponse):
    """A view's answer that waits on an outside service first (see the module's docstring)."""

    def __init__(self, wait: Callable[[], Awaitable[Any]], then: Callable[[Callable[[], Any]], HttpResponse]):
        super().__init__(status=202)
        self.wait = wait
        self.then = then

    async def answer(self, request: HttpRequest, *, give_back: bool = True) -> HttpResponse:
        """Wait (holding nothing), then build the real response; it carries the chain's headers."""
        place = request.scope.get(PLACE) if give_back else None
        thread = request.scope.get(ANSWERED_OUTSIDE) if give_back else None
        if give_back:
            await sync_to_async(connections.close_all)()
            if place is not None:
                place.leave()
            if thread is not None:
                thread.release()  # the request's thread, back to the pool until `then` runs
        # Shielded: a buyer who hangs up mid-wait still gets their checkout recorded.
        return await asyncio.shield(self._finish(request, place, thread))

    async def _finish(self, request: HttpRequest, place: Place | None, thread: "RequestThread | None") -> HttpResponse:
        waiting = asyncio.ensure_future(self.wait())
        with WAITING.track_inprogress():
            await asyncio.wait([waiting])
        if place is not None:
            await place.come_back()  # ahead of the requests that came after this one
        try:
            if thread is None:
                response = await sync_to_async(self._respond)(request, waiting.result)
            else:
                # On the request's thread, in a context of its own: the handler's may have ended (a client
                # gone), and then nothing else gives the thread back.
                async with ThreadSensitiveContext(executor=thread):
                    response = await sync_to_async(self._respond)(request, waiting.result)
                if thread.finished:
                    thread.release()
        finally:
            if place is not None:
                place.leave()  # here, as the handler may have stopped waiting for this (a client gone)
        for header, value in self.items():
            if header.lower() not in _BODY_HEADERS and header not in response:
                response[header] = value
        for name, morsel in self.cookies.items():
            response.cookies.setdefault(name, morsel)
        if not response.streaming and not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response

    def _respond(self, request: HttpRequest, outcome: Callable[[], Any]) -> HttpResponse:
        try:
            response = self.then(outcome)
        except Exception as error:  # noqa: BLE001 - as Django's handler answers a view's exception
            return response_for_exception(request, error)
        # What MessageMiddleware does on the way out: the chain's pass stored only the notes before.
        notes = getattr(request, "_messages", None)
        if notes is not None:
            notes.update(response)
        return response


class OutsideCallMiddleware:
    """First in `MIDDLEWARE`: where the site's handler doesn't serve the request (WSGI, Django's test
    clients), answer an `OutsideCall` in the request's thread, which waits for it.

    Under the site's handler it passes the `OutsideCall` on, to be answered on the event loop.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if isinstance(response, OutsideCall) and not getattr(request, "scope", {}).get(ANSWERED_OUTSIDE):
            # Nothing to give back here: the thread waits anyway, and a test client's transaction
            # lives on the request's connection.
            return async_to_sync(response.answer)(request, give_back=False)
        return response
