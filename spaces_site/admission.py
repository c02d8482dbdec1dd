"""At most `SPACES_WEB_CONCURRENCY` HTTP requests in Django at once per web process; the rest wait in line.

Django's ASGI handler runs each request's view on a thread of its own, so a
burst of 300 requests (a ticket rush) ran 300 views at once, each a slice of
the one core at a time: every request finished late, the first comer with
the last. In line, first come is first served, and those that come later
wait for a free place before Django rather than inside it
(bench/ticket_rush.py, docs/benchmarks.md).

A place is held until the response starts: a streamed body (a replay) goes
on without one. Websockets are not counted; they hold no thread.
"""

import asyncio
import weakref


class Admission:
    """ASGI middleware: `limit` requests past the line at once (0: no line)."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit
        # One line per event loop (tests run several; daphne runs one).
        self._lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, scope, receive, send):
        if not self.limit or scope["type"] != "http":
            return await self.app(scope, receive, send)
        line = self._line()
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
            return await self.app(scope, receive, send_leaving_at_start)
        finally:
            leave()

    def _line(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        line = self._lines.get(loop)
        if line is None:
            line = self._lines[loop] = asyncio.Semaphore(self.limit)
        return line
