"""A hanging Stripe stops nobody else: checkouts wait on the event loop holding no place, thread or connection.

The real site under daphne (a child process) on PostgreSQL with psycopg's
pool of 4, its Stripe address a socket that accepts and never answers. Ten
buyers wait on it at once, more than the pool and the write line have
places, while the home page and other writes are served, and every buyer is
then told 503 `payments_unavailable`, with its seat given back.
"""

import json
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory
from tests.live_server_asgi import AsgiLiveServer
from tests.ticketing.scene import HangingStripe, make_ticketed_space
from ticketing.models import Ticket, TicketState

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BUYERS = 10
PAGE_VIEWS = 50
POOL_SIZE = 4
BUDGET_S = 5


def call(url: str, *, token: str | None = None, method: str = "GET", timeout: float = 30) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token:
        request.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def metric(site_url: str, name: str) -> float:
    _, _, body = call(f"{site_url}/metrics", token=None)
    found = re.search(rf"^{name} ([0-9.e+-]+)$", body.decode(), re.MULTILINE)
    assert found, f"{name} is not in /metrics"
    return float(found.group(1))


def test_checkouts_waiting_on_a_hanging_stripe_hold_no_connection_and_pages_are_served(stripe_standin):
    # given: a ticketed space, ten buyers, and the site's Stripe hanging
    space = make_ticketed_space(stripe_standin, cap=50)
    tokens = [Token.objects.create(user=UserFactory()).key for _ in range(BUYERS)]
    host_token = Token.objects.create(user=space.host).key
    hanging = HangingStripe()
    database = dict(connections["default"].settings_dict)
    database.update(
        ENGINE="spaces_site.postgresql",
        CONN_MAX_AGE=0,
        OPTIONS={**database.get("OPTIONS", {}), "pool": {"min_size": 2, "max_size": POOL_SIZE, "timeout": 10}},
    )
    env = {
        "STRIPE_SECRET_KEY": stripe_standin.api_key,
        "STRIPE_API_BASE": hanging.url,
        "STRIPE_REQUEST_BUDGET_S": str(BUDGET_S),
        "SPACES_WEB_CONCURRENCY": "4",
        "SPACES_METRICS_TOKEN": "",
    }
    try:
        with AsgiLiveServer({"default": database}, env=env) as site, ThreadPoolExecutor(BUYERS) as pool:
            # when: the ten buy at once, and wait on Stripe
            started = time.monotonic()
            buys = [
                pool.submit(call, f"{site.url}/api/spaces/{space.pk}/tickets/", token=token, method="POST")
                for token in tokens
            ]
            deadline = time.monotonic() + BUDGET_S
            while metric(site.url, "spaces_web_outside_waits") < BUYERS:
                assert time.monotonic() < deadline, "the ten checkouts never all waited on Stripe"
                time.sleep(0.05)
            in_use = metric(site.url, "spaces_db_pool_connections_in_use")
            held = Ticket.objects.filter(space=space, state=TicketState.HELD).count()

            # ... while fifty page views and another write are served
            page_times = []
            for _ in range(PAGE_VIEWS):
                begun = time.monotonic()
                status, _, _ = call(f"{site.url}/", timeout=5)
                page_times.append((status, time.monotonic() - begun))
            write_begun = time.monotonic()
            host_buys, _, host_body = call(
                f"{site.url}/api/spaces/{space.pk}/tickets/", token=host_token, method="POST", timeout=5
            )
            write_s = time.monotonic() - write_begun
            still_waiting = metric(site.url, "spaces_web_outside_waits")
            answers = [buy.result(timeout=BUDGET_S * 3) for buy in buys]
            answered_within = time.monotonic() - started
    finally:
        hanging.close()

    # then: nobody waiting on Stripe held a connection; pages and writes went on
    assert held == BUYERS
    assert in_use == 0
    assert still_waiting == BUYERS  # the pages were served during the wait, not after it
    assert [status for status, _ in page_times] == [200] * PAGE_VIEWS
    assert max(seconds for _, seconds in page_times) < 1
    assert (host_buys, json.loads(host_body)["code"], write_s < 1) == (403, "buy_not_allowed", True)
    # ... and every buyer was told, within the budget, that payments are unavailable, and lost no seat
    assert [status for status, _, _ in answers] == [503] * BUYERS
    assert {json.loads(body)["code"] for _, _, body in answers} == {"payments_unavailable"}
    assert all(int(headers["Retry-After"]) > 0 for _, headers, _ in answers)
    assert answered_within < BUDGET_S + 3
    assert Ticket.objects.filter(space=space, state=TicketState.HELD).count() == 0
