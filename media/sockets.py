"""The media half of a space's websocket: offers go to the space's media worker, answers come back.

Mixed into the room's socket on the top floor (`workflows.consumers`): rooms
know nothing of media, and this class knows the room's socket only by what it
uses of it (`space_id`, `user`, `channel_name`, `send_json`, `_refuse`). The
worker decides on its own who may send or hear (`media.signalling.admit`).
Protocol: docs/websocket.md, "Audio".

When workers run apart, each offer is placed (`media.placement`: a speaker on
the space's origin, a listener on the least loaded worker carrying it) and the
socket is watched (`media.watch`): if that worker dies, the client is told
`media.reset` and offers again. A socket placed on another worker than before
leaves the old one.
"""

import time

from django.conf import settings

from media import metrics, placement, signalling
from media.watch import Placed, worker_watch
from media.worker import ensure_in_process_worker
from rooms import events
from spaces_site.outages import REDIS_ERRORS


class MediaSignalling:
    media_open = False
    media_placed: Placed | None = None  # the separate worker this socket's connection is on

    async def extra_message(self, kind, message: dict, ref) -> bool:
        if kind != signalling.OFFER:
            return await super().extra_message(kind, message, ref)
        await self._media_offer(message, ref)
        return True

    async def gone(self) -> None:
        try:
            if self.media_placed is not None:
                worker_watch().detach(self.channel_name)
                await self._media_leave(self.media_placed.index)
            elif self.media_open:
                await self.channel_layer.send(
                    signalling.worker_channel(self.space_id), {"type": signalling.LEAVE, "reply_to": self.channel_name}
                )
        finally:
            await super().gone()

    async def _media_leave(self, index: int) -> None:
        await self.channel_layer.send(
            signalling.worker_channel_for_index(index), {"type": signalling.LEAVE, "reply_to": self.channel_name}
        )

    async def _media_offer(self, message: dict, ref) -> None:
        """Pass an SDP offer to the space's media worker, which checks on its own who may send or hear."""
        sdp, publish = message.get("sdp"), message.get("publish", False)
        if not isinstance(sdp, str) or not isinstance(publish, bool):
            await self._refuse("bad_field", "media.offer needs an 'sdp' string and a 'publish' boolean.", ref=ref)
            return
        if len(sdp) > signalling.MAX_SDP:
            await self._refuse("bad_field", "That offer is too long.", ref=ref)
            return
        if settings.SPACES_MEDIA_IN_PROCESS:
            ensure_in_process_worker()
            channel = signalling.worker_channel(self.space_id)
        else:
            worker = await self._media_place(publish)
            if worker is None:
                await self.send_json(
                    {
                        "type": signalling.ERROR,
                        "code": signalling.UNAVAILABLE,
                        "detail": "The audio server is restarting; connecting again shortly.",
                        "retry_after": settings.SPACES_RETRY_AFTER_S,
                        **({"ref": ref} if ref is not None else {}),
                    }
                )
                return
            if self.media_placed is not None and self.media_placed.index != worker.index:
                await self._media_leave(self.media_placed.index)
            self.media_placed = Placed(self.space_id, worker.index, worker.boot)
            worker_watch().attach(self.channel_name, self.media_placed)
            channel = signalling.worker_channel_for_index(worker.index)
        self.media_open = True
        await self.channel_layer.send(
            channel,
            {
                "type": signalling.OFFER,
                "space_id": self.space_id,
                "user_id": self.user.pk if self.user.is_authenticated else None,
                "reply_to": self.channel_name,
                "sdp": sdp,
                "publish": publish,
                "ref": ref,
                "sent_at": time.time(),
            },
        )

    async def _media_place(self, publish: bool) -> placement.WorkerLoad | None:
        try:
            placed = await placement.place(self.space_id, publish=publish)
        except REDIS_ERRORS:
            return None
        if placed is not None:
            metrics.PLACEMENTS.labels("speaker" if publish else "listener", str(placed.index)).inc()
        return placed

    async def media_reset(self, message):
        """The worker this socket's audio went through died (`media.watch`), or handed the space over: offer again."""
        if message.get("space_id") != self.space_id:
            return
        await self.send_json(events.media_reset(self.space_id).data)  # as the space-wide reset reads

    async def media_answer(self, message):
        await self.send_json(
            self._with_ref(message, {"type": "media.answer", "sdp": message["sdp"], "publish": message["publish"]})
        )

    async def media_error(self, message):
        event = {"type": "media.error", "code": message["code"], "detail": message["detail"]}
        if message.get("retry_after") is not None:
            event["retry_after"] = message["retry_after"]
        await self.send_json(self._with_ref(message, event))

    @staticmethod
    def _with_ref(message: dict, event: dict) -> dict:
        if message.get("ref") is not None:
            event["ref"] = message["ref"]
        return event
