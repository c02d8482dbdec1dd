"""Periodic work for recordings, run by Celery beat."""

from celery import shared_task

from media.recording.services import recordings_expire, recordings_recover


@shared_task
def recordings_expire_task() -> dict:
    """Recordings and clips past their retention (PRODUCT.md §8) go, files first."""
    return recordings_expire()


@shared_task
def recordings_recover_task() -> int:
    """Spool files whose worker died and never came back (on a machine this task can see)."""
    return recordings_recover()
