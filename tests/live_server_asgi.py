"""The whole site, websockets included, served live for browser tests.

pytest-django's `live_server` is a WSGI server: it can't answer a websocket.
`AsgiLiveServer` runs the real `spaces_site.asgi:application` under daphne in
a child process (`python -m tests.live_server_asgi`), on the test database
and with the test settings, so a browser gets the pages, the static files and
the space's socket from one address, as in production.

The child is a separate process, so it sees only what the test commits (use
`django_db(transaction=True)`) and only a database it can open: PostgreSQL,
or SQLite in a file (tests/conftest.py makes the SQLite test database a file).
Its channel layer and cache are its own when they are in memory, shared when
`REDIS_URL` is set; the test talks to it only through the browser.
"""

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The parent hands the test database's settings to the child in this variable.
DATABASES_ENV = "SPACES_LIVE_SERVER_DATABASES"
# And, to serve as a given daphne command line does, that command's arguments (JSON).
DAPHNE_ARGS_ENV = "SPACES_LIVE_SERVER_DAPHNE_ARGS"
HOST = "127.0.0.1"


class AsgiLiveServer:
    """A daphne child process serving the site at `url` (http) and `ws_url` (websockets).

    `daphne_args`: serve as `daphne <daphne_args>` would (daphne's own command line, its options and
    the application it names), listening where this class says instead.
    """

    def __init__(
        self,
        databases: dict,
        *,
        startup_timeout: float = 30,
        env: dict | None = None,
        daphne_args: list[str] | None = None,
    ):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "spaces_site.settings_test",
            DATABASES_ENV: json.dumps(databases, default=str),
            **({DAPHNE_ARGS_ENV: json.dumps(daphne_args)} if daphne_args is not None else {}),
            **(env or {}),
        }
        # The browser fixtures set this for the test's own ORM calls; the server
        # must not inherit it, or a sync call inside a consumer would go unnoticed.
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.live_server_asgi"], cwd=ROOT, env=env, stdout=subprocess.PIPE
        )
        try:
            self.port = self._read_port(startup_timeout)
        except BaseException:
            self.stop()
            raise
        self.url = f"http://{HOST}:{self.port}"
        self.ws_url = f"ws://{HOST}:{self.port}"

    def _read_port(self, timeout: float) -> int:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise RuntimeError(f"daphne did not start within {timeout} s (its log is in the captured stderr)")
        line = self.process.stdout.readline().decode().strip()
        if not line.isdigit():
            code = self.process.wait(timeout=10)
            raise RuntimeError(f"daphne exited with {code} before listening (its log is in the captured stderr)")
        return int(line)

    def stop(self, timeout: float = 10) -> None:
        """Stop the server and wait for it, so its database connections are closed when this returns."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        self.process.stdout.close()

    def kill(self) -> None:
        """SIGKILL: the process dies without closing anything (a crashed web process)."""
        self.process.kill()
        self.process.wait(timeout=10)
        self.process.stdout.close()

    def __enter__(self) -> "AsgiLiveServer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __str__(self) -> str:
        return self.url


def _serve() -> None:
    """The child: daphne on a free port of 127.0.0.1, as the given command line if any; prints the
    port on stdout once listening."""
    # daphne.server (daphne.cli imports it) installs Twisted's asyncio reactor; it must come before
    # anything imports Twisted.
    from daphne.cli import CommandLineInterface
    from daphne.server import Server
    from django.conf import settings
    from twisted.internet import reactor

    settings.DATABASES = json.loads(os.environ[DATABASES_ENV])
    servers: list[Server] = []

    def announce() -> None:
        server = servers[0]
        if not server.listening_addresses:
            reactor.callLater(0.05, announce)
            return
        sys.stdout.write(f"{server.listening_addresses[0][1]}\n")
        sys.stdout.flush()
        # Anything printed later goes to stderr: the parent reads stdout only for the port.
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def server(**options) -> Server:
        # Without signal handlers, SIGTERM ends the process at once; the kernel closes its sockets.
        servers.append(Server(**options, signal_handlers=False, ready_callable=announce))
        return servers[0]

    if DAPHNE_ARGS_ENV in os.environ:
        command = CommandLineInterface()
        command.server_class = server
        command.run([*json.loads(os.environ[DAPHNE_ARGS_ENV]), "-b", HOST, "-p", "0"])
        return

    from spaces_site.asgi import application

    server(application=application, endpoints=[f"tcp:port=0:interface={HOST}"]).run()


if __name__ == "__main__":
    _serve()
