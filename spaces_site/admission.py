"""At most `SPACES_WEB_CONCURRENCY` HTTP requests in Django at once per web process and line; the rest wait.

Django's ASGI handler runs each request's view on a thread of its own, so a
burst of 300 requests (a ticket rush) ran 300 views at once, each a slice of
the one core at a time: every request finished late, the first comer with
the last. In line, first come is first served, and those that come later
wait for a free place before Django rather than inside it
(bench/ticket_rush.py, docs/benchmarks.md).

There are two lines, each with its own places: reads (GET, HEAD, OPTIONS:
pages, the API's reads, replays) and writes (everything else: a rush of
buyers, a flood of form posts). A burst of writes fills the write line only,
so a page view never waits behind it.

A place is held until the response starts: a streamed body (a replay) goes
on without one. A view that waits on an outside service (`spaces_site.outside`)
gives its place back for the wait: the scope's `LEAVE_LINE` is how.
Websockets are not counted; they hold no thread.
"""

import asyncio
import weakref

# The scope's key for giving the request's place back early (see `spaces_site.outside`).
LEAVE_LINE = "spaces.admission.leave"

READS = frozenset({"GET", "HEAD", "OPTIONS"})


class Admission:
    """ASGI middleware: `limit` requests past each line at once (0: no line)."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit
        # Lines per event loop (tests run several; daphne runs one): (reads, writes).
        self._lines: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[asyncio.Semaphore, asyncio.Semaphore]
        ] = weakref.WeakKeyDictionary()

    async def __call__(self, scope, receive, send):
        if not self.limit or scope["type"] != "http":
            return await self.app(scope, receive, send)
        reads, writes = self._lines_here()
        line = reads if scope["method"] in READS else writes
        await line.acquire()
        held = True

        def leave() -> None:
            nonlocal held
            if held:
                held = False
                line.release()

        async def send_leaving_at_start(message):
            if message["type"] == "http.response.start":
                leave()
            await send(message)

        try:
            return await self.app({**scope, LEAVE_LINE: leave}, receive, send_leaving_at_start)
        finally:
            leave()

    def _lines_here(self) -> tuple[asyncio.Semaphore, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        lines = self._lines.get(loop)
        if lines is None:
            lines = self._lines[loop] = (asyncio.Semaphore(self.limit), asyncio.Semaphore(self.limit))
        return lines
