"""The line before Django: at most N requests inside at once, first come first served."""

import asyncio

from spaces_site.admission import Admission


class Views:
    """An ASGI app whose requests each wait until the test lets them answer."""

    def __init__(self) -> None:
        self.entered: list[str] = []
        self.inside = 0
        self.most_inside = 0
        self.answer: dict[str, asyncio.Event] = {}
        self.stream_more: dict[str, asyncio.Event] = {}

    async def __call__(self, scope, receive, send):
        name = scope["path"]
        self.entered.append(name)
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        try:
            await self.answer.setdefault(name, asyncio.Event()).wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            if name in self.stream_more:  # a streamed body goes on after the start
                await self.stream_more[name].wait()
            await send({"type": "http.response.body", "body": b"ok"})
        finally:
            self.inside -= 1


async def request(app, path: str, kind: str = "http") -> list[dict]:
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    await app({"type": kind, "path": path}, receive, send)
    return sent


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_past_the_limit_requests_wait_and_enter_in_the_order_they_came():
    views = Views()
    app = Admission(views, limit=2)
    requests = []
    for n in range(5):
        requests.append(asyncio.ensure_future(request(app, f"/{n}")))
        await settle()

    assert views.entered == ["/0", "/1"]
    for n in range(5):
        views.answer.setdefault(f"/{n}", asyncio.Event()).set()
        await settle()
    answers = await asyncio.wait_for(asyncio.gather(*requests), 2)

    assert views.entered == ["/0", "/1", "/2", "/3", "/4"]
    assert views.most_inside == 2
    assert all(sent[0]["status"] == 200 for sent in answers)


async def test_a_streamed_body_gives_its_place_up_once_the_response_has_started():
    views = Views()
    app = Admission(views, limit=1)
    views.stream_more["/replay"] = asyncio.Event()
    views.answer["/replay"] = asyncio.Event()
    views.answer["/replay"].set()
    replay = asyncio.ensure_future(request(app, "/replay"))
    await settle()
    page = asyncio.ensure_future(request(app, "/page"))
    await settle()

    assert views.entered == ["/replay", "/page"]  # the replay still streams
    views.answer["/page"].set()
    assert (await asyncio.wait_for(page, 2))[0]["status"] == 200
    views.stream_more["/replay"].set()
    await asyncio.wait_for(replay, 2)


async def test_a_request_that_fails_gives_its_place_up():
    async def broken(scope, receive, send):
        raise RuntimeError("the view broke")

    app = Admission(broken, limit=1)
    for _ in range(3):
        try:
            await asyncio.wait_for(request(app, "/"), 1)
        except RuntimeError:
            pass
        else:
            raise AssertionError("the error was swallowed")


async def test_websockets_and_a_limit_of_zero_pass_straight_in():
    views = Views()
    sockets = Admission(views, limit=1)
    unbounded = Admission(views, limit=0)

    waiting = [asyncio.ensure_future(request(sockets, f"/ws/{n}", kind="websocket")) for n in range(3)]
    waiting += [asyncio.ensure_future(request(unbounded, f"/{n}")) for n in range(3)]
    await settle()

    assert views.inside == 6
    for event in views.answer.values():
        event.set()
    await asyncio.wait_for(asyncio.gather(*waiting), 2)
