"""What an outage of the database or Redis looks like, and how the site waits one out.

An outage is an error that says a backing service did not answer (a refused
or dropped connection, a timeout), not that a request was wrong: retrying the
same call later can succeed. Pages and the API answer 503 with `Retry-After`,
websockets send an `unavailable` error event; nothing logs a traceback per
request. `OutageLog` logs each outage once when it starts and once when it
ends, however many calls fail in between.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.exceptions
from django.conf import settings
from django.db import InterfaceError, OperationalError

log = logging.getLogger("spaces.outages")

# psycopg and sqlite3 errors reach us wrapped in Django's; redis-py raises its own.
DATABASE_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)
OUTAGE_ERRORS = DATABASE_ERRORS + REDIS_ERRORS
UNAVAILABLE = "unavailable"
T = TypeVar("T")


def is_outage(error: BaseException) -> bool:
    return isinstance(error, OUTAGE_ERRORS)


def stop_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop.

    A cancellation can be swallowed on its way: asgiref's `sync_to_async` (so
    `database_sync_to_async`) waits for its thread to finish and then returns
    normally, and one that lands inside a client library's own timeout can come
    out as a `TimeoutError` that a retry loop takes for an outage. The task's
    `cancelling()` count still says it was asked to stop, so every long-running
    loop here checks it on each round and never goes round again.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def unavailable_event(*, ref=None) -> dict:
    """The websocket `error` event for an outage (docs/websocket.md)."""
    event = {
        "type": "error",
        "code": UNAVAILABLE,
        "detail": "The service is briefly unavailable; try again in a moment.",
        "retry_after": settings.SPACES_RETRY_AFTER_S,
    }
    if ref is not None:
        event["ref"] = ref
    return event


class OutageLog:
    """Log the start and the end of an outage of one thing, once each."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.since: float | None = None

    def failed(self, error: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning("%s unavailable: %s: %s", self.what, type(error).__name__, error)

    def succeeded(self) -> None:
        if self.since is not None:
            log.warning("%s back after %.1f s", self.what, time.monotonic() - self.since)
            self.since = None

    @property
    def down(self) -> bool:
        return self.since is not None


async def retrying(call: Callable[[], Awaitable[T]], *, within: float, first_wait: float = 0.1) -> T:
    """Await `call()`, retrying outage errors with doubling waits for at most `within` seconds.

    The last outage error is raised once the time is up; any other error at once.
    """
    deadline = time.monotonic() + within
    wait = first_wait
    while True:
        stop_if_cancelled()
        try:
            return await call()
        except OUTAGE_ERRORS:
            stop_if_cancelled()
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            await asyncio.sleep(min(wait, left))
            wait = min(wait * 2, 2.0)
