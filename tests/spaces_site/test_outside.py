"""A view that waits on an outside service (spaces_site/outside.py): its wait runs on the event loop, its
answer carries what the middleware chain added, and what its continuation says reaches the person."""

import asyncio
import logging
import threading

import pytest
from django.contrib import messages
from django.core.signals import request_finished, request_started
from django.http import HttpResponse
from django.urls import path

from spaces_site.handler import RequestThread, SiteHandler
from spaces_site.outside import OutsideCall

pytestmark = pytest.mark.urls(__name__)

waits: list[asyncio.AbstractEventLoop] = []


async def outside_answer() -> str:
    waits.append(asyncio.get_running_loop())
    await asyncio.sleep(0)
    return "opened"


async def outside_failure() -> str:
    raise ConnectionError("Stripe hung up")


def waiting_view(request):
    def then(outcome) -> HttpResponse:
        messages.success(request, "Checkout opened.")
        return HttpResponse(f"outside said {outcome()}", status=201)

    return OutsideCall(wait=outside_answer, then=then)


def failing_view(request):
    def then(outcome) -> HttpResponse:
        try:
            outcome()
        except ConnectionError as error:
            return HttpResponse(f"unavailable: {error}", status=503)
        return HttpResponse("never")

    return OutsideCall(wait=outside_failure, then=then)


def broken_view(request):
    def then(outcome) -> HttpResponse:
        raise RuntimeError("a bug in the continuation")

    return OutsideCall(wait=outside_answer, then=then)


chain_threads: list[threading.Thread] = []
handlers: list[SiteHandler] = []


def thread_view(request):
    chain_threads.append(threading.current_thread())
    return HttpResponse("ok")


async def outside_while_another_request_comes() -> str:
    status, _, _ = await asgi_get("/thread/", handlers[0])
    return f"another answered {status}"


def lending_view(request):
    chain_threads.append(threading.current_thread())
    return OutsideCall(wait=outside_while_another_request_comes, then=lambda outcome: HttpResponse(outcome()))


finished: list[str] = []
stripe_answers: list[asyncio.Event] = []


async def outside_after_the_buyer_left() -> str:
    await stripe_answers[0].wait()
    return "opened"


def leaving_view(request):
    def then(outcome) -> HttpResponse:
        finished.append(outcome())
        return HttpResponse("recorded")

    return OutsideCall(wait=outside_after_the_buyer_left, then=then)


def missing_view(request):
    chain_threads.append(threading.current_thread())
    return HttpResponse("no such thing", status=404)


urlpatterns = [
    path("missing/", missing_view),
    path("wait/", waiting_view),
    path("leave/", leaving_view),
    path("lend/", lending_view),
    path("thread/", thread_view),
    path("fail/", failing_view),
    path("broken/", broken_view),
]


async def asgi_get(path_: str, handler: SiteHandler | None = None) -> tuple[int, dict, bytes]:
    """One GET through the site's ASGI handler (not the test client's), as daphne would send it."""
    sent: list[dict] = []
    inbox = asyncio.Queue()
    await inbox.put({"type": "http.request", "body": b"", "more_body": False})

    async def receive():
        return await inbox.get()

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path_, "raw_path": path_.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }  # fmt: skip
    await asyncio.wait_for((handler or SiteHandler())(scope, receive, send), 5)
    start = sent[0]
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    return start["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])


def served(path_: str, handler: SiteHandler | None = None) -> tuple[tuple[int, dict, bytes], asyncio.AbstractEventLoop]:
    """`asgi_get` on an event loop of its own in a thread of its own, as daphne's is: the test's own loop
    and thread keep none of what the handler's requests leave behind."""
    answer: dict = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        try:
            answer["result"] = loop.run_until_complete(asgi_get(path_, handler))
            answer["loop"] = loop
        finally:
            loop.close()

    thread = threading.Thread(target=serve)
    thread.start()
    thread.join(timeout=10)
    return answer["result"], answer["loop"]


@pytest.mark.django_db(transaction=True)
def test_under_the_site_handler_the_wait_runs_on_its_loop_and_the_answer_keeps_the_chain_headers():
    waits.clear()

    (status, headers, body), loop = served("/wait/")

    assert (status, body) == (201, b"outside said opened")
    assert waits == [loop]  # on the server's loop, not a thread's own
    assert headers["x-frame-options"] == "DENY"  # added by the chain to the placeholder, kept
    assert "content-security-policy" in headers
    assert "messages=" in headers.get("set-cookie", "")  # the continuation's note is stored
    assert headers["content-length"] == str(len(body))


@pytest.mark.django_db(transaction=True)
def test_while_it_waits_outside_a_request_holds_no_thread():
    # given: one handler, whose first request waits outside while a second comes to it
    chain_threads.clear()
    handlers[:] = [SiteHandler()]

    (status, _, body), _ = served("/lend/", handlers[0])

    # then: the second ran on the very thread the first had run on, given back for the wait
    assert (status, body) == (200, b"another answered 200")
    assert len(chain_threads) == 2 and chain_threads[0] is chain_threads[1]


@pytest.mark.django_db(transaction=True)
def test_a_buyer_who_hangs_up_while_stripe_is_asked_still_has_the_answer_recorded():
    finished.clear()
    handler = SiteHandler()

    async def hang_up_then_stripe_answers() -> None:
        stripe_answers[:] = [asyncio.Event()]
        messages = [{"type": "http.request", "body": b"", "more_body": False}, {"type": "http.disconnect"}]

        async def receive():
            if len(messages) == 1:
                await asyncio.sleep(0.2)  # the buyer hangs up while Stripe is being asked
            return messages.pop(0)

        async def send(message):
            pass

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": "/leave/", "raw_path": b"/leave/", "query_string": b"", "root_path": "",
            "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
        }  # fmt: skip
        await asyncio.wait_for(handler(scope, receive, send), 5)  # the handler is done with the request
        stripe_answers[0].set()  # and then Stripe answers
        for _ in range(100):
            if finished:
                return
            await asyncio.sleep(0.02)

    thread = threading.Thread(target=lambda: asyncio.run(hang_up_then_stripe_answers()))
    thread.start()
    thread.join(timeout=10)

    assert finished == ["opened"]


@pytest.mark.django_db(transaction=True)
def test_a_continuation_that_raises_is_answered_as_a_views_exception_is():
    (status, _, _), _ = served("/broken/")

    assert status == 500


def test_under_wsgi_the_request_thread_waits_and_the_continuation_sees_the_failure(client):
    answer = client.get("/fail/")

    assert (answer.status_code, answer.content) == (503, b"unavailable: Stripe hung up")
    assert answer["X-Frame-Options"] == "DENY"


def test_the_request_log_writes_the_real_answer_after_the_wait(client, settings, caplog):
    # given: make run's one line per request
    at = settings.MIDDLEWARE.index("whitenoise.middleware.WhiteNoiseMiddleware") + 1
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE[:at],
        "spaces_site.request_log.RequestLogMiddleware",
        *settings.MIDDLEWARE[at:],
    ]

    # when
    with caplog.at_level("INFO", logger="spaces_site.requests"):
        client.get("/wait/")

    # then: one line, with the status the person got, not the placeholder's
    lines = [record.getMessage() for record in caplog.records if record.name == "spaces_site.requests"]
    assert len(lines) == 1
    assert lines[0].startswith("GET /wait/ 201 ")


@pytest.mark.django_db(transaction=True)
def test_a_request_starts_runs_is_logged_and_ends_in_one_hop_to_its_thread(caplog, monkeypatch):
    # given: every call the handler sends to a request's thread counted, and Django's signals watched
    chain_threads.clear()
    hops, seen = [], []
    submit = RequestThread.submit
    monkeypatch.setattr(
        RequestThread, "submit", lambda self, fn, *a, **kw: hops.append(fn) or submit(self, fn, *a, **kw)
    )

    def started(**kwargs):
        seen.append(("started", threading.current_thread()))

    def ended(**kwargs):
        seen.append(("finished", threading.current_thread()))

    request_started.connect(started)
    request_finished.connect(ended)
    try:
        with caplog.at_level(logging.WARNING, logger="django.request"):
            (status, _, body), _ = served("/missing/")
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(ended)

    # then: the start, the view, the log of the 404 and the end, all in the one hop to the request's thread
    (thread,) = chain_threads
    assert (status, body) == (404, b"no such thing")
    assert len(hops) == 1
    assert seen == [("started", thread), ("finished", thread)]
    (logged,) = [r for r in caplog.records if r.name == "django.request"]
    assert (logged.getMessage(), logged.thread) == ("Not Found: /missing/", thread.ident)
