"""The media worker's part in live captions: its captions process, and the lines it sends and stores.

A mixin of `media.worker.MediaWorker`; it uses the worker's `rooms`,
`layer`, `outage`, `captions` (the feed, started on first need),
`caption_speakers` (who a caption key names), `caption_stats` and `_spawn`.
"""

import asyncio

from channels.db import database_sync_to_async
from django.conf import settings

from media.captions.feed import CaptionsFeed
from rooms import events
from rooms.services import caption_line_store
from spaces_site.outages import OUTAGE_ERRORS, REDIS_ERRORS


class CaptionsMixin:
    def _captions_feed(self) -> CaptionsFeed | None:
        if not settings.SPACES_CAPTIONS_ENGINE:
            return None
        if self.captions is None:
            self.captions = CaptionsFeed(
                settings.SPACES_CAPTIONS_ENGINE,
                self._on_caption_message,
                asyncio.get_running_loop(),
                model_dir=settings.SPACES_CAPTIONS_MODEL_DIR,
                device=settings.SPACES_CAPTIONS_DEVICE,
            )
        return self.captions

    def _on_caption_message(self, message: dict) -> None:
        kind = message.get("t")
        if kind == "line":
            self._caption_line(message)
        elif kind == "status":
            for space_id, room in self.rooms.items():
                if room.captions_on:
                    self._spawn(self._send_captions(events.captions_status(space_id, message["behind"])))
        elif kind == "stats":
            self.caption_stats = message

    def _caption_line(self, message: dict) -> None:
        space_id, user_id = (int(part) for part in message["key"].split(":"))
        room = self.rooms.get(space_id)
        speaker = self.caption_speakers.get(message["key"], {"username": "", "name": ""})
        event = events.caption(
            space_id,
            final=message["final"],
            line=f"{user_id}-{message['line']}",
            speaker=speaker,
            text=message["text"],
            start_ms=message["start_ms"],
            end_ms=message["end_ms"],
        )
        if room is not None and room.captions_on:
            self._spawn(self._send_captions(event))
        if message["final"]:
            # Said while captions were on: part of the transcript even if they were switched off since.
            self._spawn(self._store_line(space_id, user_id, event.data))

    async def _send_captions(self, event: events.Event) -> None:
        try:
            await events.asend(event, events.CAPTIONS, layer=self.layer)
        except REDIS_ERRORS as error:
            self.outage.failed(error)

    async def _store_line(self, space_id: int, user_id: int, line: dict) -> None:
        try:
            await database_sync_to_async(caption_line_store)(
                space_id=space_id,
                speaker_id=user_id,
                line_key=line["line"],
                text=line["text"],
                start_ms=line["start_ms"],
                end_ms=line["end_ms"],
            )
        except OUTAGE_ERRORS as error:
            self.outage.failed(error)
