"""Recordings and clips: from the worker's spool into Django's storage, clips cut from them, expiry.

The worker calls `recording_begin` when a room starts recording and
`recording_finish` when it stops (the space ended, the host switched it off,
the worker is closing). A worker that died leaves an unlocked spool file;
`recordings_recover` (run by every worker as it starts, and by the beat task)
finishes it as "ended early": what was written up to then plays.
Files go to `default_storage`: FileSystemStorage under MEDIA_ROOT by default,
any storage backend (S3-compatible object storage) in production.

A clip is asked within the limits of `clip_limits` and cut off the request:
a replay's by `clip_cut_task` (a Celery worker, or this process's clip
thread when tasks run in-process), a live space's by the media worker that
records it. A cut reads only the pages of its own seconds (`ogg.cut`).
"""

import fcntl
import logging
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connections, transaction
from django.db.models import F
from django.utils import timezone

from accounts import lock_objects as accounts_locks
from accounts.models import User
from accounts.services import audit_record
from media import tasks
from media.errors import BadClip, NotRecording, RecordingNotFound
from media.models import Clip, ClipState, Recording, RecordingState
from media.recording import clip_limits, ogg
from media.signalling import CLIP, worker_channel
from rooms import lock_objects as rooms_locks
from rooms import selectors as rooms_selectors
from rooms.errors import ActionNotAllowed, WrongState
from rooms.models import Space, SpaceState
from rooms.services.numbers import numbers_add

log = logging.getLogger(__name__)

CLIP_MAX_MS = 30_000
CLIP_MIN_MS = 1_000
# A live clip not cut by then has failed.
CLIP_WAIT_S = 15
# A replay's clip waits in the task queue: not cut by then, it has failed.
CLIP_QUEUE_WAIT_S = 600
# The same person playing the same replay again within this counts once.
PLAY_AGAIN_S = 30 * 60


def spool_dir(worker_index: int | None) -> Path:
    """Where a worker writes the recordings it is making (one folder per worker index)."""
    folder = Path(settings.SPACES_RECORDING_SPOOL_DIR) / f"worker-{worker_index or 0}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# The worker's side


def recording_begin(*, space_id: int, folder: Path) -> tuple[int, Path] | None:
    """A room starts recording: a `Recording` row and the path of its spool file (None: not live)."""
    space = Space.objects.filter(pk=space_id, state=SpaceState.LIVE).first()
    if space is None:
        return None
    now = timezone.now()
    recording = Recording.objects.create(
        space=space,
        started_at=now,
        offset_ms=max(0, int((now - (space.started_at or now)).total_seconds() * 1000)),
    )
    path = folder / f"space-{space_id}-recording-{recording.pk}.ogg"
    Recording.objects.filter(pk=recording.pk).update(spool_path=str(path))
    return recording.pk, path


def recording_finish(*, recording_id: int, ended_early: bool = False) -> Recording | None:
    """Move a closed spool file into storage and mark the recording playable (or drop an empty one)."""
    recording = Recording.objects.filter(pk=recording_id, state=RecordingState.RECORDING).first()
    if recording is None:
        return None
    path = Path(recording.spool_path)
    duration = 0
    if path.exists():
        with path.open("rb") as spool:
            duration = ogg.duration_ms(spool)
    if duration <= 0:
        recording.delete()
        path.unlink(missing_ok=True)
        return None
    with path.open("rb") as spool:
        name = default_storage.save(f"recordings/space-{recording.space_id}/{recording.pk}.ogg", File(spool))
    now = timezone.now()
    recording.file.name = name
    recording.state = RecordingState.READY
    recording.duration_ms = duration
    recording.size_bytes = default_storage.size(name)
    recording.ended_at = recording.started_at + timedelta(milliseconds=duration) if ended_early else now
    recording.ended_early = ended_early
    recording.expires_at = now + timedelta(days=settings.SPACES_RECORDING_RETENTION_D)
    recording.save()
    path.unlink(missing_ok=True)
    return recording


def recordings_recover(*, folder: Path | None = None) -> int:
    """Finish the recordings whose writer died: every spool file no process holds locked.

    Looks in one worker's folder, or in all of them (the beat task). Returns how many were finished.
    """
    folders = [folder] if folder else sorted(Path(settings.SPACES_RECORDING_SPOOL_DIR).glob("worker-*"))
    finished = 0
    for spool_folder in folders:
        for path in sorted(spool_folder.glob("*.ogg")):
            if _locked(path):
                continue  # its writer is alive
            recording = Recording.objects.filter(spool_path=str(path), state=RecordingState.RECORDING).first()
            if recording is None:
                path.unlink(missing_ok=True)
                continue
            if recording_finish(recording_id=recording.pk, ended_early=True):
                log.warning(
                    "recording %s of space %s ended early; kept what was written", recording.pk, recording.space_id
                )
                finished += 1
    return finished


def _locked(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(file, fcntl.LOCK_UN)
    except FileNotFoundError:
        return True  # finished meanwhile
    return False


def clip_cut_live(*, clip_id: int, recording_id: int, spool: Path, now_ms: int) -> Clip | None:
    """Cut "the last 30 s" from a recording being written (the worker flushed it first)."""
    clip = Clip.objects.filter(pk=clip_id, state=ClipState.PENDING).first()
    if clip is None:
        return None
    end_ms = now_ms
    start_ms = max(0, end_ms - CLIP_MAX_MS)
    with spool.open("rb") as source:
        return _store_clip(clip, source, recording_id=recording_id, start_ms=start_ms, end_ms=end_ms)


def clip_fail(*, clip_id: int, reason: str) -> None:
    Clip.objects.filter(pk=clip_id, state=ClipState.PENDING).update(
        state=ClipState.FAILED, failure=reason, size_bytes=0
    )


def clip_settle(clip: Clip) -> Clip:
    """A clip never cut (the worker was down or restarting, the queue stood still) fails after a while,
    saying so."""
    wait_s = CLIP_WAIT_S if clip.asked_at else CLIP_QUEUE_WAIT_S
    if clip.state == ClipState.PENDING and clip.created_at < timezone.now() - timedelta(seconds=wait_s):
        clip_fail(clip_id=clip.pk, reason="The audio server didn't cut it in time; try again.")
        clip.refresh_from_db()
    return clip


def clip_cut(*, clip_id: int) -> Clip | None:
    """Cut a replay's clip that waited in the queue (`clip_cut_task`): its recording's packets between its
    moments. None if there was nothing to cut: cut already, failed, deleted, or its recording gone."""
    clip = Clip.objects.select_related("recording").filter(pk=clip_id, state=ClipState.PENDING).first()
    if clip is None or clip.asked_at is not None:
        return None  # done or gone; a live clip is the media worker's
    recording = clip.recording
    if recording is None or recording.state != RecordingState.READY or not recording.file:
        clip_fail(clip_id=clip.pk, reason="Its recording was deleted before the clip was cut.")
        return None
    with recording.file.open("rb") as source:
        return _store_clip(clip, source, recording_id=recording.pk, start_ms=clip.start_ms, end_ms=clip.end_ms)


def _store_clip(clip: Clip, source, *, recording_id: int, start_ms: int, end_ms: int) -> Clip:
    with tempfile.TemporaryFile() as target:
        duration = ogg.cut(source, target, start_ms=start_ms, end_ms=end_ms)
        size = target.tell()
        refusal = _keep_within_storage(clip, size)
        if refusal is not None:
            clip_fail(clip_id=clip.pk, reason=refusal)
            clip.refresh_from_db()
            return clip
        target.seek(0)
        name = default_storage.save(f"clips/space-{clip.space_id}/{clip.token}.ogg", File(target))
    stored = Clip.objects.filter(pk=clip.pk, state=ClipState.PENDING).update(
        recording_id=recording_id,
        file=name,
        start_ms=start_ms,
        end_ms=start_ms + duration,
        duration_ms=duration,
        size_bytes=size,
        state=ClipState.READY,
    )
    if not stored:  # deleted (or failed) while it was being cut
        default_storage.delete(name)
    clip.refresh_from_db()
    return clip


def _keep_within_storage(clip: Clip, size: int) -> str | None:
    """Count the cut clip's real size in place of its estimate, unless that passes a storage cap (why, then)."""
    with transaction.atomic():
        accounts_locks.users_for_update(clip.maker_id)
        rooms_locks.space_for_update(clip.space_id)
        refusal = clip_limits.storage_refusal(clip=clip, size_bytes=size, now=timezone.now())
        if refusal is None:
            Clip.objects.filter(pk=clip.pk, state=ClipState.PENDING).update(size_bytes=size)
    return refusal


# The web's side


def clip_from_replay(*, actor: User, recording_id: int, start_ms: int, duration_ms: int = CLIP_MAX_MS) -> Clip:
    """Anyone who may hear a recorded space clips up to 30 s of its replay (packets copied, no re-encode),
    within the clip limits; the clip is cut off the request (`clip_cut_soon`), pending until then."""
    if not actor.is_authenticated:
        raise ActionNotAllowed("Log in to make a clip.", code="login_required")
    recording = Recording.objects.select_related("space").filter(pk=recording_id, state=RecordingState.READY).first()
    if recording is None:
        raise RecordingNotFound(f"No recording with id {recording_id}.")
    rooms_selectors.ensure_may_replay(user=actor, space=recording.space)
    if not CLIP_MIN_MS <= duration_ms <= CLIP_MAX_MS:
        raise BadClip(f"A clip is from {CLIP_MIN_MS // 1000} to {CLIP_MAX_MS // 1000} seconds.")
    if not 0 <= start_ms < recording.duration_ms:
        raise BadClip(f"A clip starts within the recording (0 to {recording.duration_ms} ms).")
    end_ms = min(recording.duration_ms, start_ms + duration_ms)
    with transaction.atomic():
        clip = _new_clip(
            actor=actor,
            space=recording.space,
            expected=clip_limits.expected_bytes(recording=recording, duration_ms=end_ms - start_ms),
            recording=recording,
            start_ms=start_ms,
            end_ms=end_ms,
        )
        transaction.on_commit(lambda: clip_cut_soon(clip.pk))
    clip.refresh_from_db()  # cut already if the cut ran in this thread (tasks in-process, no clip thread)
    return clip


_cut_thread: ThreadPoolExecutor | None = None


def clip_cut_soon(clip_id: int) -> None:
    """Cut a replay's clip off the request: on a Celery worker; with tasks in-process
    (`SPACES_CLIP_CUT_THREAD`), on this process's one clip thread, a clip at a time."""
    global _cut_thread
    if not settings.SPACES_CLIP_CUT_THREAD:
        tasks.clip_cut_task.delay(clip_id)
        return
    if _cut_thread is None:
        _cut_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clip-cut")
    _cut_thread.submit(_cut_apart, clip_id).add_done_callback(_log_failure)


def _cut_apart(clip_id: int) -> None:
    try:
        clip_cut(clip_id=clip_id)
    finally:
        connections.close_all()  # the thread lives on; its connections don't


def _log_failure(done: Future) -> None:
    if done.exception() is not None:
        log.error("cutting a clip failed", exc_info=done.exception())


def clip_of_live(*, actor: User, space_id: int) -> Clip:
    """ "The last 30 s" of a live recorded space: a pending clip the worker cuts (`media.worker`)."""
    if not actor.is_authenticated:
        raise ActionNotAllowed("Log in to make a clip.", code="login_required")
    space = rooms_selectors.space_get(space_id=space_id)
    if space.state != SpaceState.LIVE:
        raise WrongState("This space isn't live; clip its replay instead.")
    rooms_selectors.ensure_may_enter(user=actor, space=space)
    if (
        not space.recording_enabled
        or not Recording.objects.filter(space=space, state=RecordingState.RECORDING).exists()
    ):
        raise NotRecording("This space isn't being recorded, so there is nothing to clip.")
    clip = _new_clip(
        actor=actor,
        space=space,
        expected=clip_limits.expected_bytes(recording=None, duration_ms=CLIP_MAX_MS),
        asked_at=timezone.now(),
    )
    message = {"type": CLIP, "clip_id": clip.pk, "space_id": space.pk, "asked_at": clip.asked_at.timestamp()}
    async_to_sync(get_channel_layer().send)(worker_channel(space.pk), message)
    return clip


def _new_clip(
    *,
    actor: User,
    space: Space,
    expected: int,
    asked_at: datetime | None = None,
    recording: Recording | None = None,
    start_ms: int = 0,
    end_ms: int = 0,
) -> Clip:
    """A pending clip, within the clip limits (`ClipLimited`, 429, past one); it counts as `expected`
    bytes until it is cut."""
    # First without locks, so that asking past a limit takes no lock (nor SQLite's write lock).
    clip_limits.clip_allowance_check(actor=actor, space=space, expected=expected, now=timezone.now())
    with transaction.atomic():
        accounts_locks.users_for_update(actor.pk)
        rooms_locks.space_for_update(space.pk)
        now = timezone.now()
        clip_limits.clip_allowance_check(actor=actor, space=space, expected=expected, now=now)
        clip = Clip.objects.create(
            space=space,
            maker=actor,
            asked_at=asked_at,
            recording=recording,
            start_ms=start_ms,
            end_ms=end_ms,
            size_bytes=expected,
            expires_at=now + timedelta(days=settings.SPACES_CLIP_RETENTION_D),
        )
        numbers_add(space_id=space.pk, clips=1)
    return clip


def clip_delete(*, actor: User, clip: Clip) -> None:
    """Its maker, the space's host or staff deletes a clip, file and all."""
    if not (actor.is_staff or actor.pk in (clip.maker_id, clip.space.host_id)):
        raise ActionNotAllowed("Only the clip's maker or the space's host can delete it.")
    delete_with_file(clip, actor=actor)


def recording_delete(*, actor: User, recording: Recording) -> None:
    """The host (or staff) deletes a recording before it expires; its clips keep their own files."""
    if not (actor.is_staff or actor.pk == recording.space.host_id):
        raise ActionNotAllowed("Only the space's host can delete its recording.")
    delete_with_file(recording, actor=actor)


def replay_played(*, recording: Recording, listener: str) -> bool:
    """A replay started playing for `listener` (a user, or a visitor's address): counted once per
    listener per `PLAY_AGAIN_S`, so posting again and again doesn't inflate the plays. True if counted."""
    if not cache.add(f"media:played:{recording.pk}:{listener}", 1, timeout=PLAY_AGAIN_S):
        return False
    Recording.objects.filter(pk=recording.pk).update(plays=F("plays") + 1)
    numbers_add(space_id=recording.space_id, replay_plays=1)
    return True


def listener_of(request) -> str:
    """Who is playing, for `replay_played`: the signed-in user, else the visitor's address."""
    if request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"addr:{request.META.get('REMOTE_ADDR', '')}"


def recordings_expire(*, now: datetime | None = None) -> dict:
    """Delete recordings and clips past their `expires_at`, files first. Returns how many went."""
    now = now or timezone.now()
    report = {"recordings": 0, "clips": 0}
    for recording in Recording.objects.filter(expires_at__lt=now):
        delete_with_file(recording)
        report["recordings"] += 1
    for clip in Clip.objects.filter(expires_at__lt=now):
        delete_with_file(clip)
        report["clips"] += 1
    return report


def delete_with_file(row: Recording | Clip, *, actor: User | None = None) -> None:
    """Delete a recording or a clip and its file; a person's deletion is audited (expiry is not)."""
    if actor is not None:
        kind = "recording" if isinstance(row, Recording) else "clip"
        details = {kind: str(row.pk)}
        if isinstance(row, Clip):  # it still counts among its maker's and its space's clips of the hour
            details.update(maker=row.maker_id, made_at=row.created_at.timestamp())
        audit_record(actor=actor, action=f"media.{kind}.deleted", subject=row.space, **details)
    name = row.file.name
    row.delete()
    if name:
        try:
            default_storage.delete(name)
        except OSError as error:  # the row is gone; a stray file is only disk
            log.warning("could not delete %s: %r", name, error)
