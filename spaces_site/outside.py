"""A view that must wait on an outside service (Stripe) waits on the event loop, holding nothing scarce.

Our views are sync and run in the request's thread (`spaces_site.handler`),
with a place in the site's line (`spaces_site.admission`) and a database
connection. A view whose answer depends on an outside call does its own part
first (a seat held in a short transaction), then returns `OutsideCall(wait,
then)` instead of a response:

1. `OutsideCallMiddleware`, first in the chain, gives the request's database
   connections back (to the pool, or closed) while still in its thread;
2. the site's ASGI handler (`spaces_site.handler.SiteHandler`) gives back its
   place in the line and its thread, and awaits `wait()` on the event loop:
   no thread, no connection, no place, however long the outside takes
   (within its own budget);
3. then it comes back to the line, ahead of the requests that came after it,
   and runs `then(outcome)` on the request's thread, where `outcome()`
   returns what `wait` returned or raises what it raised; `then` does the
   rest (a second short transaction) and returns the real response.

The middleware chain has already answered the `OutsideCall` itself (cookies,
security and CSP headers): the real response takes its status, body and own
headers, and keeps the chain's headers and cookies it doesn't set. Of the
chain's response phase only the `messages` framework's is run again, so a
note `then` adds reaches the next page; `then` must not rely on any other
(a session it changes is not saved). An exception in `then` is answered as
Django answers one from a view. A client that goes away meanwhile doesn't
cut the work short: what `wait` started is finished and recorded.

Where the site's handler doesn't serve the request (WSGI, Django's test
clients), `OutsideCallMiddleware` answers it in the request's thread: `wait()`
runs on one event loop the process keeps for such waits, and `then` in the
thread, which waits meanwhile.
"""

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
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

    async def answer(self, request: HttpRequest, *, finish: Callable[[HttpResponse, HttpRequest], HttpResponse]):
        """Under the site's handler, on the event loop: wait holding nothing, then build the real response,
        and `finish(response, request)` it in the same hop to the request's thread (the handler's end of
        a response: logged, closed).

        The request's database connections were given back in its thread (`OutsideCallMiddleware`)."""
        place = request.scope.get(PLACE)
        thread = request.scope[ANSWERED_OUTSIDE]
        if place is not None:
            place.leave()
        thread.release()  # the request's thread, back to the pool until `then` runs
        # Shielded: a buyer who hangs up mid-wait still gets their checkout recorded.
        return await asyncio.shield(self._finish(request, place, thread, finish))

    async def _finish(self, request: HttpRequest, place: Place | None, thread: "RequestThread", finish) -> HttpResponse:
        waiting = asyncio.ensure_future(self.wait())
        with WAITING.track_inprogress():
            await asyncio.wait([waiting])
        if place is not None:
            await place.come_back()  # ahead of the requests that came after this one
        try:
            # On the request's thread, in a context of its own: the handler's may have ended (a client
            # gone), and then nothing else gives the thread back.
            async with ThreadSensitiveContext(executor=thread):
                response = await sync_to_async(lambda: finish(self._respond(request, waiting.result), request))()
            if thread.finished:
                thread.release()
        finally:
            if place is not None:
                place.leave()  # here, as the handler may have stopped waiting for this (a client gone)
        return response

    def answer_here(self, request: HttpRequest) -> HttpResponse:
        """Outside the site's handler (WSGI, Django's test clients): wait on the process's loop for such
        waits, and build the real response in this thread, which holds what it holds meanwhile."""
        waiting = asyncio.run_coroutine_threadsafe(self.wait(), _outside_loop())
        with WAITING.track_inprogress():
            concurrent.futures.wait([waiting])
        return self._respond(request, waiting.result)

    def _respond(self, request: HttpRequest, outcome: Callable[[], Any]) -> HttpResponse:
        try:
            response = self.then(outcome)
        except Exception as error:  # noqa: BLE001 - as Django's handler answers a view's exception
            response = response_for_exception(request, error)
        else:
            # What MessageMiddleware does on the way out: the chain's pass stored only the notes before.
            notes = getattr(request, "_messages", None)
            if notes is not None:
                notes.update(response)
        response._resource_closers.extend(self._resource_closers)  # the request's own (files), as the handler added
        self._resource_closers.clear()
        for header, value in self.items():
            if header.lower() not in _BODY_HEADERS and header not in response:
                response[header] = value
        for name, morsel in self.cookies.items():
            response.cookies.setdefault(name, morsel)
        if not response.streaming and not response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response


@functools.cache
def _outside_loop() -> asyncio.AbstractEventLoop:
    """An event loop of its own thread, for the waits of requests the site's handler doesn't serve: one
    for the process, so what its clients keep open (Stripe's connections) lasts from wait to wait."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="outside-calls", daemon=True).start()
    return loop


class OutsideCallMiddleware:
    """First in `MIDDLEWARE`: an `OutsideCall` gives back the request's database connections here, in its
    thread, before it waits.

    Under the site's handler it is passed on, to be answered on the event loop; elsewhere (WSGI,
    Django's test clients) it is answered here, in the request's thread, which waits for it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not isinstance(response, OutsideCall):
            return response
        if getattr(request, "scope", {}).get(ANSWERED_OUTSIDE):
            connections.close_all()  # to the pool, or closed: the wait holds none
            return response
        # Nothing to give back here: the thread waits anyway, and a test client's transaction lives
        # on the request's connection.
        return response.answer_here(request)
