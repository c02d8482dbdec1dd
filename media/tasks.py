"""Celery tasks for recordings and clips: periodic work run by beat, and cutting clips off the request."""

from celery import shared_task

from media.recording import services


@shared_task
def recordings_expire_task() -> dict:
    """Recordings and clips past their retention (PRODUCT.md §8) go, files first."""
    return services.recordings_expire()


@shared_task
def recordings_recover_task() -> int:
    """Spool files whose worker died and never came back (on a machine this task can see)."""
    return services.recordings_recover()


@shared_task
def clip_cut_task(clip_id: int) -> bool:
    """Cut a replay's clip, queued as its request committed; a repeat finds it cut and does nothing."""
    return services.clip_cut(clip_id=clip_id) is not None
