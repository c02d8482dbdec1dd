"""The line before Django: at most N requests inside at once, first come first served."""

import asyncio

from spaces_site.admission import PLACE, Admission, Line


class Views:
    """An ASGI app whose requests each wait until the test lets them answer."""

    def __init__(self) -> None:
        self.scopes: dict[str, dict] = {}
        self.entered: list[str] = []
        self.inside = 0
        self.most_inside = 0
        self.answer: dict[str, asyncio.Event] = {}
        self.stream_more: dict[str, asyncio.Event] = {}

    async def __call__(self, scope, receive, send):
        name = scope["path"]
        self.scopes[name] = scope
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


async def request(app, path: str, kind: str = "http", method: str = "GET") -> list[dict]:
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b""}

    await app({"type": kind, "path": path, "method": method}, receive, send)
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


async def test_a_rush_of_writes_fills_the_write_line_and_a_page_view_still_enters_at_once():
    # given: a line of 2, and five checkouts (POST) inside or waiting
    views = Views()
    app = Admission(views, limit=2)
    posts = [asyncio.ensure_future(request(app, f"/buy/{n}", method="POST")) for n in range(5)]
    await settle()

    # when: a page is asked for
    page = asyncio.ensure_future(request(app, "/", method="GET"))
    await settle()

    # then: the page entered beside the two writes; the three other writes still wait
    assert views.entered == ["/buy/0", "/buy/1", "/"]
    views.answer["/"].set()
    assert (await asyncio.wait_for(page, 2))[0]["status"] == 200
    for n in range(5):
        views.answer.setdefault(f"/buy/{n}", asyncio.Event()).set()
        await settle()
    await asyncio.wait_for(asyncio.gather(*posts), 2)


async def test_a_request_that_leaves_the_line_to_wait_outside_lets_the_next_one_in():
    # given: a line of 1, a checkout inside and another waiting
    views = Views()
    app = Admission(views, limit=1)
    first = asyncio.ensure_future(request(app, "/buy/1", method="POST"))
    second = asyncio.ensure_future(request(app, "/buy/2", method="POST"))
    await settle()
    assert views.entered == ["/buy/1"]

    # when: the first gives its place back to wait on Stripe (spaces_site/outside.py), twice over
    views.scopes["/buy/1"][PLACE].leave()
    views.scopes["/buy/1"][PLACE].leave()
    await settle()

    # then: the second is in, and only one place was given back (a third still waits)
    third = asyncio.ensure_future(request(app, "/buy/3", method="POST"))
    await settle()
    assert views.entered == ["/buy/1", "/buy/2"]
    for name in ("/buy/1", "/buy/2", "/buy/3"):
        views.answer.setdefault(name, asyncio.Event()).set()
        await settle()
    await asyncio.wait_for(asyncio.gather(first, second, third), 2)
    assert views.entered == ["/buy/1", "/buy/2", "/buy/3"]


async def test_a_request_back_from_outside_goes_before_everyone_who_came_after_it():
    # given: a line of 1; the first checkout left it to wait on Stripe, the second is in, three more wait
    views = Views()
    app = Admission(views, limit=1)
    first = asyncio.ensure_future(request(app, "/buy/1", method="POST"))
    await settle()
    place = views.scopes["/buy/1"][PLACE]
    place.leave()
    later = [asyncio.ensure_future(request(app, f"/buy/{n}", method="POST")) for n in (2, 3, 4)]
    await settle()
    assert views.entered == ["/buy/1", "/buy/2"]

    # when: Stripe answers the first, which comes back while the second is still inside
    back = asyncio.ensure_future(place.come_back())
    await settle()
    assert not back.done()
    views.answer["/buy/2"].set()
    await settle()

    # then: the first has the place the second gave up, and the third still waits
    assert back.done() and views.entered == ["/buy/1", "/buy/2"]
    views.answer["/buy/1"].set()
    for n in (3, 4):
        views.answer.setdefault(f"/buy/{n}", asyncio.Event()).set()
    await asyncio.wait_for(asyncio.gather(first, *later), 2)
    assert views.entered == ["/buy/1", "/buy/2", "/buy/3", "/buy/4"]


async def test_a_waiter_that_gives_up_loses_its_turn_and_no_place():
    line = Line(1)
    await line.enter()
    gives_up = asyncio.ensure_future(line.enter())
    stays = asyncio.ensure_future(line.enter(back=True))
    await settle()

    # a waiter cancelled in the line, and another cancelled just as its place came
    gives_up.cancel()
    await settle()
    line.leave()
    stays.cancel()
    await settle()

    assert gives_up.cancelled() and stays.cancelled()
    assert line.inside == 0  # the place came back to the line, once
    await asyncio.wait_for(line.enter(), 1)


async def test_while_a_page_is_answered_writes_go_in_one_at_a_time():
    # given: a line of 3; one checkout inside, four more waiting
    views = Views()
    app = Admission(views, limit=3)
    first = asyncio.ensure_future(request(app, "/buy/0", method="POST"))
    await settle()

    # when: a page is asked for, and then more checkouts come
    page = asyncio.ensure_future(request(app, "/", method="GET"))
    await settle()
    posts = [asyncio.ensure_future(request(app, f"/buy/{n}", method="POST")) for n in range(1, 5)]
    await settle()

    # then: while the page is inside, no second write joins the first
    assert views.entered == ["/buy/0", "/"]
    views.answer["/buy/0"].set()
    await settle()
    assert views.entered == ["/buy/0", "/", "/buy/1"]  # one at a time

    # and once the page is answered, the writes take all three places again
    views.answer["/"].set()
    await asyncio.wait_for(page, 2)
    await settle()
    assert views.entered == ["/buy/0", "/", "/buy/1", "/buy/2", "/buy/3"]
    for n in range(1, 5):
        views.answer.setdefault(f"/buy/{n}", asyncio.Event()).set()
    await asyncio.wait_for(asyncio.gather(first, *posts), 2)
