"""The media worker: receives signalling on its channel, keeps one `Room` per space it hosts.

It runs as its own process in production (`manage.py media_worker --index N`,
one per core) or as a task inside the web process in the one-command default
(`ensure_in_process_worker`). Either way it is the same loop on the channel
layer: offers in, answers out, and the space's events to follow roles and mutes.
"""

import asyncio
import logging
import random

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from media import signalling
from media.aiortc_bridge import ListenerSink, allow_loopback_candidates, tap_receiver
from media.peer import OfferRefused, answer_listener, answer_speaker
from media.room import Listener, Room, Speaker
from rooms.models import STAGE_ROLES
from rooms.realtime import space_group

log = logging.getLogger(__name__)


class MediaWorker:
    def __init__(self, channel: str, layer=None) -> None:
        self.channel = channel
        self.layer = layer or get_channel_layer()
        self.rooms: dict[int, Room] = {}
        # reply_to (the client's socket) -> space id
        self.peers: dict[str, int] = {}
        if settings.SPACES_MEDIA_ICE_LOOPBACK:
            allow_loopback_candidates()

    async def run(self) -> None:
        log.info("media worker listening on %s", self.channel)
        while True:
            message = await self.layer.receive(self.channel)
            try:
                await self.handle(message)
            except Exception:
                log.exception("media worker: failed on %s", message.get("type"))

    async def handle(self, message: dict) -> None:
        kind = message.get("type")
        if kind == signalling.OFFER:
            await self.offer(message)
        elif kind == signalling.LEAVE:
            await self.leave(message["reply_to"])
        elif kind == "space.event":
            await self.space_event(message["event"])
        elif kind == "account.banned":
            return  # the consumers close; their leave messages follow

    # Offers

    async def offer(self, message: dict) -> None:
        reply_to = message["reply_to"]
        space_id = int(message["space_id"])
        publish = bool(message.get("publish"))
        sdp = message.get("sdp")
        if not isinstance(sdp, str) or len(sdp) > signalling.MAX_SDP:
            await self._refuse(reply_to, "bad_offer", "An offer is an SDP string.")
            return
        admission = await database_sync_to_async(signalling.admit)(
            user_id=message.get("user_id"), space_id=space_id, publish=publish
        )
        if not admission.allowed:
            await self._refuse(reply_to, admission.code, admission.detail)
            return
        await self.leave(reply_to)  # a new offer from the same socket replaces its connection
        room = await self._room(space_id)
        try:
            if publish:
                pc, microphone, slots, answer = await answer_speaker(sdp)
                speaker = Speaker(
                    user_id=message["user_id"], username=admission.username, pc=pc, slots=slots, muted=admission.muted
                )
                tap_receiver(microphone.receiver, lambda packet: room.on_speaker_packet(reply_to, packet))
                room.add_speaker(reply_to, speaker)
            else:
                pc, transceiver, answer = await answer_listener(sdp, ssrc=room.ssrc)
                room.add_listener(reply_to, Listener(key=reply_to, pc=pc, sink=ListenerSink(transceiver)))
        except OfferRefused as error:
            await self._refuse(reply_to, error.code, error.detail)
            return
        self.peers[reply_to] = space_id

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.leave(reply_to)

        await self.layer.send(reply_to, {"type": signalling.ANSWER, "sdp": answer, "publish": publish})

    async def _refuse(self, reply_to: str, code: str, detail: str) -> None:
        await self.layer.send(reply_to, {"type": signalling.ERROR, "code": code, "detail": detail})

    async def leave(self, reply_to: str) -> None:
        space_id = self.peers.pop(reply_to, None)
        room = self.rooms.get(space_id) if space_id is not None else None
        if room is None:
            return
        pc = room.remove(reply_to)
        if pc is not None:
            await pc.close()

    # Rooms

    async def _room(self, space_id: int) -> Room:
        room = self.rooms.get(space_id)
        if room is None:
            room = Room(space_id, ssrc=random.getrandbits(32), emit=lambda event: self._emit(space_id, event))
            self.rooms[space_id] = room
            await self.layer.group_add(space_group(space_id), self.channel)
            room.start()
        return room

    def _emit(self, space_id: int, event: dict) -> None:
        message = {"type": "space.event", "event": event, "audience": "all"}
        asyncio.get_running_loop().create_task(self.layer.group_send(space_group(space_id), message))

    async def space_event(self, event: dict) -> None:
        kind = event.get("type")
        space_id = (event.get("space") or {}).get("id")
        if kind == "space.ended" and space_id in self.rooms:
            await self._close_room(space_id)
        elif kind in ("participant.updated", "participant.removed"):
            await self._participant_changed(event)

    async def _participant_changed(self, event: dict) -> None:
        participant = event.get("participant")
        username = (participant or event)["user"]["username"]
        for room in self.rooms.values():
            for key, speaker in list(room.speakers.items()):
                if speaker.username != username:
                    continue
                if participant is None or participant["role"] not in STAGE_ROLES:
                    # Off the stage: their microphone's path closes at once.
                    self.peers.pop(key, None)
                    pc = room.remove(key)
                    if pc is not None:
                        await pc.close()
                    await self._refuse(key, "not_on_stage", "You are no longer on stage.")
                else:
                    room.set_muted(speaker.user_id, participant["muted"])

    async def close(self) -> None:
        """Hang up every connection (the process is stopping)."""
        for space_id in list(self.rooms):
            await self._close_room(space_id)

    async def _close_room(self, space_id: int) -> None:
        room = self.rooms.pop(space_id)
        for key in [k for k, s in self.peers.items() if s == space_id]:
            self.peers.pop(key)
        await self.layer.group_discard(space_group(space_id), self.channel)
        await room.close()


_in_process: dict[asyncio.AbstractEventLoop, list[asyncio.Task]] = {}


def ensure_in_process_worker() -> None:
    """Start the worker in this process's event loop (the one-command default), once per loop."""
    if not settings.SPACES_MEDIA_IN_PROCESS:
        return
    loop = asyncio.get_running_loop()
    tasks = _in_process.get(loop)
    if tasks is None or any(task.done() for task in tasks):
        stop_in_process_workers()
        workers = [MediaWorker(signalling.worker_channel_for_index(n)) for n in range(settings.SPACES_MEDIA_WORKERS)]
        _in_process[loop] = [loop.create_task(w.run()) for w in workers]


def stop_in_process_workers() -> None:
    for tasks in _in_process.values():
        for task in tasks:
            task.cancel()
    _in_process.clear()
