"""The production topology on one machine, for fault tests.

`Cluster` starts a Redis server of its own on a free port (never the shared
one), daphne web processes (`tests.live_server_asgi`) and separate media
workers (`manage.py media_worker`), all on the test database, with presence
and outage timings short enough to watch. `TcpProxy` stands between a web
process and PostgreSQL so a test can cut the database off.

`Socket` is a websocket client that behaves as `static/js/space.js` does:
it reconnects after any close that isn't final, waiting the server's
`retry_after` hint, trying the next web process when one is gone.
`MediaClient` is an aiortc peer that drives the media protocol as
`static/js/audio.js` does: offers with refs, an answer timeout, a re-offer on
`media.reset`, on `media_unavailable` and after the socket reconnects.
"""

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from django.db import connection, connections
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from media.aiortc_bridge import allow_loopback_candidates
from tests.live_server_asgi import AsgiLiveServer
from tests.media.clients import SLOTS, Recorder

ROOT = Path(__file__).resolve().parents[2]
FINAL_CLOSES = {1000, 1009, 4401, 4403, 4404, 4429}
ANSWER_TIMEOUT_S = 5.0

# Short enough to watch in a test, in the same proportions as the defaults.
TIMINGS = {
    "SPACES_PRESENCE_SWEEP_S": "1",
    "SPACES_PRESENCE_TIMEOUT_S": "3",
    "SPACES_RECONNECT_GRACE_S": "8",
    "SPACES_OUTAGE_RETRY_S": "3",
    "SPACES_RETRY_AFTER_S": "1",
    "SPACES_LAYER_WATCH_S": "0.5",
    "SPACES_MEDIA_HEARTBEAT_TTL_S": "3",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check, *, timeout: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(every)


async def until(check, *, timeout: float, what: str, every: float = 0.1):
    """Poll `check` (sync or async) until it returns something true; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(every)


class RedisServer:
    """A redis-server of the test's own, on a free port, that can be stopped and restarted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self.answers, timeout=10, what="redis-server starts")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def command(self, *args: str) -> str:
        return subprocess.run(
            ["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True, check=True
        ).stdout


class TcpProxy:
    """Forwards a local port to PostgreSQL; `cut()` refuses new connections and drops open ones."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.open: set[socket.socket] = set()
        self.listener: socket.socket | None = None
        self.lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; close() alone doesn't
        self.listener.close()
        with self.lock:
            for conn in list(self.open):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self.open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for conn in (source, sink):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class MediaWorkerProcess:
    def __init__(self, env: dict, index: int = 0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "media_worker", "--index", str(index)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        assert "listening" in line, line
        self.started_at = time.monotonic()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def database_url(settings_dict: dict, *, port: int | None = None) -> str:
    if settings_dict["ENGINE"].endswith("postgresql"):
        host = settings_dict["HOST"] or "127.0.0.1"
        return (
            f"postgres://{settings_dict['USER']}@{host}:{port or settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
        )
    return f"sqlite:///{settings_dict['NAME']}"


class Cluster:
    """Redis, web processes and media workers of one test; `close()` stops them all."""

    def __init__(self) -> None:
        self.redis = RedisServer()
        self.webs: list[AsgiLiveServer] = []
        self.workers: list[MediaWorkerProcess] = []
        self.env = {
            **TIMINGS,
            "REDIS_URL": self.redis.url,
            "SPACES_MEDIA_IN_PROCESS": "0",
            "SPACES_MEDIA_ICE_LOOPBACK": "1",
        }

    def databases(self, *, port: int | None = None) -> dict:
        databases = {alias: dict(connections[alias].settings_dict) for alias in connections}
        if port is not None:
            databases["default"].update(HOST="127.0.0.1", PORT=port)
        return databases

    def start_web(self, *, database_port: int | None = None) -> AsgiLiveServer:
        web = AsgiLiveServer(self.databases(port=database_port), env=self.env)
        self.webs.append(web)
        return web

    def start_media_worker(self, index: int = 0) -> MediaWorkerProcess:
        env = {
            **os.environ,
            **self.env,
            "DJANGO_SETTINGS_MODULE": "spaces_site.settings",
            "SECRET_KEY": "tests-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
            "DATABASE_URL": database_url(connection.settings_dict),
        }
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        worker = MediaWorkerProcess(env, index)
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        for web in self.webs:
            web.stop()
        self.redis.stop()


class Socket:
    """A space's websocket that reconnects as space.js does. Keeps every event and every close code."""

    def __init__(self, bases: list[str], path: str, *, cookie: str | None = None, reconnect: bool = True) -> None:
        self.bases = list(bases)
        self.path = path
        self.cookie = cookie
        self.reconnect = reconnect
        self.events: list[dict] = []
        self.closes: list[int] = []
        self.listeners: list = []
        self.ws = None
        self.connected = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.served_by: str | None = None

    async def start(self, timeout: float = 10) -> "Socket":
        self.task = asyncio.get_running_loop().create_task(self._run())
        await asyncio.wait_for(self.connected.wait(), timeout)
        return self

    async def _run(self) -> None:
        attempt, retry_after = 0, 0.0
        while True:
            base = self.bases[attempt % len(self.bases)]
            headers = {"Origin": base.replace("ws://", "http://")}
            if self.cookie:
                headers["Cookie"] = f"sessionid={self.cookie}"
            try:
                async with ws_connect(base + self.path, additional_headers=headers, open_timeout=5) as ws:
                    self.ws, self.served_by = ws, base
                    retry_after = 0.0
                    async for text in ws:
                        event = json.loads(text)
                        self.events.append(event)
                        if event["type"] == "snapshot":
                            self.connected.set()
                        if event["type"] == "error" and event.get("code") == "unavailable":
                            retry_after = event.get("retry_after", 1)
                        for listener in list(self.listeners):
                            await listener(event)
                    code = ws.close_code
            except (OSError, InvalidHandshake, InvalidStatus, TimeoutError):
                code = None  # that web process is gone: try the next one
                attempt += 1
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else 1006
            self.ws = None
            self.connected.clear()
            if code is not None:
                self.closes.append(code)
                for listener in list(self.listeners):
                    await listener({"type": "websocket.close", "code": code})
            if not self.reconnect or code in FINAL_CLOSES:
                return
            await asyncio.sleep(retry_after or 0.5)

    async def send(self, message: dict) -> None:
        await until(lambda: self.ws is not None, timeout=10, what="socket open to send")
        await self.ws.send(json.dumps(message))

    def seen(self, kind: str, **fields) -> list[dict]:
        return [e for e in self.events if e["type"] == kind and all(e.get(k) == v for k, v in fields.items())]

    def errors(self) -> list[dict]:
        return self.seen("error")

    async def close(self) -> None:
        self.reconnect = False
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task


class MediaClient:
    """An aiortc peer speaking the media protocol over a `Socket` the way audio.js does."""

    def __init__(self, socket: Socket, *, wav: Path | None = None) -> None:
        self.socket = socket
        self.wav = wav
        self.heard = Recorder()
        self.pc: RTCPeerConnection | None = None
        self.ref = 0
        self.answers = 0
        self.timer: asyncio.TimerHandle | None = None
        socket.listeners.append(self._on_event)
        allow_loopback_candidates()

    @property
    def publish(self) -> bool:
        return self.wav is not None

    async def start(self) -> "MediaClient":
        await self.offer()
        return self

    async def offer(self) -> None:
        await self._close_pc()
        pc = self.pc = RTCPeerConnection()
        pc.on("track", self.heard.attach)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc is self.pc and pc.connectionState == "failed":
                self._later(0.5)

        if self.publish:
            pc.addTransceiver(MediaPlayer(str(self.wav), loop=True).audio, direction="sendonly")
            for _ in range(SLOTS):
                pc.addTransceiver("audio", direction="recvonly")
        else:
            pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        self.ref += 1
        try:
            await self.socket.send(
                {"type": "media.offer", "sdp": pc.localDescription.sdp, "publish": self.publish, "ref": self._ref()}
            )
        except ConnectionClosed:
            return  # the socket's reconnect brings a snapshot, and with it a new offer
        self._later(ANSWER_TIMEOUT_S, only_if_unanswered=True)

    def _ref(self) -> str:
        return f"offer-{self.ref}"

    def _later(self, delay: float, *, only_if_unanswered: bool = False) -> None:
        if self.timer is not None:
            self.timer.cancel()
        pc = self.pc

        def fire() -> None:
            if only_if_unanswered and (pc is not self.pc or pc.signalingState != "have-local-offer"):
                return
            asyncio.get_running_loop().create_task(self.offer())

        self.timer = asyncio.get_running_loop().call_later(delay, fire)

    async def _on_event(self, event: dict) -> None:
        kind = event["type"]
        if kind == "media.answer" and event.get("ref") == self._ref() and self.pc.signalingState == "have-local-offer":
            self.timer.cancel()
            self.answers += 1
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=event["sdp"], type="answer"))
        elif kind == "media.error" and event.get("ref") == self._ref():
            self._later(event.get("retry_after", 2) if event["code"] == "media_unavailable" else 2)
        elif kind == "media.reset":
            await self.offer()
        elif kind == "websocket.close":
            await self._close_pc()
        elif kind == "snapshot" and self.pc is None:
            await self.offer()

    async def _close_pc(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.pc is not None:
            pc, self.pc = self.pc, None
            await pc.close()

    async def close(self) -> None:
        self.socket.listeners.remove(self._on_event)
        await self._close_pc()
