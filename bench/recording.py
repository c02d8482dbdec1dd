"""Recording benchmark: R rooms recording at once in one media worker, L listeners each; the worker's extra CPU.

    .venv/bin/python bench/recording.py [--rooms 20] [--listeners 50] [--steps 10,20,30,40]
        [--window 15] [--pattern ABBAABBA] [--timed 10] [--keep]

Everything runs on this machine, over 127.0.0.1 only, in separate processes:

- the worker (this file, `--worker`): the real `media.worker.MediaWorker`
  (in-memory channel layer, a throwaway SQLite database) with one small TCP
  signalling server per room in front of it (newline-delimited JSON, as
  `bench/media_fanout_clients.py` speaks): each offer goes to the worker's
  channel as a `media.offer`, as the space's websocket would pass it on, and
  its `media.answer` comes back. Each room is a live space whose host is on
  stage, unmuted; recording is switched with `rooms.services.recording_set`
  as the host, so the worker follows its `space.updated` event:
  `recording_begin`, a `Recorder` in its spool folder, and on the way off
  `recording_finish` into Django's storage (MEDIA_ROOT in a temporary folder).
  (`recording_set` is a web-side service; it runs in the worker's process only
  because the in-memory channel layer lives in one process, and the URLconf it
  needs is loaded before anything is measured.)
- one speaker per room (`bench/recording_clients.py --role speakers`), all in
  one process, each sending human speech (13.4 s of A Tale of Two Cities and 2 s
  of silence, looped, Opus-encoded once beforehand) at real-time pace; a
  speaker whose connection dies joins again;
- anonymous listeners, the same number in every room, over `--listener-procs`
  processes (niced +10): full aiortc peer connections (ICE, DTLS-SRTP) that
  count and drop the RTP datagrams before aiortc decrypts them. The worker does
  all of its per-listener work; the clients stay light enough for 2 cores.

The listeners come in steps (`--steps`, then `--listeners`), a 6 s window
without recording at each. A step is held when the rooms tick at >= 49.5/s,
every ready listener is sent as much, every room has its speaker, and the
worker uses < 90 % of a core (its one event loop; past that, more work shows as
late ticks more than as CPU, so a difference could not be measured). The ramp
stops at the first step not held and goes back to the last one held.

There it measures windows of `--window` seconds in the order of `--pattern`
(A: recording off, B: on; ABBA cancels a linear drift), switching between
windows and letting the worker settle: the worker process's CPU (utime + stime
from /proc), its RSS, each room's ticks, late ticks and `Mixer.encodes`, the
packets and bytes each `Recorder` wrote (and silence it padded in), what the
listeners were sent and received, and the CPU of the clients and of other
work on the machine. Then, recording on, one more window with `Recorder.write`
timed in place (CPU time, its page writes included; the clock reads' own cost
is reported beside it): the same cost measured directly, not as a difference.
Last it stops recording, reads the `Recording` rows (size, duration) and
decodes the longest stored file.

Figures: extra worker CPU per recorded room = (mean B - mean A) / R, as a
percent of one core (goal <= 1 %), and per neighbouring B/A pair for its
spread; bytes written per minute per room (spool bytes in the B windows, and
each stored recording's size / duration); RSS difference per recorded room;
encodes per tick (one encode a 20 ms tick: at most 1). About 4 minutes.
Progress goes to stdout; the last line is one JSON object. Every child process
is stopped at the end, and the temporary folder removed (`--keep` keeps it).
"""

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from media_fanout import Child, Deadline, r, steps_arg
from media_fanout_common import (
    PACKETS_PER_S,
    cpu_split,
    loopback_only,
    machine_ticks,
    run_child,
    serve_control,
    setup_logging,
)

SITE_FOLDERS = {"MEDIA_ROOT": "uploads", "SPACES_RECORDING_SPOOL_DIR": "spool"}
GOAL = {"extra_cpu_pct_of_core_per_recorded_room": 1.0}
CALL_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 40.0
SWITCH_TIMEOUT_S = 60.0
DELIVERED_ENOUGH = 0.95  # a listener that got less than this share of 50 packets/s in a window is lagging
HELD_TICKS_PER_S = 49.5  # per room, and packets per listener: the worker keeps its 20 ms clock
WORKER_SATURATED = 0.9  # of a core: past this, more work shows as late ticks more than as CPU
OTHER_WORK = 0.4  # cores used outside this benchmark that make a step that was not held worth measuring again
FIT_FIGURES = ("worker_cores", "ticks_per_room_per_s", "late_ticks", "sent_per_listener_per_s", "other_cores")


def say(message: str) -> None:
    print(f"[recording {time.strftime('%H:%M:%S')}] {message}", flush=True)


# The worker process


class WorkerHost:
    """The real MediaWorker, with a signalling port per room and the bench's own probes around it."""

    def __init__(self) -> None:
        from channels.layers import get_channel_layer

        from media import signalling
        from media.recording.recorder import Recorder
        from media.worker import MediaWorker

        self.layer = get_channel_layer()
        self.channel = signalling.worker_channel_for_index(0)
        self.worker = MediaWorker(self.channel, self.layer)
        loopback_only()  # after the worker's own allow_loopback_candidates: 127.0.0.1 only
        # What reaches the worker's channel, by type (space events by their own type).
        self.messages: dict[str, int] = {}
        handle = self.worker.handle

        async def counted_handle(message: dict) -> None:
            kind = message.get("type", "?")
            if kind == "space.event":
                kind = f"space.event/{message.get('kind')}"
            self.messages[kind] = self.messages.get(kind, 0) + 1
            await handle(message)

        self.worker.handle = counted_handle
        self.task = asyncio.get_running_loop().create_task(self.worker.run())
        self.servers: list[asyncio.Server] = []
        self.hosts: dict[int, int] = {}  # space id -> its host's user id
        self.refused: dict[str, int] = {}
        self.write = Recorder.write
        self.timed_cpu = 0.0
        self.timed_calls = 0
        self.timing_overhead = 0.0

    async def serve(self, rooms: list[dict]) -> dict:
        ports = []
        for room in rooms:
            self.hosts[room["space"]] = room["host"]
            server = await asyncio.start_server(partial(self.signal, room), "127.0.0.1", 0, limit=1 << 20)
            self.servers.append(server)
            ports.append(server.sockets[0].getsockname()[1])
        return {"ports": ports, "pid": os.getpid()}

    async def signal(self, room: dict, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One offer, as the space's websocket passes it on: the host publishes, listeners are anonymous."""
        from media import signalling

        try:
            request = json.loads(await reader.readline())
            publish = request["role"] == "speaker"
            reply_to = await self.layer.new_channel()
            offer = {
                "type": signalling.OFFER,
                "space_id": room["space"],
                "user_id": room["host"] if publish else None,
                "reply_to": reply_to,
                "sdp": request["sdp"],
                "publish": publish,
            }
            await self.layer.send(self.channel, offer)
            answer = await asyncio.wait_for(self.layer.receive(reply_to), CALL_TIMEOUT_S)
            if answer.get("type") == signalling.ANSWER:
                reply = {"sdp": answer["sdp"]}
            else:
                code = answer.get("code", "?")
                self.refused[code] = self.refused.get(code, 0) + 1
                reply = {"error": f"{code}: {answer.get('detail')}"}
            writer.write((json.dumps(reply) + "\n").encode())
            await writer.drain()
        except Exception as error:  # noqa: BLE001 - counted and answered; the client reports it
            name = type(error).__name__
            self.refused[name] = self.refused.get(name, 0) + 1
            with contextlib.suppress(ConnectionError):
                writer.write((json.dumps({"error": f"{name}: {error}"}) + "\n").encode())
                await writer.drain()
        finally:
            writer.close()

    def stats(self) -> dict:
        rooms = {}
        for space_id, room in self.worker.rooms.items():
            recorder = room.recorder
            sinks = [listener.sink for listener in room.listeners.values()]
            rooms[str(space_id)] = {
                "ticks": room.ticks,
                "late_ticks": room.late_ticks,
                "encodes": room.mixer.encodes,
                "speakers": len(room.speakers),
                "speaker_packets": sum(s.input.received for s in room.speakers.values()),
                "listeners": len(sinks),
                "ready": sum(1 for sink in sinks if sink.ready()),
                "sent": room.packets_out,
                "recording": recorder.recording_id if recorder else None,
                "rec_packets": recorder.writer.packets if recorder else 0,
                "rec_bytes": recorder.writer.bytes_written if recorder else 0,
                "rec_padded": recorder.padded if recorder else 0,
            }
        return {
            "rooms": rooms,
            "timed_cpu": self.timed_cpu,
            "timed_calls": self.timed_calls,
            "timing_overhead": self.timing_overhead,
            "peers": len(self.worker.peers),
            "refused": self.refused,
            "messages": self.messages,
        }

    async def record(self, on: bool) -> dict:
        """The hosts switch recording on or off; wait until the worker has followed (and finished the files)."""
        from channels.db import database_sync_to_async

        from accounts.models import User
        from media.models import Recording, RecordingState
        from rooms.services.recording import recording_set

        def switch() -> None:
            for space_id, host_id in self.hosts.items():
                recording_set(actor=User.objects.get(pk=host_id), space_id=space_id, on=on)

        started = time.monotonic()
        await database_sync_to_async(switch)()
        count = database_sync_to_async(lambda: Recording.objects.filter(state=RecordingState.RECORDING).count())
        while True:
            followed = all((room.recorder is not None) == on for room in self.worker.rooms.values())
            if followed and not self.worker.recording_starts and (on or await count() == 0):
                break
            if time.monotonic() - started > SWITCH_TIMEOUT_S:
                raise TimeoutError(f"the worker did not switch recording {'on' if on else 'off'}")
            await asyncio.sleep(0.1)
        return {"seconds": time.monotonic() - started}

    def time_recorder(self, on: bool) -> None:
        """Time each `Recorder.write` in CPU time (its page writes included), or stop timing."""
        from media.recording.recorder import Recorder

        write = self.write

        def timed_write(recorder, packet: bytes) -> None:
            started = time.thread_time()
            write(recorder, packet)
            self.timed_cpu += time.thread_time() - started
            self.timed_calls += 1

        Recorder.write = timed_write if on else write
        if on:  # what the two clock reads themselves cost, per write
            started = time.thread_time()
            for _ in range(10_000):
                time.thread_time()
            self.timing_overhead = (time.thread_time() - started) / 10_000 * 2

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        await self.worker.close()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def worker_main() -> None:
    from django.urls import get_resolver

    # The hosts' switch (`recording_set`, a web-side service run here because the in-memory channel layer
    # lives in one process) builds URLs for its event: load the URLconf now, not in a measured window.
    get_resolver().url_patterns  # noqa: B018
    host = WorkerHost()

    async def handle(request: dict) -> dict:
        cmd = request["cmd"]
        if cmd == "serve":
            return await host.serve(request["rooms"])
        if cmd == "stats":
            return host.stats()
        if cmd == "record":
            return await host.record(bool(request["on"]))
        if cmd == "time_recorder":
            host.time_recorder(bool(request["on"]))
            return {}
        if cmd == "stop":
            await asyncio.wait_for(host.close(), timeout=30)
            return {"stopped": True}
        raise ValueError(f"unknown command {cmd!r}")

    await serve_control(handle)


# The driver


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The machine's busy share (all cores, other work included) between two `machine_ticks()` readings."""
    return (after[0] - before[0]) / max(1, after[1] - before[1])


def throwaway_site(workdir: Path) -> dict[str, str]:
    """Settings for a site that lives in `workdir` (SQLite, uploads, the spool) on loopback ICE."""
    return {
        "DJANGO_SETTINGS_MODULE": "spaces_site.settings",
        "DEBUG": "1",
        "SPACES_MEDIA_ICE_LOOPBACK": "1",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        **{name: str(workdir / folder) for name, folder in SITE_FOLDERS.items()},
    }


def prepare(args: argparse.Namespace, workdir: Path) -> tuple[list[dict], Path]:
    """A throwaway database with R live spaces, each hosted by its speaker (on stage, unmuted); the speech."""
    from django.core.management import call_command

    from accounts.models import User
    from rooms import services
    from rooms.models import Participant
    from tests.media.speech import TWO_CITIES_S, speech_wav

    call_command("migrate", verbosity=0)
    rooms = []
    for n in range(args.rooms):
        host = User.objects.create(username=f"rec_host{n}", hosting_granted=True)
        space = services.space_create(host=host, title=f"recording bench {n}", captions_enabled=False)
        Participant.objects.filter(space=space, user=host).update(muted=False)
        rooms.append({"space": space.pk, "host": host.pk})
    wav = speech_wav(workdir / "speech.wav", "two_cities.wav", TWO_CITIES_S, silence_after=2.0)
    return rooms, wav


class Bench:
    def __init__(self, args: argparse.Namespace, log_dir: Path) -> None:
        self.args = args
        self.log_dir = log_dir
        self.deadline = Deadline(args.budget)
        self.worker = Child("worker", "recording.py", ["--worker"], log_dir)
        self.speakers: Child | None = None
        self.pools: list[Child] = []
        self.windows: list[dict] = []
        self.fits: list[dict] = []
        self.per_room = args.listeners
        self.connected = 0

    @property
    def children(self) -> list[Child]:
        return [c for c in (self.worker, self.speakers, *self.pools) if c is not None]

    async def open(self, rooms: list[dict], wav: Path) -> None:
        args = self.args
        await self.worker.start()
        served = await self.worker.call("serve", timeout=self.deadline.left(60), rooms=rooms)
        ports = [str(p) for p in served["ports"]]
        say(f"worker pid {self.worker.pid}: {len(ports)} rooms, signalling on 127.0.0.1:{ports[0]}…{ports[-1]}")
        self.speakers = Child(
            "speakers",
            "recording_clients.py",
            ["--role", "speakers", "--ports", ",".join(ports), "--wav", str(wav)],
            self.log_dir,
        )
        procs = max(1, min(args.listener_procs, len(ports)))
        self.pools = [
            Child(
                f"listeners{i}",
                "recording_clients.py",
                ["--role", "listeners", "--ports", ",".join(ports[i::procs]), "--name", str(i)],
                self.log_dir,
            )
            for i in range(procs)
        ]
        await asyncio.gather(*(c.start() for c in (self.speakers, *self.pools)))
        for pool in self.pools:
            os.setpriority(os.PRIO_PROCESS, pool.pid, args.client_nice)  # the load generator yields first
        joined = await self.speakers.call("join", timeout=self.deadline.left(90), connect_timeout=CONNECT_TIMEOUT_S)
        say(f"{joined['connected']} / {len(ports)} speakers connected")
        if joined["connected"] != len(ports):
            raise RuntimeError(f"only {joined['connected']} of {len(ports)} speakers connected")

    async def _pools(self, cmd: str, timeout: float, **params) -> list[dict]:
        return await asyncio.gather(
            *(
                pool.call(cmd, timeout=self.deadline.left(timeout), connect_timeout=CONNECT_TIMEOUT_S, **params)
                for pool in self.pools
            )
        )

    async def ramp(self) -> None:
        """Listeners per room up the steps to `--listeners`, a window (recording off) at each; stop at the first
        step the worker does not hold, and go back to the last one it held.

        Held: the rooms tick at >= 49.5/s on average and every ready listener is sent as much. A worker
        that falls behind skips ticks (and so does less work): its CPU could not be compared between windows.
        """
        args = self.args
        steps = sorted({n for n in args.steps if n < args.listeners} | {args.listeners})
        rooms = args.rooms
        reserve = self.reserve()
        held = None
        for n in steps:
            if self.deadline.left() < reserve + args.fit_window + args.settle + 20:
                say(f"no time left to try {n} listeners per room")
                break
            started = time.monotonic()
            grown = await self._pools("grow", 300, per_room=n, concurrency=args.connect_concurrency)
            self.per_room = n
            self.connected = sum(g["connected"] for g in grown)
            failed = sum(g["failed"] for g in grown)
            say(
                f"{self.connected} / {n * rooms} listeners connected ({n} per room) in "
                f"{time.monotonic() - started:.1f}s" + (f", {failed} failed in all" if failed else "")
            )
            await asyncio.sleep(self.deadline.left(args.settle))
            w = await self.window(f"ramp{n}", args.fit_window)
            if not w["held"] and w["other_cores"] >= OTHER_WORK:
                say(f"other work took {w['other_cores']:.2f} cores: once more")
                w = await self.window(f"ramp{n}", args.fit_window)
            ok = w["held"] and self.connected >= 0.95 * n * rooms
            figures_at_n = {k: r(w[k], 4) if isinstance(w[k], float) else w[k] for k in FIT_FIGURES}
            self.fits.append({"listeners_per_room": n, "connected": self.connected, "held": ok, **figures_at_n})
            if not ok:
                break
            held = n
        if held is None:
            say("the worker did not keep its clock at the first step: measuring there anyway")
            held = steps[0]
        if held < self.per_room:
            shrunk = await self._pools("shrink", 60, per_room=held)
            self.connected = sum(s["connected"] for s in shrunk)
            until = time.monotonic() + 20
            while time.monotonic() < until:  # the worker drops a listener when its connection closes
                stats = await self.worker.call("stats", timeout=self.deadline.left(CALL_TIMEOUT_S))
                left = sum(room["listeners"] for room in stats["rooms"].values())
                if left <= held * rooms:
                    break
                await asyncio.sleep(0.5)
            say(f"back to {held} listeners per room: {self.connected} connected, the worker has {left}")
        self.per_room = held

    def reserve(self) -> float:
        """Seconds the A/B windows, the switches and the timed window need."""
        args = self.args
        switches = sum(1 for a, b in zip("A" + args.pattern, args.pattern, strict=False) if a != b) + 2
        return len(args.pattern) * (args.window + 1) + switches * (args.settle + 4) + args.timed + 15

    async def snapshot(self) -> dict:
        pid = self.worker.pid
        cpus = {c.name: c.cpu() for c in self.children}
        kernel = cpu_split(pid)[1]
        loop = sum(cpu_split(pid, pid))
        ticks = machine_ticks()
        at = time.monotonic()
        rss = rss_kib(pid)
        stats, speakers, *pools = await asyncio.gather(
            self.worker.call("stats", timeout=self.deadline.left(CALL_TIMEOUT_S)),
            self.speakers.call("snapshot", timeout=self.deadline.left(CALL_TIMEOUT_S)),
            *(p.call("snapshot", timeout=self.deadline.left(CALL_TIMEOUT_S)) for p in self.pools),
        )
        return {
            "at": at,
            "cpus": cpus,
            "kernel": kernel,
            "loop": loop,
            "ticks": ticks,
            "rss": rss,
            "worker": stats,
            "speakers": speakers,
            "pools": pools,
        }

    async def window(self, label: str, seconds: float) -> dict:
        s0 = await self.snapshot()
        await asyncio.sleep(self.deadline.left(seconds))
        s1 = await self.snapshot()
        w = figures(label, s0, s1, self.worker.name, [p.name for p in self.pools])
        self.windows.append(w)
        say(
            f"{label} ({'recording' if w['recording'] else 'not recording'}): worker "
            f"{w['worker_cores'] * 100:.1f}% of a core ({w['worker_kernel_cores'] * 100:.1f}% kernel, loop thread "
            f"{w['worker_loop_cores'] * 100:.1f}%), RSS {w['worker_rss_kib'] / 1024:.1f} MiB | "
            f"{w['ticks_per_room_per_s']:.2f} ticks/s per room, {w['late_ticks']} late"
            f"{'' if w['held'] else ' (NOT HELD)'}, encodes/tick {w['encodes_per_tick_min']:.3f} to "
            f"{w['encodes_per_tick_max']:.3f} | speakers {w['speakers']} ({w['speaker_packets_per_room_per_s']:.1f} "
            f"packets/s each) | listeners ready {w['listeners_ready']}, sent {w['sent_per_listener_per_s']:.2f}/s "
            f"each, received {w['received_per_listener_per_s']:.2f}/s each ({w['listeners_below_95pct']} below 95 %) "
            f"| recorded {w['rec_packets_per_room_per_s']:.2f} packets/s and "
            f"{w['rec_bytes_per_min_per_room'] / 1024:.1f} KiB/min per room, {w['rec_padded']} padded | clients "
            f"{w['clients_cores']:.2f} + speakers {w['speakers_cores']:.2f} cores, machine "
            f"{w['machine_busy'] * 100:.0f}% (others {w['other_cores']:.2f} cores) | worker's channel: "
            f"{w['worker_messages_per_s']}"
        )
        return w

    async def switch(self, on: bool) -> None:
        done = await self.worker.call("record", timeout=self.deadline.left(SWITCH_TIMEOUT_S + 10), on=on)
        say(f"recording switched {'on' if on else 'off'} by the hosts; the worker followed in {done['seconds']:.1f}s")
        await asyncio.sleep(self.deadline.left(self.args.settle))

    async def run(self) -> dict:
        args = self.args
        await self.ramp()
        recording = False
        for n, kind in enumerate(args.pattern):
            if (kind == "B") != recording:
                recording = kind == "B"
                await self.switch(recording)
            await self.window(f"{kind}{n + 1}", args.window)
        timed = None
        if args.timed > 0:
            if not recording:
                recording = True
                await self.switch(True)
            await self.worker.call("time_recorder", on=True)
            timed = await self.window("timed", args.timed)
            await self.worker.call("time_recorder", on=False)
        if recording:
            await self.switch(False)
        final = await self.worker.call("stats", timeout=self.deadline.left(CALL_TIMEOUT_S))
        return {"timed": timed, "final": final}

    async def close(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.children), return_exceptions=True)


def figures(label: str, s0: dict, s1: dict, worker: str, pools: list[str]) -> dict:
    """One window's figures from two snapshots."""
    elapsed = s1["at"] - s0["at"]
    cores = {name: (s1["cpus"][name] - s0["cpus"][name]) / elapsed for name in s0["cpus"]}
    busy = busy_share(s0["ticks"], s1["ticks"])
    rooms0, rooms1 = s0["worker"]["rooms"], s1["worker"]["rooms"]
    ratios, ticks, late, sent, ready, rec_packets, rec_bytes, padded, recorded = [], 0, 0, 0, 0, 0, 0, 0, 0
    speakers = spoken = 0
    for key, after in rooms1.items():
        before = rooms0.get(key)
        if before is None:
            continue
        dt = after["ticks"] - before["ticks"]
        ticks += dt
        late += after["late_ticks"] - before["late_ticks"]
        ratios.append((after["encodes"] - before["encodes"]) / max(1, dt))
        sent += after["sent"] - before["sent"]
        ready += after["ready"]
        speakers += min(before["speakers"], after["speakers"])
        spoken += after["speaker_packets"] - before["speaker_packets"]
        if after["recording"] is not None and after["recording"] == before["recording"]:
            recorded += 1
            rec_packets += after["rec_packets"] - before["rec_packets"]
            rec_bytes += after["rec_bytes"] - before["rec_bytes"]
            padded += after["rec_padded"] - before["rec_padded"]
    n_rooms = max(1, len(rooms1))
    received, below, listeners = 0, 0, 0
    for before, after in zip(s0["pools"], s1["pools"], strict=True):
        counts0, counts1 = before["rtp_per_connection"], after["rtp_per_connection"]
        deltas = [c1 - (counts0[i] if i < len(counts0) else 0) for i, c1 in enumerate(counts1)]
        received += sum(deltas)
        seconds = after["t"] - before["t"]
        below += sum(1 for d in deltas if d < DELIVERED_ENOUGH * PACKETS_PER_S * seconds)
        below += max(0, after["connected"] - len(deltas))  # connected, but not one packet yet
        listeners += after["connected"]
    ours = sum(cores.values())
    m0, m1 = s0["worker"]["messages"], s1["worker"]["messages"]
    ticks_per_room = ticks / n_rooms / elapsed
    rejoins = s1["speakers"]["rejoins"] - s0["speakers"]["rejoins"]
    return {
        "label": label,
        "recording": recorded > 0,
        "seconds": round(elapsed, 2),
        "held": ticks_per_room >= HELD_TICKS_PER_S
        and sent / max(1, ready) / elapsed >= HELD_TICKS_PER_S
        and cores[worker] < WORKER_SATURATED
        and speakers == len(rooms1)
        and rejoins == 0,
        "speaker_rejoins": rejoins,
        "worker_cores": cores[worker],
        "worker_kernel_cores": (s1["kernel"] - s0["kernel"]) / elapsed,
        "worker_loop_cores": (s1["loop"] - s0["loop"]) / elapsed,
        "worker_rss_kib": (s0["rss"] + s1["rss"]) / 2,
        "ticks_per_room_per_s": ticks_per_room,
        "late_ticks": late,
        "encodes_per_tick_min": min(ratios, default=0.0),
        "encodes_per_tick_max": max(ratios, default=0.0),
        "speakers": speakers,
        "speaker_packets_per_room_per_s": spoken / n_rooms / elapsed,
        "listeners_ready": ready,
        "sent_per_listener_per_s": sent / max(1, ready) / elapsed,
        "listeners_connected": listeners,
        "received_per_listener_per_s": received / max(1, listeners) / elapsed,
        "listeners_below_95pct": below,
        "rooms_recording": recorded,
        "rec_packets_per_room_per_s": rec_packets / max(1, recorded) / elapsed,
        "rec_bytes_per_min_per_room": rec_bytes / max(1, recorded) / elapsed * 60,
        "rec_padded": padded,
        "recorder_write_cpu_s": s1["worker"]["timed_cpu"] - s0["worker"]["timed_cpu"],
        "recorder_writes": s1["worker"]["timed_calls"] - s0["worker"]["timed_calls"],
        "timing_overhead": s1["worker"]["timing_overhead"],
        "clients_cores": sum(cores[name] for name in pools),
        "speakers_cores": cores.get("speakers", 0.0),
        "machine_busy": busy,
        "other_cores": max(0.0, busy * (os.cpu_count() or 1) - ours),
        "worker_messages_per_s": {k: round((n - m0.get(k, 0)) / elapsed, 1) for k, n in m1.items() if n > m0.get(k, 0)},
    }


def stored_recordings() -> dict:
    """The finished `Recording` rows: sizes and durations, and one file decoded end to end."""
    import av
    import numpy as np

    from media.mixer import SPEAKING_RMS
    from media.models import Recording, RecordingState

    rows = list(Recording.objects.order_by("pk"))
    ready = [rec for rec in rows if rec.state == RecordingState.READY]
    per_min = [rec.size_bytes / rec.duration_ms * 60_000 for rec in ready if rec.duration_ms]
    decoded = {}
    if ready:
        longest = max(ready, key=lambda rec: rec.duration_ms)
        with av.open(longest.file.path) as container:
            frames = samples = loud = 0
            for frame in container.decode(audio=0):
                frames += 1
                samples += frame.samples
                pcm = frame.to_ndarray().astype(np.float32)
                loud += float(np.sqrt(np.mean(pcm * pcm))) >= SPEAKING_RMS / 32768  # float planar samples
        decoded = {
            "recording": longest.pk,
            "duration_ms": longest.duration_ms,
            "decoded_ms": round(samples / 48, 0),
            "frames": frames,
            "frames_with_speech_pct": r(100 * loud / max(1, frames), 1),
        }
    return {
        "recordings": len(rows),
        "ready": len(ready),
        "ended_early": sum(1 for rec in ready if rec.ended_early),
        "seconds_total": round(sum(rec.duration_ms for rec in ready) / 1000, 1),
        "bytes_total": sum(rec.size_bytes for rec in ready),
        "bytes_per_min_mean": r(statistics.fmean(per_min), 0) if per_min else None,
        "bytes_per_min_min": r(min(per_min), 0) if per_min else None,
        "bytes_per_min_max": r(max(per_min), 0) if per_min else None,
        "decoded_longest": decoded,
    }


def spread(windows: list[dict]) -> list[float | None]:
    cores = [w["worker_cores"] for w in windows]
    return [r(min(cores), 4), r(max(cores), 4)]


def summary(args: argparse.Namespace, windows: list[dict], timed: dict | None, final: dict | None) -> dict:
    """The figures over all windows: B (recording) against A (not), the timed window, the final counters."""
    off = [w for w in windows if w["label"][0] == "A"]
    on = [w for w in windows if w["label"][0] == "B"]
    rooms = args.rooms
    result: dict = {}
    if off and on:
        mean_off = statistics.fmean(w["worker_cores"] for w in off)
        mean_on = statistics.fmean(w["worker_cores"] for w in on)
        # Each B window against the A window beside it: how much the difference moves.
        pairs = []
        for i, w in enumerate(windows):
            near = [windows[j] for j in (i - 1, i + 1) if 0 <= j < len(windows) and windows[j]["label"][0] == "A"]
            if w["label"][0] == "B" and near:
                pairs.append((w["worker_cores"] - near[0]["worker_cores"]) / rooms * 100)
        rss_on = statistics.fmean(w["worker_rss_kib"] for w in on)
        rss_off = statistics.fmean(w["worker_rss_kib"] for w in off)
        result.update(
            worker_cpu_cores_off=r(mean_off, 4),
            worker_cpu_cores_on=r(mean_on, 4),
            worker_cpu_cores_off_range=spread(off),
            worker_cpu_cores_on_range=spread(on),
            extra_cpu_pct_core_per_recorded_room=r((mean_on - mean_off) / rooms * 100, 3),
            extra_cpu_pct_core_per_recorded_room_by_pair=[r(p, 3) for p in pairs],
            worker_rss_kib_per_recorded_room=r((rss_on - rss_off) / rooms, 1),
            bytes_per_min_per_room_written=r(statistics.fmean(w["rec_bytes_per_min_per_room"] for w in on), 0),
            recorded_packets_per_room_per_s=r(statistics.fmean(w["rec_packets_per_room_per_s"] for w in on), 3),
            padded_packets=sum(w["rec_padded"] for w in on),
        )
    if off and on:
        result["windows_held"] = f"{sum(1 for w in off + on if w['held'])} / {len(off + on)}"
    if timed and timed["recorder_writes"]:
        result.update(
            recorder_write_cpu_pct_core_per_room=r(timed["recorder_write_cpu_s"] / timed["seconds"] / rooms * 100, 4),
            recorder_write_us_per_packet=r(timed["recorder_write_cpu_s"] / timed["recorder_writes"] * 1e6, 2),
            recorder_write_us_per_packet_timing_overhead=r(timed["timing_overhead"] * 1e6, 2),
            recorder_writes_per_room_per_s=r(timed["recorder_writes"] / timed["seconds"] / rooms, 2),
        )
    measured = [w for w in windows if w["label"][0] in "AB"]  # in the order they ran
    if measured:
        result.update(
            encodes_per_tick_max=r(max(w["encodes_per_tick_max"] for w in measured), 4),
            encodes_per_tick_min=r(min(w["encodes_per_tick_min"] for w in measured), 4),
            late_ticks=sum(w["late_ticks"] for w in measured),
            received_per_listener_per_s=r(statistics.fmean(w["received_per_listener_per_s"] for w in measured), 2),
            listeners_below_95pct_max=max(w["listeners_below_95pct"] for w in measured),
            clients_cores_mean=r(statistics.fmean(w["clients_cores"] + w["speakers_cores"] for w in measured), 3),
            other_cores_max=r(max(w["other_cores"] for w in measured), 3),
            worker_channel_messages_per_s=measured[-1]["worker_messages_per_s"],
        )
    if final:
        rooms_final = final["rooms"].values()
        result["encodes_le_ticks_every_room"] = all(room["encodes"] <= room["ticks"] for room in rooms_final)
        result["offers_refused"] = final["refused"]
    result["windows"] = [{k: r(v, 4) if isinstance(v, float) else v for k, v in w.items()} for w in measured]
    return result


async def drive(args: argparse.Namespace, rooms: list[dict], wav: Path, log_dir: Path, result: dict) -> None:
    bench = Bench(args, log_dir)
    try:
        await bench.open(rooms, wav)
        measured = await bench.run()
        result.update(timed=measured["timed"], final=measured["final"])
    finally:
        result.update(
            windows=bench.windows, fits=bench.fits, per_room=bench.per_room, listeners_connected=bench.connected
        )
        await bench.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--listeners", type=int, default=50, help="per room")
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured per window")
    parser.add_argument("--pattern", default="ABBAABBA", help="A: recording off, B: on, one window each")
    parser.add_argument("--timed", type=float, default=10.0, help="seconds of the window timing Recorder.write")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after connecting or switching")
    parser.add_argument("--steps", type=steps_arg, default=steps_arg("10,20,30,40"), help="per room, up to --listeners")
    parser.add_argument("--fit-window", type=float, default=6.0, help="seconds measured at each step")
    parser.add_argument("--listener-procs", type=int, default=2)
    parser.add_argument("--client-nice", type=int, default=10)
    parser.add_argument("--connect-concurrency", type=int, default=8, help="connections in flight per process")
    parser.add_argument("--budget", type=float, default=290.0, help="seconds for connecting and measuring")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, database, files)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        setup_logging("recording-worker")
        import django

        django.setup()
        run_child(worker_main())
    if set(args.pattern) - {"A", "B"} or "A" not in args.pattern or "B" not in args.pattern:
        parser.error("--pattern is made of A and B, at least one of each")

    started = time.time()
    load = os.getloadavg()
    ticks = machine_ticks()
    time.sleep(1.0)
    busy = busy_share(ticks, machine_ticks())
    workdir = Path(tempfile.mkdtemp(prefix="recording-bench-"))
    os.environ.update(throwaway_site(workdir))
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    import django

    django.setup()
    say(
        f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {busy * 100:.0f}% busy; "
        f"{args.rooms} rooms x {args.listeners} listeners, windows {args.pattern} of {args.window:.0f}s; in {workdir}"
    )
    result: dict = {}
    stored: dict = {}
    loop = asyncio.new_event_loop()
    try:
        rooms, wav = prepare(args, workdir)
        task = loop.create_task(drive(args, rooms, wav, workdir, result))
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        loop.run_until_complete(task)
        stored = stored_recordings()
        say(f"stored recordings: {stored}")
    except asyncio.CancelledError:
        result["error"] = "interrupted"
    except Exception as error:  # noqa: BLE001 - reported in the JSON line, after cleanup
        say(f"FAILED: {type(error).__name__}: {error}")
        result["error"] = f"{type(error).__name__}: {str(error)[:300]}"
    finally:
        loop.close()
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    figures = summary(args, result.get("windows", []), result.get("timed"), result.get("final"))
    extra = figures.get("extra_cpu_pct_core_per_recorded_room")
    timed = figures.get("recorder_write_cpu_pct_core_per_room")
    goal = GOAL["extra_cpu_pct_of_core_per_recorded_room"]
    out = {
        "bench": "recording",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "cores": os.cpu_count(),
        "load_avg_at_start": [round(x, 2) for x in load],
        "machine_busy_pct_at_start": round(busy * 100, 1),
        "seconds": round(time.time() - started, 1),
        "rooms": args.rooms,
        "listeners_per_room_asked": args.listeners,
        "listeners_per_room_measured": result.get("per_room"),
        "listeners_connected": result.get("listeners_connected"),
        "ramp": result.get("fits", []),
        "window_s": args.window,
        "pattern": args.pattern,
        **{k: v for k, v in figures.items() if k != "windows"},
        "bytes_per_min_per_room_stored": stored.get("bytes_per_min_mean"),
        "stored": stored,
        "goal": GOAL,
        "goals_met": {
            "extra_cpu_pct_of_core_per_recorded_room": extra is not None and extra <= goal,
            "recorder_write_cpu_pct_of_core_per_room": timed is not None and timed <= goal,
        },
        "windows": figures["windows"],
        **({"error": result["error"]} if "error" in result else {}),
    }
    print(json.dumps(out), flush=True)
    return 1 if "error" in out else 0


if __name__ == "__main__":
    sys.exit(main())
