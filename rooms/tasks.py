"""Periodic work for rooms, run by Celery beat in production.

Web processes also sweep every `SPACES_PRESENCE_SWEEP_S` seconds while they
serve sockets; this task covers a deployment where every web process has
restarted or sits idle. Sweeps are idempotent, so overlapping ones are harmless.
"""

from celery import shared_task

from rooms.services import presence_sweep


@shared_task
def presence_sweep_task() -> dict:
    return presence_sweep()
