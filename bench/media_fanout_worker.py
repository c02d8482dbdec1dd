"""The worker process of `bench/media_fanout.py`: one room, ours (`--mode room`) or the stock way (`--mode relay`).

`room` hosts one `media.room.Room` exactly as `media.worker.MediaWorker` does
(`answer_speaker` / `answer_listener`, `tap_receiver` on each microphone, a
`ListenerSink` per listener, speakers unmuted, `room.start()`), minus the
channel layer and the database: offers come on a tiny signalling server of its
own on 127.0.0.1 (newline-delimited JSON, `{"role": "speaker"|"listener",
"sdp": ...}` answered by `{"sdp": ...}`).

`edge` is the cascade's edge worker (`bench/media_cascade.py`): an edge room
(`Room(edge=True)`) fed by the worker's own relay socket (`media.cascade`), its
listeners answered as `room`'s are; a `room` worker told `relay` sends its
listener stream to such an edge, as `media.worker` does for a space's edges.

`relay` is aiortc's stock fan-out for comparison: each speaker is received and
decoded by aiortc as usual, and every listener gets
`MediaRelay().subscribe(first speaker's track)` on a normal `RTCRtpSender`,
which encodes per listener. The other speakers' tracks are drained by a
`MediaBlackhole`.

For the figures, the room's own `tick` is wrapped (never changed) to count the
frames waiting for the clicking speaker when a tick begins, the CPU the tick
uses (`time.thread_time`) and the longest gap between ticks; a `gc` callback
times the garbage collector's passes; `breakdown` times each part of the
per-listener send in place (see its docstring). The driver talks to it over
stdin/stdout (`media_fanout_common.serve_control`).
"""

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import random
import time

from media_fanout_common import loopback_only, run_child, serve_control, setup_logging

log = logging.getLogger("bench.worker")


class RoomHost:
    """Ours: the media worker's own objects around one room."""

    def __init__(self, *, edge: bool = False) -> None:
        from media.room import Room

        self.room = Room(1, ssrc=random.getrandbits(32), emit=self._emit, edge=edge)
        self.relay_socket = None  # the cascade's (`relay_to`, or an edge's `open_relay`)
        self.relay_cpu = 0.0  # CPU seconds in the origin's sends to its edges, timed in place
        self.speaking_events = 0
        self.gone: dict[str, int] = {}
        self.next_id = 0
        self.refused = 0
        # Diagnostics only, around the room's own tick: how many frames the first (clicking) speaker has
        # waiting when a tick begins, the CPU the tick itself uses (mix, encode, fan-out), the longest gap
        # between two ticks.
        self.depth_sum = 0
        self.depth_ticks = 0
        self.depth_max = 0
        self.depth_hist = [0, 0, 0, 0, 0]  # ticks that found 0, 1, 2, 3, 4+ frames waiting
        self.tick_cpu = 0.0
        self.tick_gap_max = 0.0
        self.last_tick = 0.0
        tick = self.room.tick

        def counted_tick() -> None:
            first = next(iter(self.room.speakers.values()), None)
            if first is not None:
                depth = len(first.input.pending)
                self.depth_sum += depth
                self.depth_ticks += 1
                self.depth_max = max(self.depth_max, depth)
                self.depth_hist[min(depth, 4)] += 1
            now = time.monotonic()
            if self.last_tick:
                self.tick_gap_max = max(self.tick_gap_max, now - self.last_tick)
            self.last_tick = now
            cpu = time.thread_time()
            tick()
            self.tick_cpu += time.thread_time() - cpu

        self.room.tick = counted_tick
        self.room.start()

    def _emit(self, event) -> None:
        self.speaking_events += 1

    async def open_relay(self) -> list:
        """The worker's relay socket: an edge receives its origin's stream on it, an origin sends from it."""
        from media.cascade import open_relay_socket

        if self.relay_socket is None:

            def deliver(space_id: int, payload: bytes, sequence_number: int, timestamp: int, sender: tuple) -> None:
                self.room.relayed(payload, sequence_number, timestamp)

            self.relay_socket = await open_relay_socket(deliver, host="127.0.0.1")
        return list(self.relay_socket.address)

    async def relay_to(self, address: list) -> dict:
        """Send this room's listener stream to the edge listening at `address` too."""
        await self.open_relay()
        send = self.relay_socket.relay_to(1, (address[0], address[1]))

        def timed_send(payload: bytes, sequence_number: int, timestamp: int) -> None:
            started = time.thread_time()
            send(payload, sequence_number, timestamp)
            self.relay_cpu += time.thread_time() - started

        self.room.add_relay(f"edge-{address[1]}", timed_send)
        return {"relays": len(self.room.relays)}

    async def offer(self, role: str, sdp: str) -> str:
        from media.aiortc_bridge import ListenerSink, tap_receiver
        from media.peer import answer_listener, answer_speaker
        from media.room import Listener, Speaker

        self.next_id += 1
        key = f"{role}-{self.next_id}"
        room = self.room
        if role == "speaker":
            pc, microphone, slots, answer = await answer_speaker(sdp)
            speaker = Speaker(user_id=self.next_id, username=key, pc=pc, slots=slots, muted=False)
            tap_receiver(microphone.receiver, lambda packet: room.on_speaker_packet(key, packet))
            room.add_speaker(key, speaker)
        else:
            pc, transceiver, answer = await answer_listener(sdp, ssrc=room.ssrc)
            room.add_listener(key, Listener(key=key, pc=pc, sink=ListenerSink(transceiver)))

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                if key in room.listeners:
                    self.gone[pc.connectionState] = self.gone.get(pc.connectionState, 0) + 1
                room.remove(key)
                await pc.close()

        return answer

    def stats(self) -> dict:
        room = self.room
        sinks = [listener.sink for listener in room.listeners.values()]
        return {
            "listeners": len(room.listeners),
            "ready": sum(1 for sink in sinks if sink.ready()),
            "sent": room.packets_out,
            "gone": self.gone,
            "ticks": room.ticks,
            "late_ticks": room.late_ticks,
            "speakers": len(room.speakers),
            "speaker_packets": sum(s.input.received for s in room.speakers.values()),
            "speaker_lost": sum(s.input.lost for s in room.speakers.values()),
            "speaking_events": self.speaking_events,
            "depth_sum": self.depth_sum,
            "depth_ticks": self.depth_ticks,
            "depth_max": self.depth_max,
            "depth_hist": self.depth_hist,
            "tick_cpu": self.tick_cpu,
            "tick_gap_max": self.tick_gap_max,
            # Forwarding one voice (issue 14): packets forwarded, the mix's encodes, switches between them.
            "forwarded": room.forwarded,
            "encodes": room.mixer.encodes,
            "switches": room.switches,
            "relayed_in": self.relay_socket.received if self.relay_socket else 0,
            "relayed_out": self.relay_socket.sent if self.relay_socket else 0,
            "relay_cpu": self.relay_cpu,
        }

    def reset_maxima(self) -> None:
        self.depth_max = 0
        self.tick_gap_max = 0.0

    async def breakdown(self, rounds: int) -> dict:
        """CPU per listener per packet of each part of the fan-out, timed in place on the connected listeners.

        The room's clock is paused meanwhile; every round sends one real packet (fresh sequence number) to
        every listener, 20 ms apart as the clock would, so the listeners' processes sleep between packets as
        they do in the run. The `sendto` rounds re-send bytes already protected: listeners drop them as
        replays, the worker's cost is the same.
        """
        from media.aiortc_bridge import serialize

        room = self.room
        if room.task is not None:
            room.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await room.task
        try:

            def alive(listener) -> bool:
                if listener.shape is None or not listener.sink.ready():
                    return False
                pair = listener.sink.dtls.transport._connection._nominated.get(1)
                return pair is not None and pair.protocol.transport is not None

            listeners = [lis for lis in room.listeners.values() if alive(lis)]
            if not listeners:
                return {"listeners": 0}
            shape = listeners[0].shape
            payload = bytes(80)

            def next_packet() -> bytes:
                room.sequence_number = (room.sequence_number + 1) & 0xFFFF
                room.timestamp = (room.timestamp + 960) & 0xFFFFFFFF
                return serialize(shape, payload=payload, sequence_number=room.sequence_number, timestamp=room.timestamp)

            sinks = [lis.sink for lis in listeners]
            pairs = [sink.dtls.transport._connection._nominated[1] for sink in sinks]
            fanout = type(sinks[0]).group(sinks)
            protected: list[bytes] = []

            def fan_out(data: bytes) -> None:
                fanout.send(data)

            def protect(data: bytes) -> None:
                protected[:] = [sink.dtls._tx_srtp.protect(data) for sink in sinks]

            def transport_sendto(_: bytes) -> None:
                for pair, data in zip(pairs, protected, strict=True):
                    pair.protocol.transport.sendto(data, pair.remote_addr)

            def socket_sendto(_: bytes) -> None:
                for pair, data in zip(pairs, protected, strict=True):
                    pair.protocol.transport._sock.sendto(data, pair.remote_addr)

            parts = {}
            for name, part in (
                ("fan_out_total", fan_out),
                ("pylibsrtp_protect", protect),
                ("asyncio_transport_sendto", transport_sendto),
                ("socket_sendto", socket_sendto),
            ):
                spent = 0.0
                for _ in range(rounds):
                    data = next_packet()
                    started = time.thread_time()
                    part(data)
                    spent += time.thread_time() - started
                    await asyncio.sleep(0.02)
                parts[name] = round(spent * 1e6 / rounds / len(sinks), 2)
            return {"listeners": len(sinks), "rounds": rounds, "us_per_listener_packet": parts}
        finally:
            room.start()

    async def close(self) -> None:
        await self.room.close()


class RelayHost:
    """The baseline: aiortc's stock `MediaRelay`, one encode per listener."""

    def __init__(self) -> None:
        from aiortc.contrib.media import MediaBlackhole, MediaRelay

        self.relay = MediaRelay()
        self.source = None
        self.drain = MediaBlackhole()
        self.pcs: dict[str, object] = {}
        self.listeners: list = []
        self.next_id = 0
        self.refused = 0

    async def offer(self, role: str, sdp: str) -> str:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from media.peer import ice_configuration

        self.next_id += 1
        key = f"{role}-{self.next_id}"
        pc = RTCPeerConnection(ice_configuration())
        self.pcs[key] = pc
        if role == "speaker":
            tracks = []
            pc.on("track", tracks.append)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            for track in tracks:
                if self.source is None:
                    # The clicking speaker joins first: its track is relayed, and a drain keeps it read
                    # from the start (as a real room would, before listeners come).
                    self.source = track
                    self.drain.addTrack(self.relay.subscribe(track))
                else:
                    self.drain.addTrack(track)
            await self.drain.start()
        else:
            if self.source is None:
                await pc.close()
                raise RuntimeError("a listener came before the first speaker")
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            pc.addTrack(self.relay.subscribe(self.source))
            self.listeners.append(pc)

            @pc.on("connectionstatechange")
            async def on_state() -> None:
                if pc.connectionState in ("failed", "closed") and pc in self.listeners:
                    self.listeners.remove(pc)
                    await pc.close()

        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    def reset_maxima(self) -> None:
        pass

    def stats(self) -> dict:
        return {
            "listeners": len(self.listeners),
            "ready": sum(1 for pc in self.listeners if pc.connectionState == "connected"),
            "speakers": len(self.pcs) - len(self.listeners),
        }

    async def close(self) -> None:
        await self.drain.stop()
        await asyncio.gather(*(pc.close() for pc in self.pcs.values()), return_exceptions=True)


class GcWatch:
    """Time spent in Python's cyclic garbage collector: a long gen-2 pass stalls the room's clock."""

    def __init__(self) -> None:
        self.started = 0.0
        self.total = 0.0
        self.pause_max = 0.0
        self.full = 0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.started = time.perf_counter()
            return
        pause = time.perf_counter() - self.started
        self.total += pause
        self.pause_max = max(self.pause_max, pause)
        self.full += info["generation"] == 2

    def stats(self) -> dict:
        return {"gc_total": self.total, "gc_pause_max": self.pause_max, "gc_full": self.full}


gc_watch = GcWatch()


async def main(mode: str) -> None:
    loopback_only()
    host = RoomHost(edge=mode == "edge") if mode in ("room", "edge") else RelayHost()
    relay = await host.open_relay() if mode == "edge" else None

    async def signalling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                request = json.loads(line)
                try:
                    answer = {"sdp": await host.offer(request["role"], request["sdp"])}
                except Exception as error:
                    log.exception("offer failed")
                    host.refused += 1
                    answer = {"error": f"{type(error).__name__}: {error}"}
                writer.write((json.dumps(answer) + "\n").encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(signalling, "127.0.0.1", 0, limit=1 << 20)
    port = server.sockets[0].getsockname()[1]

    async def handle(request: dict) -> dict:
        cmd = request["cmd"]
        if cmd == "hello":
            return {"port": port, "pid": os.getpid(), "mode": mode, "relay": relay}
        if cmd == "stats":
            answer = {**host.stats(), **gc_watch.stats(), "refused": host.refused}
            if request.get("reset"):
                host.reset_maxima()
                gc_watch.pause_max = 0.0
            return answer
        if cmd == "relay" and isinstance(host, RoomHost):
            return await host.relay_to(request["to"])
        if cmd == "breakdown" and isinstance(host, RoomHost):
            return await host.breakdown(request.get("rounds", 50))
        if cmd == "stop":
            server.close()
            try:
                await asyncio.wait_for(host.close(), timeout=10)
            except TimeoutError:
                log.warning("closing the peer connections timed out")
            return {"stopped": True}
        raise ValueError(f"unknown command {cmd!r}")

    await serve_control(handle)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=["room", "edge", "relay"], required=True)
    args = parser.parse_args()
    setup_logging(f"worker[{args.mode}]")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_site.settings")
    os.environ["DEBUG"] = "1"
    import django

    django.setup()
    run_child(main(args.mode))
