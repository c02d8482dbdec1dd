"""The media worker: receives signalling on its channel, keeps one `Room` per space it hosts.

It runs as its own process in production (`manage.py media_worker --index N`,
one per core) or as a task inside the web process in the one-command default
(`ensure_in_process_worker`). Either way it is the same loop on the channel
layer: offers in, answers out, and the space's events to follow roles and mutes.

It outlives the channel layer: a read that fails is retried (the outage is
logged once), and after Redis comes back the worker joins its spaces' groups
again and checks its speakers against the database, since events sent while
it was away are gone. Peer connections don't go through Redis, so audio keeps
flowing through an outage. A separate worker stamps a heartbeat
(`signalling.heartbeat`) with its load and, on start, tells the live spaces
whose stage it held in a previous life to offer again (`media.reset`): a
restarted worker rebuilds its rooms from its clients.

Separate workers share rooms (the cascade, docs/media.md): for each space a
worker is either its origin (the stage: speakers, the mix, recording,
captions; it sends the listener stream to the edges over `media.cascade`) or
an edge (`Room(edge=True)`: listeners only, fed by the origin). On each
heartbeat an origin refreshes its claim (`placement.keep_origins`) and drops
the edges that stopped asking; an edge asks its origin again for the stream
(`signalling.RELAY`), and when the origin died it takes part in choosing the
successor, becoming the origin itself (its listeners stay) if chosen.

Its part in recording and in live captions lives beside it, as mixins
(`media.worker_recording`, `media.worker_captions`).
"""

import asyncio
import logging
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache

from media import metrics, placement, signalling
from media.aiortc_bridge import ListenerSink, allow_loopback_candidates, tap_receiver
from media.captions.feed import CaptionsFeed
from media.cascade import RelaySocket, open_relay_socket, same_sender
from media.mixer import FRAME_SAMPLES
from media.peer import OfferRefused, answer_listener, answer_speaker
from media.recording.services import (
    recordings_recover,
    spool_dir,
)
from media.room import Listener, Room, Speaker
from media.signalling import CLIP
from media.worker_captions import CaptionsMixin
from media.worker_recording import RecordingMixin
from rooms import events
from rooms.models import STAGE_ROLES, Space, SpaceState
from spaces_site.layer_watch import layer_watch
from spaces_site.outages import OUTAGE_ERRORS, REDIS_ERRORS, OutageLog, retrying, stop_if_cancelled

log = logging.getLogger(__name__)

# How soon after a listener comes or goes the heartbeat tells placement, rather than at the next beat.
LOAD_BEAT_DELAY_S = 0.05
FRAME_S = 0.020


@dataclass
class EdgeFeed:
    """An edge room's stream: the origin it asked for it, that origin's relay address, since when it is empty."""

    origin: placement.Origin | None = None
    address: tuple | None = None
    empty_since: float | None = None
    # The last packet relayed (sequence number, timestamp, when): a successor origin here goes on from it.
    last: tuple[int, int, float] | None = None
    # Beats in a row the origin's heartbeat was missing: one may be Redis forgetting it, two is a death.
    origin_missing: int = 0


@dataclass
class RelayLease:
    """An edge this origin sends a space's stream to, for as long as the edge keeps asking."""

    boot: str
    address: tuple
    renewed: float


def relay_key(edge_index: int) -> str:
    return f"edge:{edge_index}"


class MediaWorker(RecordingMixin, CaptionsMixin):
    def __init__(self, channel: str, layer=None, *, index: int | None = None) -> None:
        self.channel = channel
        self.layer = layer or get_channel_layer()
        # A worker with an index runs apart and says so: a heartbeat and a reset on start.
        self.index = index
        self.boot_id = uuid.uuid4().hex
        self.rooms: dict[int, Room] = {}
        # What closed rooms had counted (`media.metrics`).
        self.retired_counts: Counter = Counter()
        # reply_to (the client's socket) -> space id
        self.peers: dict[str, int] = {}
        self.outage = OutageLog(f"media worker {channel}: channel layer")
        self.captions: CaptionsFeed | None = None
        self.caption_stats: dict = {}
        # caption key ("<space>:<user>") -> the speaker's payload, kept after they leave for their last line
        self.caption_speakers: dict[str, dict] = {}
        self.background: set[asyncio.Task] = set()
        # Spaces whose recording is being set up (a database round trip), so it starts once.
        self.recording_starts: set[int] = set()
        # Recordings being moved into storage.
        self.finishing: set[asyncio.Task] = set()
        # The cascade (separate workers only): the UDP socket between workers, the rooms this worker carries
        # as an edge (space id -> feed), and the edges its origin rooms send to (space id -> edge index -> lease).
        self.relay_socket: RelaySocket | None = None
        self.edges: dict[int, EdgeFeed] = {}
        self.leases: dict[int, dict[int, RelayLease]] = {}
        self.beat_pending = False
        self.stopping = False
        if settings.SPACES_MEDIA_ICE_LOOPBACK:
            allow_loopback_candidates()
        metrics.worker_watched(self)

    async def run(self) -> None:
        log.info("media worker listening on %s", self.channel)
        watch = layer_watch()
        if watch is not None:
            watch.subscribe(self, self._layer_recovered)
        self._spawn(self._recover_recordings())
        if self.index is not None:
            self.relay_socket = await open_relay_socket(
                self._relayed, host=settings.SPACES_MEDIA_RELAY_HOST, port=settings.SPACES_MEDIA_RELAY_PORT
            )
            self._spawn(self._heartbeat_forever())
            self._spawn(self._announce_reset())
        wait = 0.1
        while True:
            stop_if_cancelled()  # a database call in `handle` may have swallowed a cancellation
            try:
                message = await self.layer.receive(self.channel)
            except REDIS_ERRORS as error:
                stop_if_cancelled()
                self.outage.failed(error)
                if watch is not None:
                    watch.failed(error)
                    await watch.wait_up(wait)
                else:
                    await asyncio.sleep(wait)
                wait = min(wait * 2, 2.0)
                continue
            wait = 0.1
            self.outage.succeeded()
            try:
                await self.handle(message)
            except OUTAGE_ERRORS as error:
                self.outage.failed(error)
            except Exception:
                log.exception("media worker: failed on %s", message.get("type"))

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _heartbeat_forever(self) -> None:
        beat = OutageLog(f"media worker {self.index}: heartbeat")
        while True:
            stop_if_cancelled()
            try:
                await self._beat()
                beat.succeeded()
                await self._keep_cascade()
            except REDIS_ERRORS as error:
                beat.failed(error)
            except Exception:
                log.exception("media worker %s: heartbeat failed", self.index)
            await asyncio.sleep(settings.SPACES_MEDIA_HEARTBEAT_S)

    @property
    def me(self) -> placement.Origin:
        return placement.Origin(self.index, self.boot_id)

    def load(self) -> placement.WorkerLoad:
        """What this worker's heartbeat says of it (`media.placement`)."""
        return placement.WorkerLoad(
            index=self.index,
            boot=self.boot_id,
            listeners=sum(len(room.listeners) for room in self.rooms.values()),
            capacity=settings.SPACES_MEDIA_WORKER_LISTENERS,
            rooms={s: placement.EDGE if s in self.edges else placement.ORIGIN for s in self.rooms},
            relay=self.relay_socket.address if self.relay_socket is not None else None,
        )

    async def _beat(self) -> None:
        load = self.load()
        await signalling.heartbeat(
            self.index,
            self.boot_id,
            listeners=load.listeners,
            capacity=load.capacity,
            rooms=load.rooms,
            relay=list(load.relay) if load.relay else None,
        )

    def _beat_soon(self) -> None:
        """A listener came or went: tell placement now, so the next offers see this worker's load."""
        if self.index is None or self.beat_pending or self.stopping:
            return
        self.beat_pending = True
        self._spawn(self._beat_after(LOAD_BEAT_DELAY_S))

    async def _beat_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self.beat_pending = False
        try:
            await self._beat()
        except REDIS_ERRORS as error:
            self.outage.failed(error)

    # The cascade

    async def _keep_cascade(self) -> None:
        """Once a beat: keep this worker's stages, drop silent edges, keep each edge room fed (or close it)."""
        origins = [space_id for space_id in self.rooms if space_id not in self.edges]
        for space_id in await placement.keep_origins(self.me, origins):
            await self._hand_over(space_id)
        now = time.monotonic()
        for space_id, leases in list(self.leases.items()):
            for edge, lease in list(leases.items()):
                if now - lease.renewed > settings.SPACES_MEDIA_HEARTBEAT_TTL_S:
                    self._drop_lease(space_id, edge)
        if not self.edges:
            return
        workers = await placement.live_workers()
        workers[self.index] = self.load()
        for space_id, feed in list(self.edges.items()):
            room = self.rooms.get(space_id)
            if room is None or self.edges.get(space_id) is not feed:
                continue  # closed, or became the origin, while we waited
            if room.listeners:
                feed.empty_since = None
            elif feed.empty_since is None:
                feed.empty_since = now
            elif now - feed.empty_since >= settings.SPACES_MEDIA_HEARTBEAT_TTL_S:
                await self._close_room(space_id)
                continue
            if feed.origin is not None and feed.origin.index not in workers:
                feed.origin_missing += 1
                if feed.origin_missing < 2:
                    continue
            else:
                feed.origin_missing = 0
            origin = await placement.room_origin(space_id, workers, known=feed.origin)
            if origin == self.me:
                await self._origin_room(space_id)
            elif origin is not None:
                await self._ask_for_stream(space_id, feed, workers[origin.index])

    async def _ask_for_stream(self, space_id: int, feed: EdgeFeed, origin: placement.WorkerLoad) -> None:
        """Ask (again: it is a lease) `origin` to send this edge the space's listener stream."""
        if feed.origin != origin.origin:
            log.info("media worker %s: space %s fed by worker %s", self.index, space_id, origin.index)
        feed.origin, feed.address = origin.origin, origin.relay
        await self.layer.send(
            signalling.worker_channel_for_index(origin.index),
            {
                "type": signalling.RELAY,
                "space_id": space_id,
                "edge": self.index,
                "boot": self.boot_id,
                "address": list(self.relay_socket.address),
            },
        )

    def _relayed(self, space_id: int, payload: bytes, sequence_number: int, timestamp: int, sender: tuple) -> None:
        feed = self.edges.get(space_id)
        if feed is None or not same_sender(sender, feed.address):
            self.relay_socket.refused += 1  # not from this space's origin (or a late packet from the last one)
            return
        feed.last = (sequence_number, timestamp, time.monotonic())
        self.rooms[space_id].relayed(payload, sequence_number, timestamp)

    async def relay_wanted(self, message: dict) -> None:
        """An edge asks for (or renews) a space's listener stream: send it there if this worker is its origin."""
        space_id, edge, boot = int(message["space_id"]), int(message["edge"]), str(message["boot"])
        address = tuple(message["address"])
        if self.relay_socket is None or edge == self.index or space_id in self.edges:
            return
        room = self.rooms.get(space_id)
        if room is None:
            if await cache.aget(signalling.origin_key(space_id)) != self.me.as_dict():
                return  # the edge's view of the origin is behind; its next beat corrects it
            room = await self._origin_room(space_id)
        leases = self.leases.setdefault(space_id, {})
        lease = leases.get(edge)
        if lease is None or (lease.boot, lease.address) != (boot, address):
            room.add_relay(relay_key(edge), self.relay_socket.relay_to(space_id, address))
            log.info("media worker %s: space %s sent on to worker %s", self.index, space_id, edge)
        leases[edge] = RelayLease(boot, address, time.monotonic())

    def relay_unwanted(self, message: dict) -> None:
        self._drop_lease(int(message["space_id"]), int(message["edge"]))

    def _drop_lease(self, space_id: int, edge: int) -> None:
        leases = self.leases.get(space_id, {})
        if leases.pop(edge, None) is not None and space_id in self.rooms and space_id not in self.edges:
            self.rooms[space_id].remove_relay(relay_key(edge))
        if not leases:
            self.leases.pop(space_id, None)

    async def _room_for_offer(self, space_id: int, publish: bool) -> Room | None:
        """The room an admitted offer joins here; None when it belongs elsewhere (a speaker whose stage is on
        another worker) or no origin can be had now: the client is told to try again."""
        if self.index is None:
            return await self._room(space_id)  # in process: every room is whole on its worker
        workers = await placement.live_workers()
        workers[self.index] = self.load()
        origin = await placement.room_origin(space_id, workers, prefer=self.index)
        if origin is None:
            return None
        if origin == self.me:
            return await self._origin_room(space_id)
        if publish:
            return None
        return await self._edge_room(space_id, workers[origin.index])

    async def _origin_room(self, space_id: int) -> Room:
        """This worker holds the space's stage. Carried here as an edge until now (its origin died): the new
        room takes the edge's listeners and SSRC, so they stay connected and hear the new stage."""
        room, feed = self.rooms.get(space_id), self.edges.pop(space_id, None)
        if room is not None and feed is None:
            return room
        if room is None:
            return await self._room(space_id)
        del self.rooms[space_id]
        metrics.room_closed(self, room)
        metrics.ORIGIN_TAKEOVERS.inc()
        listeners = dict(room.listeners)
        room.listeners.clear()
        origin = await self._room(space_id, ssrc=room.ssrc)
        if feed.last is not None:
            # Go on from the stream the listeners had, as after a loss: their decoders see no step back.
            sequence_number, timestamp, at = feed.last
            missed = 1 + int((time.monotonic() - at) / FRAME_S)
            origin.sequence_number = (sequence_number + missed) & 0xFFFF
            origin.timestamp = (timestamp + missed * FRAME_SAMPLES) & 0xFFFFFFFF
        for key, listener in listeners.items():
            origin.add_listener(key, listener)
        await room.close()
        log.info(
            "media worker %s: holds the stage of space %s now (%d listeners kept)", self.index, space_id, len(listeners)
        )
        return origin

    async def _edge_room(self, space_id: int, origin: placement.WorkerLoad) -> Room | None:
        room, feed = self.rooms.get(space_id), self.edges.get(space_id)
        if room is not None and feed is None:
            return None  # this worker's stage moved to another; it hands over at its next beat
        if room is None:
            room = Room(space_id, ssrc=random.getrandbits(32), emit=self._emit, edge=True)
            self.rooms[space_id] = room
            feed = self.edges[space_id] = EdgeFeed()
            await self.layer.group_add(events.media_group(space_id), self.channel)
            room.start()
        if feed.origin != origin.origin:
            await self._ask_for_stream(space_id, feed, origin)
        return room

    async def _hand_over(self, space_id: int) -> None:
        """Another worker holds this space's stage now (this one's heartbeat was late): close the room here and
        tell its clients to offer again, so they are placed anew."""
        keys = [key for key, s in self.peers.items() if s == space_id]
        log.warning(
            "media worker %s: space %s's stage moved to another worker; %d clients told",
            self.index,
            space_id,
            len(keys),
        )
        await self._close_room(space_id)
        for key in keys:
            await self._reset_socket(key, space_id)

    async def _reset_socket(self, reply_to: str, space_id: int) -> None:
        await self.layer.send(reply_to, {"type": signalling.RESET, "space_id": space_id})

    async def _announce_reset(self) -> None:
        """Tell the live spaces this worker serves to offer again: their old connections died with the old worker."""
        space_ids = await retrying(database_sync_to_async(self._live_space_ids), within=60)
        for space_id in space_ids:
            reset = events.media_reset(space_id)
            await retrying(lambda e=reset: events.asend(e, events.EVERYONE, layer=self.layer), within=60)
        if space_ids:
            log.info("media worker %s: asked %d live spaces to reconnect", self.index, len(space_ids))

    async def _recover_recordings(self) -> None:
        """Recordings a dead worker left in this worker's spool: keep what was written (ended early)."""
        folder = spool_dir(self.index)
        finished = await retrying(database_sync_to_async(lambda: recordings_recover(folder=folder)), within=60)
        if finished:
            log.info("media worker %s: kept %d recordings a stopped worker left", self.index, finished)

    def _live_space_ids(self) -> list[int]:
        """The live spaces whose stage a previous life of this worker held (their origin key still names it)."""
        live = list(Space.objects.filter(state=SpaceState.LIVE).values_list("pk", flat=True))
        origins = cache.get_many([signalling.origin_key(pk) for pk in live])
        return [
            pk
            for pk in live
            if (origin := origins.get(signalling.origin_key(pk))) is not None
            and origin["index"] == self.index
            and origin["boot"] != self.boot_id
        ]

    async def _layer_recovered(self) -> None:
        """Redis came back: join the rooms' groups again and catch up on stage changes we didn't hear."""
        for space_id in list(self.rooms):
            await retrying(
                lambda s=space_id: self.layer.group_add(events.media_group(s), self.channel),
                within=settings.SPACES_OUTAGE_RETRY_S,
            )
        for room in list(self.rooms.values()):
            for key, speaker in list(room.speakers.items()):
                admission = await database_sync_to_async(signalling.admit)(
                    user_id=speaker.user_id, space_id=room.space_id, publish=True
                )
                if admission.allowed:
                    room.set_muted(speaker.user_id, admission.muted)
                else:
                    await self._drop_speaker(room, key, admission.code, admission.detail)

    async def handle(self, message: dict) -> None:
        kind = message.get("type")
        if kind == signalling.OFFER:
            await self.offer(message)
        elif kind == signalling.LEAVE:
            await self.leave(message["reply_to"])
        elif kind == events.MESSAGE_TYPE:
            await self.space_event(message)
        elif kind == CLIP:
            await self.clip(message)
        elif kind == signalling.RELAY:
            await self.relay_wanted(message)
        elif kind == signalling.RELAY_STOP:
            self.relay_unwanted(message)
        elif kind == "account.banned":
            return  # the consumers close; their leave messages follow

    # Offers

    async def offer(self, message: dict) -> None:
        if signalling.offer_is_stale(message):
            return  # it waited in the queue while this worker was down; its client has offered again
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
            await self._refuse(reply_to, admission.code, admission.detail, ref=message.get("ref"))
            return
        await self.leave(reply_to)  # a new offer from the same socket replaces its connection
        room = await self._room_for_offer(space_id, publish)
        if room is None:
            await self._refuse(
                reply_to,
                signalling.UNAVAILABLE,
                "The audio is moving to another server; connecting again shortly.",
                ref=message.get("ref"),
                retry_after=settings.SPACES_RETRY_AFTER_S,
            )
            return
        try:
            if publish:
                pc, microphone, slots, answer = await answer_speaker(sdp)
                speaker = Speaker(
                    user_id=message["user_id"],
                    username=admission.username,
                    name=admission.name,
                    pc=pc,
                    slots=slots,
                    muted=admission.muted,
                )
                self.caption_speakers[room.caption_key(speaker.user_id)] = {
                    "username": admission.username,
                    "name": admission.name,
                }
                tap_receiver(microphone.receiver, lambda packet: room.on_speaker_packet(reply_to, packet))
                room.add_speaker(reply_to, speaker)
            else:
                pc, transceiver, answer = await answer_listener(sdp, ssrc=room.ssrc)
                room.add_listener(reply_to, Listener(key=reply_to, pc=pc, sink=ListenerSink(transceiver)))
                self._beat_soon()
        except OfferRefused as error:
            await self._refuse(reply_to, error.code, error.detail, ref=message.get("ref"))
            return
        self.peers[reply_to] = space_id

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                await self.leave(reply_to)

        await self.layer.send(
            reply_to, {"type": signalling.ANSWER, "sdp": answer, "publish": publish, "ref": message.get("ref")}
        )
        # Who is speaking right now: the space's `speaking` events only say when it changes.
        for speaker in [s for s in room.speakers.values() if s.speaking]:
            speaking = events.speaking(room.space_id, speaker.user_id, speaker.username, True)
            await self.layer.send(reply_to, events.envelope(speaking))

    async def _refuse(self, reply_to: str, code: str, detail: str, *, ref=None, retry_after=None) -> None:
        refusal = {"type": signalling.ERROR, "code": code, "detail": detail}
        if ref is not None:
            refusal["ref"] = ref
        if retry_after is not None:
            refusal["retry_after"] = retry_after
        await self.layer.send(reply_to, refusal)

    async def leave(self, reply_to: str) -> None:
        space_id = self.peers.pop(reply_to, None)
        room = self.rooms.get(space_id) if space_id is not None else None
        if room is None:
            return
        pc = room.remove(reply_to)
        self._beat_soon()
        if pc is not None:
            await pc.close()

    # Rooms

    async def _room(self, space_id: int, *, ssrc: int | None = None) -> Room:
        room = self.rooms.get(space_id)
        if room is None:
            room = Room(space_id, ssrc=random.getrandbits(32) if ssrc is None else ssrc, emit=self._emit)
            self.rooms[space_id] = room
            await self.layer.group_add(events.media_group(space_id), self.channel)
            room.start()
            started_at, captions_enabled, recording_enabled = await database_sync_to_async(self._space_clock)(space_id)
            if started_at is not None:
                room.started_epoch = started_at.timestamp()
            room.captions = self._captions_feed()
            room.set_captions(captions_enabled and room.captions is not None)
            room.recording_wanted = bool(recording_enabled)
            if recording_enabled:
                await self._start_recording(room)
        return room

    @staticmethod
    def _space_clock(space_id: int):
        row = (
            Space.objects.filter(pk=space_id).values_list("started_at", "captions_enabled", "recording_enabled").first()
        )
        return row or (None, False, False)

    def _emit(self, event: events.Event) -> None:
        self._spawn(self._send_event_quietly(event))

    async def _send_event_quietly(self, event: events.Event) -> None:
        try:
            await events.asend(event, events.EVERYONE, layer=self.layer)
        except REDIS_ERRORS as error:
            self.outage.failed(error)  # a speaking indicator lost in an outage; the next one follows

    async def space_event(self, message: dict) -> None:
        """The events of the spaces this worker serves that concern media (`events.PUBLIC`)."""
        kind, room = message["kind"], self.rooms.get(message["space_id"])
        if room is None:
            return
        if kind == "space.ended":
            await self._close_room(room.space_id)
        elif room.space_id in self.edges:
            return  # an edge carries listeners only; its origin follows the stage
        elif kind == "space.updated":
            space = events.event_of(message)["space"]
            room.set_captions(bool(space.get("captions_enabled")) and room.captions is not None)
            room.recording_wanted = bool(space.get("recording_enabled"))
            if room.recording_wanted:
                await self._start_recording(room)
            else:
                self._stop_recording(room)
        elif kind in ("participant.updated", "participant.removed") and message.get("user_id") is not None:
            participant = events.event_of(message).get("participant")
            await self._participant_changed(room, message["user_id"], participant)

    async def _participant_changed(self, room: Room, user_id: int, participant: dict | None) -> None:
        """Someone's place in this room's space changed (`participant` None: removed): their microphone follows
        it, in this room only (the same person may be on stage in another space this worker serves)."""
        for key, speaker in list(room.speakers.items()):
            if speaker.user_id != user_id:
                continue
            if participant is None or participant["role"] not in STAGE_ROLES:
                await self._drop_speaker(room, key, "not_on_stage", "You are no longer on stage.")
            else:
                room.set_muted(speaker.user_id, participant["muted"])

    async def _drop_speaker(self, room: Room, key: str, code: str, detail: str) -> None:
        """Off the stage: their microphone's path closes at once."""
        self.peers.pop(key, None)
        pc = room.remove(key)
        if pc is not None:
            await pc.close()
        await self._refuse(key, code, detail)

    async def close(self) -> None:
        """Hang up every connection (the process is stopping); run apart, stop beating and say so at once, so
        placement and the web processes' watches move this worker's clients without waiting for the expiry."""
        self.stopping = True
        if self.index is not None:
            for task in list(self.background):
                task.cancel()
            try:
                await signalling.heartbeat(self.index, self.boot_id, stopped=True)
            except REDIS_ERRORS as error:
                self.outage.failed(error)  # it expires on its own
        for space_id in list(self.rooms):
            await self._close_room(space_id)
        await asyncio.gather(*self.finishing, return_exceptions=True)
        if self.relay_socket is not None:
            self.relay_socket.close()
        if self.captions is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.captions.close)

    async def _close_room(self, space_id: int) -> None:
        room = self.rooms.pop(space_id)
        metrics.room_closed(self, room)
        for key in [k for k, s in self.peers.items() if s == space_id]:
            self.peers.pop(key)
        self.leases.pop(space_id, None)
        feed = self.edges.pop(space_id, None)
        if feed is not None and feed.origin is not None:
            try:
                await self.layer.send(
                    signalling.worker_channel_for_index(feed.origin.index),
                    {"type": signalling.RELAY_STOP, "space_id": space_id, "edge": self.index},
                )
            except REDIS_ERRORS as error:
                self.outage.failed(error)  # the origin's lease on this edge runs out on its own
        try:
            await self.layer.group_discard(events.media_group(space_id), self.channel)
        except REDIS_ERRORS as error:
            self.outage.failed(error)  # the membership expires on its own
        await room.close()
        self._stop_recording(room)


_in_process: dict[asyncio.AbstractEventLoop, list[tuple[MediaWorker, asyncio.Task]]] = {}


def ensure_in_process_worker() -> None:
    """Start the worker in this process's event loop (the one-command default), once per loop."""
    if not settings.SPACES_MEDIA_IN_PROCESS:
        return
    loop = asyncio.get_running_loop()
    running = _in_process.get(loop)
    if running is None or any(task.done() for _, task in running):
        stop_in_process_workers()
        workers = [MediaWorker(signalling.worker_channel_for_index(n)) for n in range(settings.SPACES_MEDIA_WORKERS)]
        _in_process[loop] = [(w, loop.create_task(w.run())) for w in workers]


def in_process_workers() -> list[MediaWorker]:
    return [worker for running in _in_process.values() for worker, _ in running]


def stop_in_process_workers() -> None:
    for running in _in_process.values():
        for worker, task in running:
            task.cancel()
            if worker.captions is not None:
                worker.captions.close()
    _in_process.clear()
