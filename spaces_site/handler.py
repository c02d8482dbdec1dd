"""The site's ASGI handler: Django's, with each request's sync work on a warm pooled thread, the middleware
chain and the view in one hop to it, and a view's `OutsideCall` answered on the event loop.

Threads. Django's `ASGIHandler` gives every request a `ThreadSensitiveContext`
of its own, and so a new thread: the event loop started it and waited for it
to run, and in a rush, where the request threads hold the GIL, each start
stalled the loop for about a millisecond (half of its time; the in-process
rush in docs/benchmarks.md "Issue 23"). Here a request borrows a warm thread
from `RequestThreads` when it first needs one and gives it back at its end,
or while it waits on an outside service: a request holds a thread only while
it runs Python in Django. One thread at a time per request keeps what
Django keeps per thread (the database connection) with the request.

The chain. Django's handler builds its chain in async mode: with our sync
views and sync-mode middleware, a request went from the event loop to its
thread for the chain, back to the loop for Django's async view dispatch
(`_get_response_async`), and to the thread again for the view; and it sent
`request_started`, logged an error answer and closed the response in hops
of their own. Here the chain is built in sync mode, as under WSGI, and a
request's start, chain, log and end go to its thread in one hop (`handle`).

A view that waits on an outside service returns `OutsideCall`
(`spaces_site/outside.py`): it is answered here, after the chain, on the
event loop.
"""

import asyncio
import contextlib
import functools
from concurrent.futures import Executor, Future, ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpRequest
from django.http.response import HttpResponseBase
from django.urls import set_script_prefix, set_urlconf
from django.utils.log import log_response

from spaces_site.outside import ANSWERED_OUTSIDE, OutsideCall


class RequestThreads:
    """Warm single-thread executors, lent to one request at a time (the event loop's thread only)."""

    def __init__(self, keep: int = 32) -> None:
        self.keep = keep  # idle threads kept warm; more are started when needed, and ended when given back
        self._idle: list[ThreadPoolExecutor] = []

    def lend(self) -> ThreadPoolExecutor:
        return self._idle.pop() if self._idle else ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")

    def give_back(self, thread: ThreadPoolExecutor) -> None:
        if len(self._idle) < self.keep:
            self._idle.append(thread)
        else:
            thread.shutdown(wait=False)


class RequestThread(Executor):
    """One request's thread-sensitive executor: a thread borrowed from the pool at its first call, until
    `release()`, which the handler calls only while none of the request's calls runs."""

    def __init__(self, threads: RequestThreads) -> None:
        self._threads = threads
        self._lent: ThreadPoolExecutor | None = None
        self.finished = False  # the handler is done with the request: work still to come gives it back

    def submit(self, fn, /, *args, **kwargs) -> Future:
        if self._lent is None:
            self._lent = self._threads.lend()
        return self._lent.submit(fn, *args, **kwargs)

    def release(self) -> None:
        if self._lent is not None:
            self._threads.give_back(self._lent)
            self._lent = None


class SiteHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self.threads = RequestThreads()

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._serve_in_thread = sync_to_async(self._serve, thread_sensitive=True)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        thread = RequestThread(self.threads)
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle({**scope, ANSWERED_OUTSIDE: thread}, receive, send)
        finally:
            thread.finished = True
            thread.release()

    async def handle(self, scope, receive, send):
        """Django's `ASGIHandler.handle`, with one hop to the request's thread where Django makes up to four.

        Django's sends `request_started`, runs the chain, logs a 4xx or 5xx answer and closes the
        response (`request_finished`: the database connection given back), each in a hop of its own
        from the event loop to a thread and back: about 0.25 ms of CPU each, idle, and more in a rush,
        in which a sold-out answer made four. Here `_serve` does them in one, closing a response whose
        body is whole before it is sent; a streamed body (a replay) is closed once sent, as Django's.
        """
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await signals.request_started.asend(sender=self.__class__, scope=scope)
            await self.send_response(error_response, send)
            await sync_to_async(error_response.close)()
            return

        async def process_request(request, send):
            response = await self._serve_in_thread(request, scope)
            if isinstance(response, OutsideCall):
                response = await response.answer(request, finish=functools.partial(finished, handler=self.__class__))
            with contextlib.suppress(asyncio.CancelledError):  # the client went away while it was sent
                await self.send_response(response, send)
            return response

        # As Django's: a client that goes away while the response is made cancels it.
        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                with contextlib.suppress(RequestAborted):
                    task.result()
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            if not response.closed:
                await sync_to_async(response.close)()
        body_file.close()

    def _serve(self, request: HttpRequest, scope: dict) -> HttpResponseBase:
        """In the request's thread: Django's start of a request, the chain, the log of an error answer,
        and the end of a response already whole (`finished`)."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        set_urlconf(settings.ROOT_URLCONF)
        response = self._middleware_chain(request)
        response._resource_closers.append(request.close)
        if isinstance(response, OutsideCall):
            return response  # answered on the event loop; its real response ends in its own hop
        return finished(response, request, handler=self.__class__)


def finished(response: HttpResponseBase, request: HttpRequest, *, handler: type) -> HttpResponseBase:
    """A response as Django's handler leaves it: an error answer logged, and, if its body is whole,
    closed (`request_finished`), in the thread that made it; a streamed one is closed once sent."""
    response._handler_class = handler
    if response.status_code >= 400:
        log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
    if isinstance(response, FileResponse):
        response.block_size = ASGIHandler.chunk_size
    if not response.streaming:
        response.close()
    return response
