"""Reads of recordings and clips for pages and the API."""

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Block, User
from media.errors import ClipNotFound, RecordingNotFound
from media.models import Clip, ClipState, Recording, RecordingState
from rooms.models import Space
from rooms.selectors import ensure_may_replay, replay_decision


def replay_parts(*, space: Space) -> list[Recording]:
    """A space's playable recordings in order (one, unless recording stopped and started again)."""
    return list(Recording.objects.filter(space=space, state=RecordingState.READY).order_by("started_at"))


def is_recording(*, space: Space) -> bool:
    return Recording.objects.filter(space=space, state=RecordingState.RECORDING).exists()


def recording_get(*, recording_id: int, viewer: User) -> Recording:
    """A playable recording this person may hear (404 if there is none, 403 with the reason if not theirs)."""
    recording = (
        Recording.objects.select_related("space", "space__host")
        .filter(pk=recording_id, state=RecordingState.READY)
        .first()
    )
    if recording is None:
        raise RecordingNotFound(f"No recording with id {recording_id}.")
    ensure_may_replay(user=viewer, space=recording.space)
    return recording


def clip_get(*, token: str, viewer: User) -> Clip:
    clip = Clip.objects.select_related("space", "space__host", "maker").filter(token=token).first()
    if clip is None:
        raise ClipNotFound("No such clip (it may have expired).")
    ensure_may_replay(user=viewer, space=clip.space)
    return clip


def replays_of(*, host: User, viewer: User, limit: int = 20) -> list[Recording]:
    """The host's replays for their profile: the first part of each ended space the viewer may hear.

    The rules of `replay_decision` in a few queries however many there are: a viewer the host blocked
    sees none, spaces the viewer was removed from are left out in the query, and only ticketed spaces
    are asked one by one.
    """
    privileged = viewer.is_authenticated and (viewer.is_staff or viewer.pk == host.pk)
    if viewer.is_authenticated and not privileged and Block.objects.filter(blocker=host, blocked=viewer).exists():
        return []
    parts = Recording.objects.filter(space__host=host, state=RecordingState.READY, expires_at__gt=timezone.now())
    if viewer.is_authenticated and not privileged:
        parts = parts.exclude(space__blocks__user=viewer)
    first_parts: dict[int, Recording] = {}
    for part in parts.select_related("space").order_by("-space__ended_at", "space_id", "started_at")[: limit * 3]:
        first_parts.setdefault(part.space_id, part)
    return [
        r
        for r in first_parts.values()
        if privileged or not r.space.is_ticketed or replay_decision(user=viewer, space=r.space).allowed
    ][:limit]


def clips_of(*, space: Space) -> QuerySet[Clip]:
    return Clip.objects.filter(space=space, state=ClipState.READY).select_related("maker").order_by("-created_at")
