"""The media half of a space's websocket: offers go to the space's media worker, answers come back.

Mixed into the room's socket on the top floor (`workflows.consumers`): rooms
know nothing of media, and this class knows the room's socket only by what it
uses of it (`space_id`, `user`, `channel_name`, `send_json`, `_refuse`). The
worker decides on its own who may send or hear (`media.signalling.admit`).
Protocol: docs/websocket.md, "Audio".
"""

import time

from django.conf import settings

from media import signalling
from media.worker import ensure_in_process_worker
from spaces_site.outages import REDIS_ERRORS


class MediaSignalling:
    media_open = False

    async def extra_message(self, kind, message: dict, ref) -> bool:
        if kind != signalling.OFFER:
            return await super().extra_message(kind, message, ref)
        await self._media_offer(message, ref)
        return True

    async def gone(self) -> None:
        try:
            if self.media_open:
                await self.channel_layer.send(
                    signalling.worker_channel(self.space_id), {"type": signalling.LEAVE, "reply_to": self.channel_name}
                )
        finally:
            await super().gone()

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
        elif not await self._media_worker_alive():
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
        self.media_open = True
        await self.channel_layer.send(
            signalling.worker_channel(self.space_id),
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

    async def _media_worker_alive(self) -> bool:
        try:
            return await signalling.worker_alive(self.space_id)
        except REDIS_ERRORS:
            return False

    async def media_answer(self, message):
        await self.send_json(
            self._with_ref(message, {"type": "media.answer", "sdp": message["sdp"], "publish": message["publish"]})
        )

    async def media_error(self, message):
        await self.send_json(
            self._with_ref(message, {"type": "media.error", "code": message["code"], "detail": message["detail"]})
        )

    @staticmethod
    def _with_ref(message: dict, event: dict) -> dict:
        if message.get("ref") is not None:
            event["ref"] = message["ref"]
        return event
