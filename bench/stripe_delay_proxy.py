"""A slow or hanging Stripe for bench/ticket_rush.py: a TCP proxy in front of the Stripe stand-in.

    .venv/bin/python bench/stripe_delay_proxy.py --upstream http://127.0.0.1:PORT [--delay-ms 400] [--hang]

It listens on a free port of 127.0.0.1 and prints `{"port": N}` as its first
line; the site's `STRIPE_API_BASE` then points at it. Each connection it
accepts gets a connection of its own to the stand-in, and bytes go both ways
unchanged, except that every response is held back `--delay-ms` before its
first byte goes to the site: per connection, any bytes from the site mark "a
request was sent", and the first chunk the stand-in sends after that mark
waits the delay (so each request on a keep-alive connection waits, and the
rest of a response follows at once). Stripe's latency is thus the stand-in's
own time plus the delay.

Hanging, it accepts connections and reads and discards what comes, never
answering and never reaching the stand-in, as a Stripe that takes requests
and then goes silent; a connection that had a request swallowed stays silent.
Told to forward again ("Stripe is back"), it closes the silent connections
(their requests are lost) and forwards new ones.

It is told what to do by lines on its standard input, each answered by one
JSON line: `delay <ms>`, `hang`, `forward`, `stats` (connections accepted,
responses forwarded and delayed, chunks read and thrown away); it exits when its
standard input closes. The bench runs it as a process of its own, not a
thread beside its hundreds of client threads: there it would wait its turn
for the GIL, and its delay would grow with the load it is meant to measure.
`DelayProxy` starts it and talks to it.
"""

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

CHUNK = 65536


class Proxy:
    """The proxy's state: where to forward, the delay, whether it hangs, and what it did."""

    def __init__(self, upstream_host: str, upstream_port: int, *, delay_ms: int, hang: bool) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.delay_s = delay_ms / 1000
        self.hanging = hang
        self.silent: set[asyncio.StreamWriter] = set()  # connections that had a request swallowed
        self.counts: Counter = Counter()
        self.serving: dict[asyncio.Task, asyncio.StreamWriter] = {}

    async def serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.counts["connections"] += 1
        task = asyncio.current_task()
        self.serving[task] = client_writer
        try:
            await self._serve(client_reader, client_writer)
        finally:
            del self.serving[task]

    async def close(self) -> None:
        """Close every connection and let each end on its own (a cancelled one is logged as an error)."""
        for writer in self.serving.values():
            writer.close()
        if self.serving:
            await asyncio.wait(list(self.serving), timeout=5)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.hanging:
            await self._swallow(client_reader, client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            self.counts["upstream_refused"] += 1
            client_writer.close()
            return
        # Set by bytes from the site, cleared by the first chunk of the answer: that chunk waits.
        answer_due = asyncio.Event()
        pumps = [
            asyncio.ensure_future(self._to_upstream(client_reader, client_writer, upstream_writer, answer_due)),
            asyncio.ensure_future(self._to_client(upstream_reader, client_writer, answer_due)),
        ]
        try:
            # Either side closing ends the connection: HTTP clients don't half-close.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self.silent.discard(client_writer)
            for writer in (client_writer, upstream_writer):
                writer.close()

    async def _to_upstream(self, client_reader, client_writer, upstream_writer, answer_due: asyncio.Event) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await client_reader.read(CHUNK):
                if self.hanging or client_writer in self.silent:
                    # Once a request is swallowed, its answer must never come on this connection.
                    self.silent.add(client_writer)
                    self.counts["chunks_swallowed"] += 1
                    continue
                answer_due.set()
                upstream_writer.write(data)
                await upstream_writer.drain()

    async def _to_client(self, upstream_reader, client_writer, answer_due: asyncio.Event) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await upstream_reader.read(CHUNK):
                if answer_due.is_set():
                    answer_due.clear()
                    self.counts["responses"] += 1
                    if self.delay_s:
                        self.counts["responses_delayed"] += 1
                        await asyncio.sleep(self.delay_s)
                client_writer.write(data)
                await client_writer.drain()

    async def _swallow(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.counts["connections_hung"] += 1
        self.silent.add(client_writer)
        try:
            with contextlib.suppress(ConnectionError):
                while await client_reader.read(CHUNK):
                    self.counts["chunks_swallowed"] += 1
        finally:
            self.silent.discard(client_writer)
            client_writer.close()

    def command(self, line: str) -> dict:
        words = line.split()
        if words[:1] == ["delay"] and len(words) == 2:
            self.delay_s = int(words[1]) / 1000
        elif words == ["hang"]:
            self.hanging = True
        elif words == ["forward"]:
            self.hanging = False
            # Stripe is back; what it swallowed is lost, and those connections with it.
            for writer in list(self.silent):
                writer.close()
            self.silent.clear()
        elif words != ["stats"]:
            return {"error": f"unknown command {line.strip()!r}"}
        return {"delay_ms": round(self.delay_s * 1000), "hanging": self.hanging, **self.counts}


async def run(upstream: str, delay_ms: int, hang: bool) -> None:
    parts = urlsplit(upstream)
    proxy = Proxy(parts.hostname, parts.port, delay_ms=delay_ms, hang=hang)
    server = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    loop = asyncio.get_running_loop()
    commands = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(commands), sys.stdin)
    async with server:
        while line := await commands.readline():
            print(json.dumps(proxy.command(line.decode())), flush=True)
        server.close()
        await proxy.close()


class DelayProxy:
    """The proxy as a process of its own, for the bench: `url` to point the site at, `command` to steer it."""

    def __init__(self, upstream_url: str, *, delay_ms: int = 0, hang: bool = False) -> None:
        argv = [sys.executable, str(Path(__file__).resolve()), "--upstream", upstream_url, "--delay-ms", str(delay_ms)]
        self.process = subprocess.Popen(
            [*argv, "--hang"] if hang else argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        first = self.process.stdout.readline()
        if not first:
            raise RuntimeError(f"the Stripe proxy exited with {self.process.wait()}")
        self.url = f"http://127.0.0.1:{json.loads(first)['port']}"

    def command(self, line: str) -> dict:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", required=True, help="the stand-in's URL, http://host:port")
    parser.add_argument("--delay-ms", type=int, default=0, help="held back before each response")
    parser.add_argument("--hang", action="store_true", help="start hanging")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.upstream, args.delay_ms, args.hang))


if __name__ == "__main__":
    main()
