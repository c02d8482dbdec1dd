"""Periodic work for rooms, run by Celery beat in production.

Web processes sweep every `SPACES_PRESENCE_SWEEP_S` seconds while they serve
sockets (`rooms.presence_loop`); this task covers a deployment where every
web process has restarted or sits idle. Sweeps are idempotent, so overlapping
ones are harmless; like a web process, a Celery worker judges dead sockets
only once it has itself reached the database for a whole presence timeout.
"""

from celery import shared_task

from rooms.presence_loop import PresenceLoop
from rooms.services import transcripts_expire

_loop = PresenceLoop()


@shared_task
def presence_sweep_task() -> dict | None:
    return _loop.pass_once()


@shared_task
def transcripts_expire_task() -> int:
    """Transcripts follow the recordings' retention (PRODUCT.md §8) unless their host kept them."""
    return transcripts_expire()
