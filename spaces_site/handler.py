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
(`_get_response_async`), and to the thread again for the view. Here the chain
is built in sync mode, as under WSGI, and entered once through
`sync_to_async`.

A view that waits on an outside service returns `OutsideCall`
(`spaces_site/outside.py`): it is answered here, after the chain, on the
event loop.
"""

from concurrent.futures import Executor, Future, ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler

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
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)

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

    async def run_get_response(self, request):
        response = await super().run_get_response(request)
        if isinstance(response, OutsideCall):
            response = await response.answer(request)
            response._handler_class = self.__class__
        return response
