"""The in-process ticker: reminders without a broker, for the one-command default.

With no broker (tasks run eagerly) there is no Celery beat or worker to run
`due_work_task`, so the web process runs that same task every
SPACES_TICKER_S seconds (on by default only when tasks run in-process).

It starts with the server, not with the first socket, because reminders are
emails too and must go out while nobody has the site open: under daphne it is
scheduled on the reactor's event loop when the ASGI application is loaded
(`install`); under another ASGI server it starts with the first request or
socket. It is an asyncio task on the server's loop, and each pass runs in a
worker thread: off the loop, and off Django's single thread for sync views,
so a big fan-out doesn't hold up requests. Pushes from that thread reach the
in-memory channel layer through the server's loop (asgiref hands them back),
which a plain background thread with a loop of its own would not do promptly.

A request that records an announcement (a space went live, was cancelled or
rescheduled) wakes the ticker instead of running the fan-out itself
(`scheduling.services.announcements.plan_soon`).
"""

import asyncio
import contextlib
import logging
import sys

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connections

log = logging.getLogger(__name__)

_running: dict = {"loop": None, "task": None, "event": None}


def install(application):
    """Wrap the ASGI application so the ticker runs in this process (when SPACES_TICKER_S > 0)."""
    if settings.SPACES_TICKER_S <= 0:
        return application
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is not None:
        # daphne: runs as soon as the reactor's loop runs, before any request.
        reactor.callLater(0, _ensure_started)

    async def application_with_ticker(scope, receive, send):
        _ensure_started()
        return await application(scope, receive, send)

    return application_with_ticker


def running() -> bool:
    loop, task = _running["loop"], _running["task"]
    return loop is not None and not loop.is_closed() and task is not None and not task.done()


def wake() -> bool:
    """Run a pass now (from any thread). False when no ticker runs in this process."""
    if not running():
        return False
    _running["loop"].call_soon_threadsafe(_running["event"].set)
    return True


def _ensure_started() -> None:
    loop = asyncio.get_running_loop()
    if running() and _running["loop"] is loop:
        return
    event = asyncio.Event()
    _running.update(loop=loop, event=event, task=loop.create_task(_tick_forever(settings.SPACES_TICKER_S, event)))
    log.info("Scheduling ticker started: due work every %s s in this process", settings.SPACES_TICKER_S)


async def _tick_forever(interval: float, event: asyncio.Event) -> None:
    while True:
        try:
            await _pass()
        except Exception:
            log.exception("Scheduling due work failed")
        with contextlib.suppress(TimeoutError):  # woken early, or the interval passed
            await asyncio.wait_for(event.wait(), timeout=interval)
        event.clear()


async def _pass() -> dict:
    return await sync_to_async(_run_due_work_task, thread_sensitive=False)()


def _run_due_work_task() -> dict:
    from scheduling.tasks import due_work_task  # the task beat runs, called in this process

    close_old_connections()
    try:
        return due_work_task()
    finally:
        # Pool threads are reused; don't leave their database connections open.
        connections.close_all()
