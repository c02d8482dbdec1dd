"""The media worker's part in recording: starting a room's recording, finishing it apart, cutting live clips.

A mixin of `media.worker.MediaWorker`; it uses the worker's `rooms`, `index`,
`recording_starts` (spaces whose recording is being set up) and `finishing`
(tasks moving recordings and clips into storage, awaited on close).
"""

import asyncio
import logging
import time

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

from media.recording.recorder import Recorder
from media.recording.services import clip_cut_live, clip_fail, recording_begin, recording_finish, spool_dir
from media.room import Room
from spaces_site.outages import retrying

log = logging.getLogger("media.worker")


class RecordingMixin:
    async def _start_recording(self, room: Room) -> None:
        if room.recorder is not None or room.space_id in self.recording_starts:
            return
        self.recording_starts.add(room.space_id)
        try:
            begin = database_sync_to_async(recording_begin)
            folder = spool_dir(self.index)
            begun = await retrying(
                lambda: begin(space_id=room.space_id, folder=folder), within=settings.SPACES_OUTAGE_RETRY_S
            )
            if begun is None:
                return  # the space is no longer live
            recording_id, path = begun
            room.record(Recorder(recording_id, path, head=room.mixer.opus_head()))
            log.info("space %s: recording %s started", room.space_id, recording_id)
        finally:
            self.recording_starts.discard(room.space_id)
        if self.rooms.get(room.space_id) is not room or not room.recording_wanted:
            self._stop_recording(room)  # closed, or switched off, while the recording was set up

    def _stop_recording(self, room: Room) -> None:
        """Close the room's recording now; moving it into storage (an upload, in production) goes on
        apart, on a thread of its own, so no other space's offers or mutes wait behind it."""
        recorder = room.stop_recording()
        if recorder is not None:
            task = asyncio.get_running_loop().create_task(self._finish_recording(recorder.recording_id))
            self.finishing.add(task)
            task.add_done_callback(self.finishing.discard)

    async def _finish_recording(self, recording_id: int) -> None:
        # A database outage past the retries leaves the spool unlocked: the next recovery keeps it.
        try:
            finish = sync_to_async(_apart(recording_finish), thread_sensitive=False)
            await retrying(lambda: finish(recording_id=recording_id), within=settings.SPACES_OUTAGE_RETRY_S)
        except Exception:
            log.exception("recording %s: not finished; the next recovery keeps it", recording_id)

    async def clip(self, message: dict) -> None:
        """Cut "the last 30 s" of a recording this worker is writing, ending when the person asked."""
        clip_id = message["clip_id"]
        room = self.rooms.get(int(message["space_id"]))
        recorder = room.recorder if room is not None else None
        if recorder is None:
            await database_sync_to_async(clip_fail)(clip_id=clip_id, reason="The space isn't being recorded now.")
            return
        recorder.flush()
        waited_ms = max(0, int((time.time() - float(message["asked_at"])) * 1000))
        end_ms = max(0, recorder.elapsed_ms() - waited_ms)
        # Reading the spool and saving the clip go on apart, like finishing a recording.
        cut = sync_to_async(_apart(clip_cut_live), thread_sensitive=False)
        task = asyncio.get_running_loop().create_task(
            cut(clip_id=clip_id, recording_id=recorder.recording_id, spool=recorder.path, now_ms=end_ms)
        )
        self.finishing.add(task)
        task.add_done_callback(self.finishing.discard)


def _apart(function):
    """`function` for a pool thread: a database connection of its own, closed after."""

    def run(**kwargs):
        try:
            return function(**kwargs)
        finally:
            close_old_connections()
            connection.close()

    return run
