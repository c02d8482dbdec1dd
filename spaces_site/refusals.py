"""An API request the site has just refused for coming too often is refused again from memory.

When an answer under `/api/` is 429 with `Retry-After` (a DRF throttle, the
per-person command limit, a sign-in lockout), the same request from the same
client (address, method, path, credentials) gets the same answer until that
time, straight from here, without a thread, the middleware, the database or
the cache. Each refusal through Django cost a few milliseconds of the one
core the event loop shares with them; a flood of them held every socket's
events back (bench/abuse.py). Nothing gets through that Django would let
through: the client was told to wait that long.

A repeat is answered after a pause (the rest of the wait, `HOLD_S` at most),
as nginx's `limit_req` delays what is past its rate: answered at once, a
client that ignores `Retry-After` asked again as fast as the event loop could
answer, thousands of times a second, and the loop's time was theirs.

Each web process remembers its own refusals, at most `MEMORY` of them.
"""

import asyncio
import hashlib
import json
import math
import time
from collections import OrderedDict

MEMORY = 10_000
HOLD_S = 1.0
# Only the request limits' waits (a minute or two at most) are remembered. A sign-in lockout's half
# hour holds one username from one address, and the request, keyed without its body, can't tell
# which: another username from that address must still reach Django.
LONGEST_WAIT_S = 120
BODY = json.dumps(
    {"code": "throttled", "detail": "Too many requests: wait as Retry-After says before trying again."}
).encode()


class RememberedRefusals:
    """ASGI middleware; see the module docstring."""

    def __init__(self, app) -> None:
        self.app = app
        self.refused: OrderedDict[str, float] = OrderedDict()  # request key -> until (monotonic)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            return await self.app(scope, receive, send)
        key = _key(scope)
        now = time.monotonic()
        until = self.refused.get(key)
        if until is not None:
            if until > now:
                await asyncio.sleep(min(until - now, HOLD_S))
                return await _refuse(send, until - time.monotonic())
            del self.refused[key]

        async def send_and_remember(message):
            if message["type"] == "http.response.start" and message["status"] == 429:
                self._remember(key, message.get("headers", ()), now)
            await send(message)

        return await self.app(scope, receive, send_and_remember)

    def _remember(self, key: str, headers, now: float) -> None:
        wait = next((value for name, value in headers if name.lower() == b"retry-after"), b"")
        if not wait.isdigit() or not 0 < int(wait) <= LONGEST_WAIT_S:
            return
        self.refused[key] = now + int(wait)
        self.refused.move_to_end(key)
        while len(self.refused) > MEMORY:
            self.refused.popitem(last=False)


def _key(scope) -> str:
    headers = dict(scope.get("headers", ()))
    client = (scope.get("client") or ("", 0))[0]
    credentials = headers.get(b"authorization", b"") + b"|" + headers.get(b"cookie", b"")
    digest = hashlib.blake2b(credentials, digest_size=16).hexdigest()
    return f"{client} {scope['method']} {scope['path']} {digest}"


async def _refuse(send, wait_s: float) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"retry-after", str(max(1, math.ceil(wait_s))).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BODY})
