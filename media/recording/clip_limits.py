"""How many clips a person and a space may have: the one place for the rule.

- asked in the last hour: `SPACES_CLIPS_PER_HOUR` per person (10),
  `SPACES_CLIPS_PER_SPACE_PER_HOUR` per space (100). Every clip asked counts,
  whatever became of it: cut, failed, or deleted since by anyone (a deleted
  one is found in the audit trail, with when it was made);
- stored: `SPACES_CLIP_STORAGE_PER_PERSON_MB` of a person's clips (50 MB) and
  `SPACES_CLIP_STORAGE_PER_SPACE_MB` of a space's (500 MB). A clip not cut
  yet counts as what it is expected to take (`expected_bytes`, generous);
  once cut, as what it takes, checked again (`storage_refusal`), so the caps
  hold whatever the estimate was.

Past a limit the answer is 429 `clip_limit` with `Retry-After`: when the
oldest clip of the hour leaves it, or when the oldest stored clip expires.
Callers hold the row locks of the person and then the space
(`accounts.lock_objects`, `rooms.lock_objects`), so two requests at once
can't both take the last place.
"""

import math
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import Min, Q, Sum

from accounts.models import AuditEntry, User
from media.errors import ClipLimited
from media.models import Clip, ClipState, Recording
from rooms.models import Space

HOUR = timedelta(hours=1)
MB = 1024 * 1024
# The audit action of a person's deletion (media.recording.services.delete_with_file).
CLIP_DELETED = "media.clip.deleted"
# What a clip not cut yet is taken to need: its share of the recording, half again (a loud half
# minute takes more than the recording's average), and the Ogg headers; a live clip, 30 s of the
# room's 32 kb/s mix the same way.
SPARE = 1.5
HEADERS_BYTES = 4 * 1024
LIVE_CLIP_BYTES = round(30 * 32_000 / 8 * SPARE) + HEADERS_BYTES


def expected_bytes(*, recording: Recording | None, duration_ms: int) -> int:
    """What a clip of `duration_ms` from `recording` (None: of a live space) is taken to need until it is cut."""
    if recording is None or not recording.duration_ms:
        return LIVE_CLIP_BYTES
    return round(recording.size_bytes * duration_ms / recording.duration_ms * SPARE) + HEADERS_BYTES


def clip_allowance_check(*, actor: User, space: Space, expected: int, now: datetime) -> None:
    """`ClipLimited` if `actor` may not ask one more clip of `space` now (one expected to take `expected`
    bytes). Call under the locks of the person's and the space's rows."""
    since = now - HOUR
    person_asks = _asks(Q(maker=actor), AuditEntry.objects.filter(details__maker=actor.pk), since=since)
    limit = settings.SPACES_CLIPS_PER_HOUR
    if limit and len(person_asks) >= limit:
        wait = _seconds(min(person_asks) + HOUR - now)
        raise ClipLimited(
            f"You have asked for {len(person_asks)} clips in the last hour, the most allowed: "
            f"you can make another in {_in_words(wait)}.",
            retry_after=wait,
            limit=limit,
        )
    space_audit = AuditEntry.objects.filter(
        subject_type=ContentType.objects.get_for_model(Space), subject_id=str(space.pk)
    )
    space_asks = _asks(Q(space=space), space_audit, since=since)
    limit = settings.SPACES_CLIPS_PER_SPACE_PER_HOUR
    if limit and len(space_asks) >= limit:
        wait = _seconds(min(space_asks) + HOUR - now)
        raise ClipLimited(
            f"This space has had {len(space_asks)} clips asked for in the last hour, the most allowed: "
            f"another can be made in {_in_words(wait)}.",
            retry_after=wait,
            limit=limit,
        )
    refusal = _over_storage(Clip.objects.filter(maker=actor), Clip.objects.filter(space=space), expected, now=now)
    if refusal is not None:
        raise refusal


def storage_refusal(*, clip: Clip, size_bytes: int, now: datetime) -> str | None:
    """Why a clip just cut, of `size_bytes`, can't be kept (its maker's or its space's storage would pass
    its cap), or None. Call under the locks of the maker's and the space's rows."""
    others = Clip.objects.exclude(pk=clip.pk)
    refusal = _over_storage(
        others.filter(maker_id=clip.maker_id), others.filter(space_id=clip.space_id), size_bytes, now=now
    )
    return refusal.detail if refusal is not None else None


def _asks(clips: Q, deleted, *, since: datetime) -> list[datetime]:
    """When each clip asked since `since` was asked: those there are, and those deleted since."""
    made = list(Clip.objects.filter(clips, created_at__gte=since).values_list("created_at", flat=True))
    gone = deleted.filter(action=CLIP_DELETED, created_at__gte=since, details__made_at__gte=since.timestamp())
    made += [
        datetime.fromtimestamp(stamp, tz=since.tzinfo) for stamp in gone.values_list("details__made_at", flat=True)
    ]
    return made


def _over_storage(persons, spaces, adding: int, *, now: datetime) -> ClipLimited | None:
    for clips, cap_mb, whose in (
        (persons, settings.SPACES_CLIP_STORAGE_PER_PERSON_MB, "Your clips take {used} of your {cap}"),
        (spaces, settings.SPACES_CLIP_STORAGE_PER_SPACE_MB, "This space's clips take {used} of its {cap}"),
    ):
        if not cap_mb:
            continue
        stored = clips.exclude(state=ClipState.FAILED).aggregate(used=Sum("size_bytes"), first=Min("expires_at"))
        used = stored["used"] or 0
        if used + adding > cap_mb * MB:
            # Room comes back as the oldest one expires (or sooner, as they are deleted).
            wait = _seconds(stored["first"] - now) if stored["first"] else _seconds(HOUR)
            return ClipLimited(
                whose.format(used=f"{used / MB:.1f} MB", cap=f"{cap_mb} MB")
                + ": delete some clips, or wait for older ones to expire.",
                retry_after=wait,
                limit_mb=cap_mb,
            )
    return None


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))


def _in_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"
