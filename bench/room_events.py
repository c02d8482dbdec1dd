"""Room events benchmark: N listeners on one space's websocket, served by one daphne, on each channel layer.

    .venv/bin/python bench/room_events.py [--listeners N] [--rounds R] [--connect-concurrency C]
        [--layers in-memory,redis] [--redis redis://127.0.0.1:6379/13] [--log daphne.log]

It builds a throwaway SQLite database in a temporary directory (migrate, then
a host, one live space, N listeners and a session for each), starts daphne on
a free port of 127.0.0.1 and opens N + 1 websockets (the listeners and the
host) from this one asyncio process. It then measures

- the server's resident memory per connection (VmRSS of daphne once the host
  is connected, and again once every listener is);
- `approve_to_all`: a listener asks to speak, the host approves, and every
  socket receives the `participant.updated` event that puts them on stage
  (time from just before the host's send to each arrival);
- `reaction_to_all`: a listener reacts and every socket receives `reaction`;
- `hand_deliveries_per_raise`: how many sockets received each raised hand (the
  goal: the moderators and the one who raised it, here the host and the asker);

each over R rounds, with p50/p95/max over all (socket, round) samples and a
count of events some socket never received. Progress goes to stdout; the last
line is one JSON object with the figures and the goals they are held against.

Everything runs on 127.0.0.1 with SQLite and DEBUG=1, once per layer of
`--layers` (both by default, one after the other, each stopping by itself
within about five minutes): `in-memory` is the embedded default, `redis` puts
the channel layer and the cache on the Redis at `--redis` as in production; it
wants a database that holds nothing (it refuses one that does) and deletes the
group keys it made at the end. The last line holds both. Each timed
round starts once daphne is idle again. Client and server share the
machine's cores, so on a 2-core machine the client's own work (reading N
copies of every event) is part of each figure.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The interpreter running the bench (any virtualenv with requirements-dev.txt), and daphne under it.
PYTHON = sys.executable
DAPHNE = (sys.executable, "-m", "daphne")

TOTAL_CAP_S = 230.0  # set-up and measurement; closing the sockets and daphne add at most ~60 s
CLOSE_TIMEOUT_S = 20.0
OPEN_TIMEOUT_S = 30.0
SNAPSHOT_TIMEOUT_S = 30.0
ROUND_TIMEOUT_S = 20.0
HAND_TIMEOUT_S = 10.0
SETTLE_S = 1.5  # a coalesced listeners.count broadcast goes out 1.2 s after a join
IDLE_TIMEOUT_S = 15.0
ROUND_PAUSE_S = 0.5  # reactions are rate limited per socket: 10/s, burst 20
STAGE_SEATS_FOR_SPEAKERS = 12  # SPACES_STAGE_MAX (13) minus the host
REACTIONS = ("👏", "❤️", "😂", "💯", "🔥", "🙌", "👍", "😮", "🎉", "🤔")

GOAL = {
    "approve_to_all_p95_ms": 250,
    "reaction_to_all_p95_ms": 250,
    "hand_deliveries_per_raise": 2,  # the host and the asker (the bench has no co-host)
    "missing_events": 0,
    "connect_failures": 0,
    "server_rss_per_connection_kib": 256,
}
NOTES = (
    "{cpus} cores shared: this one-process asyncio client (which parses N+1 copies of every event) and daphne "
    "compete for CPU, so latencies include client-side queueing. {layer} channel layer, SQLite, DEBUG=1 (Django "
    "keeps up to 9000 recent queries per DB connection, counted in the RSS delta). Each timed round starts when "
    "daphne is idle."
)


def say(message: str) -> None:
    print(f"[room_events {time.strftime('%H:%M:%S')}] {message}", flush=True)


# Seeding runs in a subprocess with Django set up against the throwaway database.


def seed(out_path: str, listeners: int) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_site.settings")
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from accounts.models import User
    from rooms import services

    password = make_password("bench-password")
    host = User.objects.create(username="bench_host", password=password, hosting_granted=True)
    space = services.space_create(host=host, title="room_events benchmark")
    User.objects.bulk_create(
        [User(username=f"bench_l{i:05d}", password=password) for i in range(listeners)], batch_size=500
    )
    people = [host, *User.objects.filter(username__startswith="bench_l").order_by("username")]
    with transaction.atomic():
        sessions = [{"id": user.pk, "username": user.username, "session": session_key(user)} for user in people]
    Path(out_path).write_text(json.dumps({"space_id": space.pk, "host": sessions[0], "listeners": sessions[1:]}))


def session_key(user) -> str:
    """A signed-in session for `user`, as a login makes (the sockets send its cookie)."""
    from django.contrib.sessions.backends.db import SessionStore

    store = SessionStore()
    store["_auth_user_id"] = str(user.pk)
    store["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    store["_auth_user_hash"] = user.get_session_auth_hash()
    store.save()
    return store.session_key


# The server


class Deadline:
    def __init__(self, seconds: float):
        self.start = time.monotonic()
        self.end = self.start + seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self, wanted: float | None = None) -> float:
        left = max(0.0, self.end - time.monotonic())
        if left <= 0:
            raise TimeoutError("the benchmark ran out of its time budget")
        return left if wanted is None else min(wanted, left)


def raise_nofile(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = hard if hard == resource.RLIM_INFINITY else min(max(needed, soft), hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_step(name: str, args: list[str], env: dict, deadline: Deadline, timeout: float) -> None:
    started = time.monotonic()
    result = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=deadline.left(timeout), check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    say(f"{name}: done in {time.monotonic() - started:.1f}s")


def wait_http(port: int, process: subprocess.Popen, deadline: Deadline, timeout: float = 30.0) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy: 127.0.0.1 only
    until = time.monotonic() + deadline.left(timeout)
    while time.monotonic() < until:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode} before answering")
        try:
            with opener.open(f"http://127.0.0.1:{port}/", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means it is serving
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"daphne did not answer HTTP on port {port} within {timeout:.0f}s")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def server_idle(pid: int, timeout: float = IDLE_TIMEOUT_S) -> float:
    """Wait until daphne uses under 10% of a core over 0.2 s; returns the seconds waited."""
    started = time.monotonic()
    last = cpu_seconds(pid)
    while time.monotonic() - started < timeout:
        await asyncio.sleep(0.2)
        now = cpu_seconds(pid)
        if now - last < 0.02:
            break
        last = now
    return time.monotonic() - started


def stop(process: subprocess.Popen) -> str:
    """Terminate daphne, or kill it if it does not stop within 10 s; says which."""
    if process.poll() is not None:
        return f"had exited ({process.returncode})"
    process.terminate()
    try:
        process.wait(timeout=10)
        return "terminated"
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        return "killed after 10 s"


def redis_ensure_empty(url: str) -> None:
    """Refuse a Redis database that holds anything: the bench must not touch others' keys."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        if client.dbsize():
            raise RuntimeError(f"{url} is not empty; give --redis a database number nothing else uses")
    finally:
        client.close()


def redis_clear(url: str) -> None:
    """Forget what this run left (groups of its space, users and roles): the database held nothing before it."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    finally:
        client.close()


CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


def server_errors(log_text: str) -> list[str]:
    """Tracebacks (a chained one as one) and ERROR lines from daphne's log, each as one block of text."""
    blocks: list[str] = []
    current: list[str] | None = None
    chained = False
    for line in log_text.splitlines():
        if line.startswith(CHAINED):
            chained = True
        elif line.startswith("Traceback"):
            if current:
                blocks.append("\n".join(current))
            current = [*blocks.pop().splitlines(), line] if chained and blocks else [line]
            chained = False
        elif re.search(r"\bERROR\b|Exception in |took too long to shut down", line):
            if current:
                blocks.append("\n".join(current))
            current, chained = [line], False
        elif current is not None and (line.startswith((" ", "\t")) or current[-1].startswith((" ", "\t"))):
            current.append(line)
            if not line.startswith((" ", "\t")):
                blocks.append("\n".join(current))
                current = None
        elif current is not None:
            blocks.append("\n".join(current))
            current = None
    if current:
        blocks.append("\n".join(current))
    return blocks


# The clients


class Round:
    """Waits for one event at a set of sockets and records when it reached each."""

    def __init__(self, match, expected: set[int]):
        self.match, self.expected = match, expected
        self.arrivals: dict[int, float] = {}
        self.done = asyncio.Event()
        if not expected:
            self.done.set()

    def offer(self, idx: int, message: dict, at: float) -> None:
        if idx in self.expected and idx not in self.arrivals and self.match(message):
            self.arrivals[idx] = at
            if len(self.arrivals) == len(self.expected):
                self.done.set()


class Bench:
    def __init__(self, port: int, space_id: int, pid: int):
        self.pid = pid
        self.url = f"ws://127.0.0.1:{port}/ws/spaces/{space_id}/"
        self.origin = f"http://127.0.0.1:{port}"
        self.rounds: list[Round] = []
        self.errors: list[dict] = []
        self.dropped = 0
        self.closing = False
        self.hand_deliveries = 0  # sockets that received someone's raised hand


class Conn:
    def __init__(self, bench: Bench, idx: int, username: str, session: str):
        self.bench, self.idx, self.username, self.session = bench, idx, username, session
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.snapshot: asyncio.Future | None = None
        self.failure: str | None = None
        self.closed = False

    @property
    def usable(self) -> bool:
        return self.failure is None and not self.closed and self.ws is not None

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self.snapshot = asyncio.get_running_loop().create_future()
        self.ws = await connect(
            self.bench.url,
            origin=self.bench.origin,
            additional_headers={"Cookie": f"sessionid={self.session}"},
            proxy=None,
            compression=None,
            ping_interval=None,
            open_timeout=OPEN_TIMEOUT_S,
            close_timeout=5,
            max_queue=None,
        )
        self.reader = asyncio.create_task(self._read())
        await asyncio.wait_for(asyncio.shield(self.snapshot), SNAPSHOT_TIMEOUT_S)

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for frame in self.ws:
                at = time.perf_counter()
                message = json.loads(frame)
                kind = message.get("type")
                if kind == "snapshot" and not self.snapshot.done():
                    self.snapshot.set_result(message)
                elif kind == "error":
                    self.bench.errors.append({"user": self.username, **message})
                elif kind == "participant.updated" and message["participant"]["hand_raised"]:
                    self.bench.hand_deliveries += 1
                for waiting in self.bench.rounds:
                    waiting.offer(self.idx, message, at)
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            if not self.snapshot.done():
                self.snapshot.set_exception(ConnectionError(f"closed before the snapshot: {self.ws.close_code}"))
            elif not self.bench.closing:
                self.bench.dropped += 1
                if self.bench.dropped <= 5:
                    say(f"  the server closed @{self.username}'s socket: {self.ws.close_code} {self.ws.close_reason}")

    async def send(self, message: dict) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):  # counted as dropped, and its events as missing
            await self.ws.send(json.dumps(message))

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader


async def timed_round(bench: Bench, conns: list[Conn], match, send) -> tuple[list[float], int]:
    """Run `send` and wait for every connection to receive the event `match` accepts."""
    await server_idle(bench.pid)
    expected = {c.idx for c in conns if c.usable}
    waiting = Round(match, expected)
    bench.rounds.append(waiting)
    started = time.perf_counter()
    await send()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(waiting.done.wait(), ROUND_TIMEOUT_S)
    bench.rounds.remove(waiting)
    samples = [(at - started) * 1000 for at in waiting.arrivals.values()]
    return samples, len(expected) - len(waiting.arrivals)


def summary(samples: list[float]) -> dict:
    if not samples:
        return {"p50": None, "p95": None, "max": None, "n": 0}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return round(ordered[max(0, math.ceil(p * len(ordered)) - 1)], 1)

    return {"p50": rank(0.50), "p95": rank(0.95), "max": round(ordered[-1], 1), "n": len(ordered)}


async def drive(args, seeded: dict, port: int, daphne: subprocess.Popen, deadline: Deadline) -> dict:
    bench = Bench(port, seeded["space_id"], daphne.pid)
    host = Conn(bench, 0, seeded["host"]["username"], seeded["host"]["session"])
    listeners = [Conn(bench, i + 1, p["username"], p["session"]) for i, p in enumerate(seeded["listeners"])]
    conns = [host, *listeners]
    figures: dict = {}
    try:
        await asyncio.wait_for(host.open(), deadline.left(OPEN_TIMEOUT_S + SNAPSHOT_TIMEOUT_S))
        await asyncio.sleep(SETTLE_S)
        await server_idle(daphne.pid)
        rss_before = rss_kib(daphne.pid)
        say(f"host connected; daphne RSS {rss_before / 1024:.1f} MiB; opening {len(listeners)} listener sockets")

        gate = asyncio.Semaphore(args.connect_concurrency)
        opened = 0

        async def open_one(conn: Conn) -> None:
            nonlocal opened
            async with gate:
                try:
                    await conn.open()
                except Exception as error:  # noqa: BLE001 - a failed connect is counted, not fatal
                    conn.failure = f"{type(error).__name__}: {error}"
                    return
                opened += 1
                if opened % max(1, len(listeners) // 10) == 0:
                    say(f"  {opened}/{len(listeners)} connected")

        started = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(open_one(c) for c in listeners)), deadline.left(OPEN_TIMEOUT_S * 4 + 120)
        )
        connect_s = time.perf_counter() - started
        failures = [c for c in listeners if c.failure]
        say(f"connected {len(listeners) - len(failures)}/{len(listeners)} listeners in {connect_s:.1f}s")
        for conn in failures[:5]:
            say(f"  connect failure {conn.username}: {conn.failure}")
        await asyncio.sleep(SETTLE_S)
        await server_idle(daphne.pid)
        rss_after = rss_kib(daphne.pid)
        connected = len(listeners) - len(failures)
        per_conn = (rss_after - rss_before) / connected if connected else None
        say(f"daphne RSS {rss_after / 1024:.1f} MiB: {per_conn or 0:.1f} KiB per connection")
        figures.update(
            connect_s=round(connect_s, 2),
            connect_per_s=round(connected / connect_s, 1) if connect_s else None,
            connect_failures=len(failures),
            server_rss_before_mib=round(rss_before / 1024, 1),
            server_rss_after_mib=round(rss_after / 1024, 1),
            server_rss_per_connection_kib=round(per_conn, 1) if per_conn is not None else None,
        )
        live = [c for c in listeners if c.failure is None]
        if len(live) < 2:
            raise RuntimeError("fewer than two listeners connected; nothing to measure")

        # Approve: a listener raises a hand, the host sees it, approves, everyone sees the new speaker.
        approve_samples, approve_missing, hands_missed = [], 0, 0
        approve_rounds = min(args.rounds, STAGE_SEATS_FOR_SPEAKERS, len(live) - 1)
        askers = iter(live[1:])
        for r in range(approve_rounds):
            if not host.usable:
                raise RuntimeError("the server closed the host's socket")
            asker = next((c for c in askers if c.usable), None)
            if asker is None:
                raise RuntimeError("no listener socket left open to ask to speak")
            hand = Round(
                lambda m, who=asker.username: (
                    m.get("type") == "participant.updated"
                    and m["participant"]["user"]["username"] == who
                    and m["participant"]["hand_raised"]
                ),
                {host.idx},
            )
            bench.rounds.append(hand)
            await asker.send({"type": "request_speak"})
            hand_timeout = deadline.left(HAND_TIMEOUT_S)
            try:
                await asyncio.wait_for(hand.done.wait(), hand_timeout)
            except TimeoutError:
                hands_missed += 1
                say(f"  approve round {r + 1}: the host never saw @{asker.username}'s hand; skipped")
                continue
            finally:
                bench.rounds.remove(hand)
            await server_idle(daphne.pid)
            samples, missing = await timed_round(
                bench,
                conns,
                lambda m, who=asker.username: (
                    m.get("type") == "participant.updated"
                    and m["participant"]["user"]["username"] == who
                    and m["participant"]["role"] == "speaker"
                ),
                lambda who=asker.username: host.send({"type": "approve", "user": who}),
            )
            approve_samples += samples
            approve_missing += missing
            say(f"  approve round {r + 1}: {summary(samples)} missing {missing}")
            deadline.left()
            await asyncio.sleep(ROUND_PAUSE_S)

        # Reactions: one listener reacts, everyone sees it.
        reaction_samples, reaction_missing = [], 0
        for r in range(args.rounds):
            reactor = next((c for c in live if c.usable), None)
            if reactor is None:
                raise RuntimeError("no listener socket left open to react")
            emoji = REACTIONS[r % len(REACTIONS)]
            samples, missing = await timed_round(
                bench,
                conns,
                lambda m, emoji=emoji, who=reactor.username: (
                    m.get("type") == "reaction" and m["emoji"] == emoji and m["user"]["username"] == who
                ),
                lambda emoji=emoji, who=reactor: who.send({"type": "react", "emoji": emoji}),
            )
            reaction_samples += samples
            reaction_missing += missing
            say(f"  reaction round {r + 1}: {summary(samples)} missing {missing}")
            deadline.left()
            await asyncio.sleep(ROUND_PAUSE_S)

        figures.update(
            approve_rounds=approve_rounds,
            reaction_rounds=args.rounds,
            approve_to_all_ms=summary(approve_samples),
            reaction_to_all_ms=summary(reaction_samples),
            hand_deliveries_per_raise=round(bench.hand_deliveries / approve_rounds, 2) if approve_rounds else None,
            missing_events=approve_missing + reaction_missing + hands_missed,
            missing_detail={"approve": approve_missing, "reaction": reaction_missing, "hand_to_host": hands_missed},
            all_received={"approve": approve_missing == 0 and not hands_missed, "reaction": reaction_missing == 0},
        )
    finally:
        bench.closing = True
        figures.update(error_events=len(bench.errors), dropped_connections=bench.dropped)
        for error in bench.errors[:5]:
            say(f"  error event: {error}")
        started = time.perf_counter()
        gate = asyncio.Semaphore(200)

        async def close_one(conn: Conn) -> None:
            async with gate:
                await conn.close()

        try:
            await asyncio.wait_for(asyncio.gather(*(close_one(c) for c in conns)), CLOSE_TIMEOUT_S)
            say(f"closed {len(conns)} sockets in {time.perf_counter() - started:.1f}s")
        except TimeoutError:
            say("closing the sockets timed out; daphne is stopped anyway")
        waited = await server_idle(daphne.pid, CLOSE_TIMEOUT_S)
        figures["server_disconnects_s"] = round(time.perf_counter() - started, 1)
        say(
            f"daphne finished the disconnects {figures['server_disconnects_s']:.1f}s after the first close"
            + (" (still busy: gave up waiting)" if waited >= CLOSE_TIMEOUT_S else "")
        )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", default="in-memory,redis", help="channel layers, in order (default both)")
    parser.add_argument("--listeners", type=int, default=1000, help="listener sockets (default 1000)")
    parser.add_argument("--rounds", type=int, default=5, help="approve and reaction rounds (default 5)")
    parser.add_argument("--connect-concurrency", type=int, default=50, help="sockets opening at once (default 50)")
    parser.add_argument(
        "--redis", metavar="URL", default="redis://127.0.0.1:6379/13", help="the Redis of the redis layer (127.0.0.1)"
    )
    parser.add_argument("--log", metavar="PATH", help="keep daphne's log there")
    parser.add_argument("--seed", metavar="PATH", help=argparse.SUPPRESS)  # internal: the seeding subprocess
    args = parser.parse_args()
    if args.seed:
        seed(args.seed, args.listeners)
        return 0
    if args.listeners < 2 or args.rounds < 1:
        parser.error("need at least 2 listeners and 1 round")
    if urllib.parse.urlsplit(args.redis).hostname not in ("127.0.0.1", "localhost"):
        parser.error("--redis must point at 127.0.0.1")
    layers = [layer.strip() for layer in args.layers.split(",") if layer.strip()]
    if not layers or set(layers) - {"in-memory", "redis"}:
        parser.error("--layers is a comma-separated list of in-memory and redis")

    status, results = 0, {}
    for layer in layers:
        say(f"=== {layer} channel layer ===")
        layer_status, results[layer] = run_layer(args, args.redis if layer == "redis" else None)
        status = status or layer_status
    summary_line = {
        "bench": "room_events",
        "listeners": args.listeners,
        "layers": results,
        "all_goals_met": all(r.get("all_goals_met") for r in results.values()),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(summary_line, ensure_ascii=False), flush=True)
    return status


def run_layer(args, redis: str | None) -> tuple[int, dict]:
    """One daphne on one channel layer (Redis at `redis`, or the in-memory one): its figures and goals."""
    deadline = Deadline(TOTAL_CAP_S)
    nofile = raise_nofile(args.listeners + 256)
    load = os.getloadavg()[0]
    say(f"{args.listeners} listeners, {args.rounds} rounds; {os.cpu_count()} CPUs; RLIMIT_NOFILE {nofile}")
    if load > 0.5:
        say(f"warning: load average {load:.2f} before starting: other work shares the CPUs and skews the figures")
    workdir = Path(tempfile.mkdtemp(prefix="room_events-"))
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY")}
    env.update(
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        DEBUG="1",
        DJANGO_SETTINGS_MODULE="spaces_site.settings",
        MEDIA_ROOT=str(workdir / "uploads"),
    )
    if redis:
        env.update(REDIS_URL=redis, CELERY_TASK_ALWAYS_EAGER="1")
    daphne = None
    log_path = workdir / "daphne.log"
    result: dict = {
        "bench": "room_events",
        "listeners": args.listeners,
        "connections": args.listeners + 1,
        "channel_layer": "redis" if redis else "in-memory",
        "loadavg_1m_at_start": round(load, 2),
        "connect_concurrency": args.connect_concurrency,
    }
    seeded = None
    status = 1
    try:
        if redis:
            redis_ensure_empty(redis)
        run_step("migrate", [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env, deadline, 120)
        seed_path = workdir / "seed.json"
        run_step(
            f"seed ({args.listeners} listeners and sessions)",
            [PYTHON, __file__, "--seed", str(seed_path), "--listeners", str(args.listeners)],
            env,
            deadline,
            120,
        )
        seeded = json.loads(seed_path.read_text())

        port = free_port()
        with open(log_path, "wb") as log:
            daphne = subprocess.Popen(
                [*DAPHNE, "-b", "127.0.0.1", "-p", str(port), "spaces_site.asgi:application"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=lambda: raise_nofile(args.listeners + 256),
            )
        wait_http(port, daphne, deadline)
        say(f"daphne pid {daphne.pid} answers on 127.0.0.1:{port}")
        cpu_started = cpu_seconds(daphne.pid)
        client_started = resource.getrusage(resource.RUSAGE_SELF)

        figures = asyncio.run(asyncio.wait_for(drive(args, seeded, port, daphne, deadline), deadline.left()))
        result.update(figures)
        client_now = resource.getrusage(resource.RUSAGE_SELF)
        result["server_cpu_s"] = round(cpu_seconds(daphne.pid) - cpu_started, 1)
        result["client_cpu_s"] = round(
            client_now.ru_utime + client_now.ru_stime - client_started.ru_utime - client_started.ru_stime, 1
        )
        status = 0
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - report any failure in the JSON line
        say(f"FAILED: {type(error).__name__}: {error}")
        result["failed"] = f"{type(error).__name__}: {error}"
    finally:
        if daphne is not None:
            started = time.monotonic()
            result["daphne_stop"] = stop(daphne)
            say(f"daphne {result['daphne_stop']} in {time.monotonic() - started:.1f}s")
        if redis and seeded is not None:
            with contextlib.suppress(Exception):
                redis_clear(redis)
        log_text = log_path.read_text(errors="replace") if log_path.exists() else ""
        errors = server_errors(log_text)
        result["server_errors"] = len(errors)
        kinds: dict[str, list[str]] = {}
        for block in errors:
            kind = block.splitlines()[-1].strip()
            if "took too long to shut down" in kind:
                kind = "daphne: an application instance took too long to shut down and was killed"
            kinds.setdefault(kind, []).append(block)
        result["server_error_kinds"] = {last[:200]: len(blocks) for last, blocks in kinds.items()}
        for blocks in list(kinds.values())[:3]:
            lines = blocks[0].splitlines()
            shown = lines if len(lines) <= 24 else [*lines[:2], "  ...", *lines[-20:]]
            say(f"daphne logged this {len(blocks)} time(s):\n" + "\n".join(shown))
        if args.log and log_path.exists():
            shutil.copyfile(log_path, args.log)
        shutil.rmtree(workdir, ignore_errors=True)

    met = {
        "approve_to_all_p95_ms": (result.get("approve_to_all_ms") or {}).get("p95") is not None
        and result["approve_to_all_ms"]["p95"] <= GOAL["approve_to_all_p95_ms"],
        "reaction_to_all_p95_ms": (result.get("reaction_to_all_ms") or {}).get("p95") is not None
        and result["reaction_to_all_ms"]["p95"] <= GOAL["reaction_to_all_p95_ms"],
        "hand_deliveries_per_raise": result.get("hand_deliveries_per_raise") == GOAL["hand_deliveries_per_raise"],
        "missing_events": result.get("missing_events") == GOAL["missing_events"],
        "connect_failures": result.get("connect_failures") == GOAL["connect_failures"],
        "server_rss_per_connection_kib": result.get("server_rss_per_connection_kib") is not None
        and result["server_rss_per_connection_kib"] <= GOAL["server_rss_per_connection_kib"],
    }
    notes = NOTES.format(cpus=os.cpu_count(), layer="Redis" if redis else "In-memory")
    result.update(goal=GOAL, goal_met=met, all_goals_met=all(met.values()), cpus=os.cpu_count(), notes=notes)
    say(f"done in {deadline.elapsed():.0f}s: {json.dumps(result, ensure_ascii=False)}")
    return status, result


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
