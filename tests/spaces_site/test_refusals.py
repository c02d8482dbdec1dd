"""A request refused for coming too often is refused again from memory until its Retry-After."""

import json

from spaces_site import refusals
from spaces_site.refusals import RememberedRefusals


class Site:
    """An ASGI app that refuses with 429 and `Retry-After: wait` while `refusing`, and counts its calls."""

    def __init__(self, wait: bytes = b"2") -> None:
        self.calls = 0
        self.refusing = True
        self.wait = wait

    async def __call__(self, scope, receive, send):
        self.calls += 1
        status, headers = (429, [(b"retry-after", self.wait)]) if self.refusing else (200, [])
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})


async def ask(app, path="/api/auth/signup/", client="10.0.0.1", token=b"") -> tuple[int, dict, dict]:
    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "client": (client, 5555),
        "headers": [(b"authorization", token)] if token else [],
    }
    await app(scope, receive, send)
    start, body = sent
    return start["status"], dict(start["headers"]), json.loads(body["body"] or b"{}")


async def test_a_refused_request_is_refused_again_after_a_pause_without_reaching_the_site(monkeypatch):
    clock, pauses = [1000.0], []

    async def pause(seconds):
        pauses.append(seconds)

    monkeypatch.setattr(refusals.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(refusals.asyncio, "sleep", pause)
    site = Site()
    app = RememberedRefusals(site)

    first = await ask(app)
    site.refusing = False  # (what the site would say now doesn't matter: the client was told to wait)
    again = await ask(app)

    assert first[0] == again[0] == 429
    assert site.calls == 1
    assert again[1][b"retry-after"] == b"2" and again[2]["code"] == "throttled"
    assert pauses == [refusals.HOLD_S]  # the rest of the wait, a second at most
    # once the wait is over, the request reaches the site again
    clock[0] += 2.01
    assert (await ask(app))[0] == 200
    assert site.calls == 2


async def test_other_clients_and_other_paths_are_not_held_back():
    site = Site()
    app = RememberedRefusals(site)
    await ask(app)

    await ask(app, client="10.0.0.2")
    await ask(app, token=b"Token other")
    await ask(app, path="/api/auth/token/")

    assert site.calls == 4


async def test_pages_and_answers_without_a_wait_are_not_remembered():
    site = Site()
    app = RememberedRefusals(site)

    await ask(app, path="/accounts/login/")
    await ask(app, path="/accounts/login/")

    assert site.calls == 2


async def test_a_sign_in_lockout_is_left_to_the_site():
    # half an hour for one username from one address: the next request may be another username's
    site = Site(wait=b"1800")
    app = RememberedRefusals(site)

    await ask(app, path="/api/auth/token/")
    await ask(app, path="/api/auth/token/")

    assert site.calls == 2
