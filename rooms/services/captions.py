"""Live captions: the moderators' switch, and the transcript the media worker writes.

Recognition itself runs in the media worker's captions process (`media.captions`);
rooms holds the rule (who may switch captions, when) and the stored lines.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_record
from rooms import lock_objects
from rooms.errors import ActionNotAllowed, WrongState
from rooms.models import CaptionLine, Space, SpaceState
from rooms.services.switches import space_switch


def captions_set(*, actor: User, space_id: int, on: bool) -> Space:
    """The host or a co-host turns live captions on or off; when off, no audio goes to recognition."""
    if on and not settings.SPACES_CAPTIONS_ENGINE:
        raise WrongState("This site has no captions engine.")
    return space_switch(
        actor=actor,
        space_id=space_id,
        field="captions_enabled",
        on=on,
        permission="captions.set",
        audit="rooms.captions",
    )


def caption_line_store(
    *, space_id: int, speaker_id: int | None, line_key: str, text: str, start_ms: int, end_ms: int
) -> CaptionLine | None:
    """Keep a final line in the space's transcript (once per `line_key`); empty lines are not kept."""
    text = text.strip()
    if not text:
        return None
    line, _ = CaptionLine.objects.get_or_create(
        space_id=space_id,
        line_key=line_key,
        defaults={
            "speaker_id": speaker_id,
            "text": text,
            "start_ms": max(0, start_ms),
            "end_ms": max(start_ms, end_ms, 0),
        },
    )
    return line


def transcript_keep(*, actor: User, space_id: int, keep: bool) -> Space:
    """The host keeps the transcript past the retention period (or lets it go again)."""
    with transaction.atomic():
        space = lock_objects.space_for_update(space_id)
        if space.host_id != actor.pk:
            raise ActionNotAllowed("Only the host decides whether the transcript is kept.")
        space.transcript_kept = keep
        space.save(update_fields=["transcript_kept"])
        audit_record(actor=actor, action="rooms.transcript." + ("kept" if keep else "released"), subject=space)
    return space


def transcripts_expire(*, now: datetime | None = None) -> int:
    """Delete the transcripts of spaces that ended more than `SPACES_RECORDING_RETENTION_D` days ago,
    unless their host kept them. Returns how many lines went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.SPACES_RECORDING_RETENTION_D)
    deleted, _ = CaptionLine.objects.filter(
        space__ended_at__lt=cutoff, space__transcript_kept=False, space__state=SpaceState.ENDED
    ).delete()
    return deleted
