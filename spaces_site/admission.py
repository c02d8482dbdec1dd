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
so a page view never waits behind it; and while a page is being answered,
writes go in one at a time, so it shares the process's one core with few of
them.

A place is held until the response starts: a streamed body (a replay) goes
on without one. A view that waits on an outside service (`spaces_site.outside`)
gives its place back for the wait and comes back for the rest of its work
ahead of everyone who came after it: a buyer who got a seat is answered
before the buyers behind them in the rush are looked at. The scope's `PLACE`
is how. Websockets are not counted; they hold no thread.
"""

import asyncio
import weakref
from collections import deque

# The scope's key for the request's `Place` (see `spaces_site.outside`).
PLACE = "spaces.admission.place"

READS = frozenset({"GET", "HEAD", "OPTIONS"})


class Line:
    """`places` at a time; whoever comes back (`Place.come_back`) is let in before whoever is new.

    A line that `yields_to` another lets one in at a time while that one has anyone inside: writes
    yield to reads, so a page view shares the web process with at most the writes already inside
    and one more, and writes still go on however many pages are viewed.
    """

    def __init__(self, places: int, *, yields_to: "Line | None" = None) -> None:
        self.places = places
        self.inside = 0
        self._yields_to = yields_to
        self._yielding: list[Line] = []
        if yields_to is not None:
            yields_to._yielding.append(self)
        self._back: deque[asyncio.Future] = deque()
        self._new: deque[asyncio.Future] = deque()

    def _open(self) -> bool:
        busy = self._yields_to is not None and self._yields_to.inside > 0
        return self.inside < (1 if busy else self.places)

    async def enter(self, *, back: bool = False) -> None:
        if self._open() and not self._back and not self._new:
            self._come_in()
            return
        turn = asyncio.get_running_loop().create_future()
        (self._back if back else self._new).append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.leave()  # the place came just as the waiter gave up: the next one has it
            else:
                (self._back if back else self._new).remove(turn)
            raise

    def leave(self) -> None:
        self.inside -= 1
        self._let_in()
        for line in self._yielding:
            line._let_in()

    def _come_in(self) -> None:
        self.inside += 1

    def _let_in(self) -> None:
        while self._open() and (self._back or self._new):
            turn = (self._back or self._new).popleft()
            if not turn.done():
                turn.set_result(None)
                self._come_in()


class Place:
    """A request's place in its line: given back when its response starts, or for a wait outside."""

    def __init__(self, line: Line) -> None:
        self._line = line
        self.held = True

    def leave(self) -> None:
        if self.held:
            self.held = False
            self._line.leave()

    async def come_back(self) -> None:
        if not self.held:
            await self._line.enter(back=True)
            self.held = True


class Admission:
    """ASGI middleware: `limit` requests past each line at once (0: no line)."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit
        # Lines per event loop (tests run several; daphne runs one): (reads, writes).
        self._lines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Line, Line]] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, scope, receive, send):
        if not self.limit or scope["type"] != "http":
            return await self.app(scope, receive, send)
        reads, writes = self._lines_here()
        line = reads if scope["method"] in READS else writes
        await line.enter()
        place = Place(line)

        async def send_leaving_at_start(message):
            if message["type"] == "http.response.start":
                place.leave()
            await send(message)

        try:
            return await self.app({**scope, PLACE: place}, receive, send_leaving_at_start)
        finally:
            place.leave()

    def _lines_here(self) -> tuple[Line, Line]:
        loop = asyncio.get_running_loop()
        lines = self._lines.get(loop)
        if lines is None:
            reads = Line(self.limit)
            lines = self._lines[loop] = (reads, Line(self.limit, yields_to=reads))
        return lines
