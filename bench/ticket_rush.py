"""Ticket rush benchmark: N buyers start a checkout at the same instant for a space with C seats.

    .venv/bin/python bench/ticket_rush.py [--buyers 300] [--cap 50] [--complete 40] [--expire 10]
        [--database-url postgres://postgres@127.0.0.1:5432/spaces_bench_tix] [--web-concurrency 0] [--keep-db]
        [--stripe-latency-ms 400 [--compare-instant]] [--stripe-hang [--recovery-buyers 10]]
        [--breaker-cooldown-s 5] [--stripe-budget-s S] [--quiet-s 3] [--web-processes 1] [--log daphne.log]
        [--repeat 1]

It makes its own PostgreSQL database (`DATABASE_URL`, or the default above; an
existing database of that name is dropped first, and the database is dropped
again at the end unless `--keep-db`), migrates it, starts our Stripe stand-in
(`ticketing.stripe_standin`) in this process and daphne (DEBUG off, static
files collected once into a scratch folder, as the home page needs them) on a
free port of 127.0.0.1 with `STRIPE_API_BASE` pointing at the stand-in, and
seeds an eligible, onboarded creator, one scheduled ticketed space with C
seats (`--cap`) and 2 x N buyers (`--buyers`) with API tokens.

Round 1: N threads, one connection each, connect, wait `--quiet-s` (3) and
are released together; each POSTs `/api/spaces/<id>/tickets/` once: exactly
C must get a Checkout Session (201) and the rest a 409 `sold_out`. Then
`--complete` of the holds are paid and `--expire` expire at the stand-in
(by default 4/5 and 1/5 of C), which signs and posts the 2 x (complete +
expire) events (each twice, concurrently) to daphne's webhook. Round 2: N
new buyers race for the `expire` seats that came back.

`--repeat N` (1) makes N whole runs and reports the median one: this
machine's speed for the same pure Python varies by half within a minute
(`cpu_calibration_ms`, below), and one run's figure with it.

`--web-processes P` (1) starts P daphne processes accepting from one
listening socket (`daphne --fd`), as several web processes behind a
balancer would share the load; each has its own line and thread pool.

A slow Stripe, `--stripe-latency-ms N`: daphne's `STRIPE_API_BASE` points at
a TCP proxy (bench/stripe_delay_proxy.py) that forwards to the stand-in and
holds each response back N ms before its first byte (each request of a
keep-alive connection too). The proxy is a process of its own, so its delay
doesn't wait on the GIL behind this process's client threads. Without
`--stripe-latency-ms` or `--stripe-hang` there is no proxy. With
`--compare-instant` the whole bench runs twice, each time with a fresh
database, stand-in and daphne: first through the proxy with no delay (so the
two runs differ only in the delay), then with N ms; the instant run's main
figures go under `instant`.

A hanging Stripe, `--stripe-hang`: during round 1 the proxy accepts
connections and reads and discards what comes, never answering. Each
checkout that holds a seat must be answered 503 `payments_unavailable` with
`Retry-After` within 10 s, its seat given back; the others 409 `sold_out`
(while seats are held) or 503 too (once the site's breaker is open); no 201
can come. Then Stripe is back (the proxy forwards again, closing the
connections it left silent), the bench waits the breaker's cool-down plus
1 s, and `--recovery-buyers` (10, at most C) new buyers come one after
another: each must get a 201, without a restart of daphne. The hang mode has
no webhooks and no round 2; it combines with `--stripe-latency-ms`.

Daphne's environment: `STRIPE_BREAKER_COOLDOWN_S` from `--breaker-cooldown-s`
(5 by default here, shorter than the site's own), `STRIPE_REQUEST_BUDGET_S` from
`--stripe-budget-s` (unset by default: the site's own), both whole seconds,
and `STRIPE_TIMEOUT_S`, `STRIPE_MAX_NETWORK_RETRIES`,
`STRIPE_BREAKER_FAILURES` as in the bench's own environment.
`SPACES_API_ANON_RATE` is 100000/min unless set, as the bystander below is
an anonymous visitor at 5 API requests a second.

A bystander, a process of its own (its timing not bent by the GIL of the
client threads here), asks for `GET /` and `GET /api/spaces/` in turn every
100 ms over one keep-alive connection, as a visitor's browser would, from
before round 1 to its end. Its latencies are taken over the quiet phase
(buyers connected, not yet released) and over the rush (from the start
signal to the last answer of round 1); both clocks are the system's
monotonic clock, so they compare across the processes.

Figures (round 1 unless named):
- `checkouts_created`, `sold_out`, `payments_unavailable` (503), `errors`
  (anything else, in every round and in webhook deliveries; a 503 counts as
  an error outside the hang mode), `error_samples`;
- `checkouts_per_s`: checkouts created per second from the first 201 to the
  last, (created - 1) / (last - first): a throughput, as each checkout's own
  wait includes Stripe's latency; `checkouts_per_s_from_start`: created /
  time from the start signal to the last 201 (the old figure);
  `checkouts_per_s_vs_instant` (with `--compare-instant`): the share of the
  instant run's `checkouts_per_s`;
- `requests_per_s`, `elapsed_s` (start signal to last answer),
  `latency_p50_ms`, `latency_p95_ms`, `checkout_latency_p95_ms` (201s only),
  `slowest_answer_s`, `slowest_payments_unavailable_s`,
  `payments_unavailable_without_retry_after`;
- `bystander_{quiet,rush}_{requests,p50_ms,p95_ms,max_ms}`,
  `bystander_p95_ratio` (rush p95 / quiet p95); with `--stripe-hang` also
  `bystander_waiting_*` and `bystander_waiting_p95_ratio`, over the time from
  the rush's last other answer to the last 503, when only the checkouts
  waiting on the hanging Stripe are left (what the hang itself costs
  everyone else, apart from the rush's CPU); `bystander_errors` (answers
  other than 200 in the two phases);
- `held_after_round_1`, `paid`, `released`, `round_2_created`,
  `round_2_sold_out`, `webhook_deliveries`; in the hang mode
  `recovery_buyers`, `recovery_created`, `recovery_answers`;
- `oversell` (paid + held tickets above the cap, read from the database at
  the end: a hold given back is `released` and no longer counts) and
  `sessions_without_seat` (Checkout Sessions at the stand-in, not expired,
  that no held or paid ticket names): both must be 0;
- `stripe_proxy`: what the proxy did (connections, responses delayed, chunks
  thrown away), with `stripe_latency_ms` and `stripe_hang`; `web_concurrency`,
  `site_web_concurrency`, `web_processes`, `cores`; `bystander_error_samples`, `instant`;
- `cpu_calibration_ms`: how long this process took for a fixed loop of pure
  Python just before round 1 (lower is a faster moment of the machine);
- with `--repeat N`: `repeats`, every run's main figures, and
  `repeat_median_of`, the figure the reported run is the median of
  (`checkouts_per_s`, or `bystander_p95_ratio` with `--stripe-hang`).

Goals (the issue's): 0 oversold, 0 sessions without a seat, 0 errors, 0
bystander errors; outside the hang mode C checkouts, N - C sold out, all of
round 2's seats taken, `--complete` paid, `checkouts_per_s` >= 100 with an
instant Stripe and >= 50 with a delay (and >= 0.9 of the instant run's with
`--compare-instant`), bystander p95 during the rush <= 250 ms; in the hang
mode no 201 in round 1, every 503 with `Retry-After`, the slowest 503 within
10 s, bystander p95 during the rush and while only the waiting checkouts are
left <= 2 x quiet, every recovery buyer a 201.
The last line is one JSON object with the figures, `goal` (a bound as
"<= x" / ">= x", else the exact value), `goal_met` (a boolean per goal) and
`met` (all of them, and the instant run's too); the exit status is 0 when
met. `--log FILE` appends daphne's output to FILE. Client and server share
the machine's cores.

The site lets at most `SPACES_WEB_CONCURRENCY` requests into Django at once
per process (4 by default; the rest wait in line, first come first served:
spaces_site/admission.py), so `--web-concurrency 0`, the default, adds no
bound of the bench's own; `--web-concurrency K` puts the bench's own line of
K in front as well (set `SPACES_WEB_CONCURRENCY=0` to take the site's away).
Django's ASGI handler runs each request on a thread of its own; the site's
PostgreSQL connection pool (`DATABASE_POOL_MAX_SIZE`, opt-in; 20 here unless
set) makes the requests past it wait for a connection, where without the
pool they opened one each and those past `max_connections` (100 here)
failed with 500.
"""

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stripe_delay_proxy import DelayProxy  # noqa: E402 - bench/, the script's folder, is on the path

from ticketing.stripe_standin import StripeStandin  # noqa: E402 - after the path is set

# The interpreter running the bench (any virtualenv with requirements-dev.txt), and daphne under it.
PYTHON = sys.executable
DAPHNE = (sys.executable, "-m", "daphne")
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/spaces_bench_tix"
REQUEST_TIMEOUT_S = 60.0
START_TIMEOUT_S = 30.0
BYSTANDER_INTERVAL_S = 0.1
BYSTANDER_PATHS = ("/", "/api/spaces/")
RECOVERY_MARGIN_S = 1.0  # waited past the breaker's cool-down before the recovery buyers come

# The goals (12 and 23); which apply depends on the mode (goals_of).
CHECKOUTS_PER_S_INSTANT = 100  # 50 seats sold out within 0.5 s of a 300-buyer rush
CHECKOUTS_PER_S_SLOW_STRIPE = 50
SHARE_OF_INSTANT = 0.9
BYSTANDER_RUSH_P95_MS = 250
BYSTANDER_HANG_P95_RATIO = 2
HANG_ANSWER_S = 10


def say(message: str) -> None:
    print(f"[ticket_rush {time.strftime('%H:%M:%S')}] {message}", flush=True)


# The web process: the site, with at most K requests in Django at once (daphne imports this module).


def __getattr__(name: str):
    if name != "limited_application":
        raise AttributeError(name)
    import asyncio

    from spaces_site.asgi import application

    limit = int(os.environ["TICKET_RUSH_WEB_CONCURRENCY"])
    if not limit:
        return application
    slots = asyncio.Semaphore(limit)

    async def limited_application(scope, receive, send):
        if scope["type"] != "http":
            return await application(scope, receive, send)
        async with slots:
            return await application(scope, receive, send)

    return limited_application


# Seeding runs in a subprocess with Django set up against the benchmark's database.


def seed(out_path: str, buyers: int, cap: int) -> None:
    import django

    django.setup()
    from datetime import timedelta

    from django.contrib.auth.hashers import make_password
    from django.db import connection
    from django.db.models import F
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from accounts.models import Follow, User
    from rooms import services as rooms_services
    from rooms.models import Space, SpaceState
    from ticketing import services
    from ticketing.models import CreatorAccount

    password = make_password("bench-password")
    creator = User.objects.create(username="bench_creator", password=password)
    fans = User.objects.bulk_create([User(username=f"bench_fan{i:05d}", password=password) for i in range(1000)])
    Follow.objects.bulk_create(Follow(follower=fan, followee=creator) for fan in fans)
    # Fans of long standing: only followers older than SPACES_FOLLOWER_MIN_AGE_H count toward hosting.
    long_ago = timezone.now() - timedelta(days=90)
    User.objects.filter(pk__in=[fan.pk for fan in fans]).update(date_joined=long_ago)
    Follow.objects.filter(followee=creator).update(created_at=long_ago)
    User.objects.filter(pk=creator.pk).update(followers_count=F("followers_count") + 1000)
    started = timezone.now() - timedelta(days=1)
    Space.objects.bulk_create(
        Space(host=creator, title=f"Earlier {n}", state=SpaceState.ENDED, started_at=started, ended_at=started)
        for n in range(3)
    )
    creator.refresh_from_db()
    link = services.creator_onboarding_link(
        user=creator, return_url="http://127.0.0.1/return/", refresh_url="http://127.0.0.1/refresh/"
    )
    # The creator finishes onboarding at Stripe's (the stand-in's) page; Stripe answers with a redirect.
    finish = urllib.request.Request(link, data=b"", method="POST")
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.build_opener(NoRedirect).open(finish, timeout=10)
    account_id = CreatorAccount.objects.get(user=creator).stripe_account_id
    services.creator_account_sync(stripe_account_id=account_id)
    space = rooms_services.space_create(
        host=creator, title="Ticket rush", scheduled_for=timezone.now() + timedelta(days=1)
    )
    services.space_ticketing_set(actor=creator, space_id=space.pk, price_minor=1500, currency="usd", cap=cap)
    people = User.objects.bulk_create(
        [User(username=f"bench_buyer{i:05d}", password=password) for i in range(2 * buyers)], batch_size=500
    )
    tokens = Token.objects.bulk_create([Token(user=user, key=Token.generate_key()) for user in people])
    # Statistics, as a database in service has them: otherwise autovacuum analyzes the new tables within
    # its minute, in the middle of one run and not of another, and the planner's choices change with it.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    Path(out_path).write_text(json.dumps({"space_id": space.pk, "tokens": [t.key for t in tokens]}))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


# The database


def admin_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    return urlunsplit(parts._replace(path="/postgres")), name


def database_create(url: str) -> None:
    import psycopg

    server, name = admin_url(url)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(url: str) -> None:
    import psycopg

    server, name = admin_url(url)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seats(url: str, space_id: int) -> dict:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT state, count(*) FROM ticketing_ticket WHERE space_id = %s GROUP BY state", (space_id,)
        ).fetchall()
        sessions = [
            row[0]
            for row in conn.execute(
                "SELECT checkout_session_id FROM ticketing_ticket WHERE space_id = %s AND state IN ('held', 'paid')",
                (space_id,),
            ).fetchall()
        ]
    return {"states": dict(rows), "seat_sessions": set(sessions)}


# The server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("daphne did not answer in time")


# The rush


def rush(port: int, space_id: int, tokens: list[str], *, quiet_s: float = 0.0) -> tuple[list[dict], float, float]:
    """Every buyer on its own thread and connection; once all are connected and `quiet_s` has
    passed, they are released together and each POSTs once. Returns the answers, the start
    signal's time and the quiet phase's start."""
    connected = threading.Barrier(len(tokens) + 1)
    go = threading.Barrier(len(tokens) + 1)
    results: list[dict] = [{} for _ in tokens]

    def buyer(index: int, token: str) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        connection.connect()
        connected.wait(timeout=60)
        go.wait(timeout=60)
        sent = time.monotonic()
        try:
            connection.request("POST", f"/api/spaces/{space_id}/tickets/", headers={"Authorization": f"Token {token}"})
            answer = connection.getresponse()
            body = answer.read()
            done = time.monotonic()
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = {"code": "not_json", "detail": body[:200].decode(errors="replace")}
            retry_after = answer.getheader("Retry-After")
            results[index] = {"status": answer.status, "body": parsed, "retry_after": retry_after}
        except OSError as error:
            done = time.monotonic()
            results[index] = {"status": 0, "body": {"code": type(error).__name__}, "retry_after": None}
        finally:
            connection.close()
        results[index].update(sent=sent, done=done)

    threads = [threading.Thread(target=buyer, args=(i, token)) for i, token in enumerate(tokens)]
    for thread in threads:
        thread.start()
    connected.wait(timeout=60)
    quiet_start = time.monotonic()
    time.sleep(quiet_s)
    go.wait(timeout=60)
    start = time.monotonic()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT_S + 30)
    return results, start, quiet_start


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def cpu_calibration_ms() -> float:
    """How long this machine takes for a fixed piece of pure Python just before the rush: the same
    2-core machine took 318 to 521 ms for it within one minute (docs/benchmarks.md), so runs are
    compared along with it."""
    began = time.perf_counter()
    total = 0
    for i in range(3_000_000):
        total += i
    return round(1000 * (time.perf_counter() - began), 1)


def summarise(results: list[dict], start: float) -> dict:
    created, sold_out, unavailable, errors = [], [], [], []
    for r in results:
        code = r.get("body", {}).get("code")
        if r.get("status") == 201:
            created.append(r)
        elif r.get("status") == 409 and code == "sold_out":
            sold_out.append(r)
        elif r.get("status") == 503 and code == "payments_unavailable":
            unavailable.append(r)
        else:
            errors.append(r)
    answered = [r for r in results if r]
    end = max((r["done"] for r in answered), default=start)
    created_at = sorted(r["done"] for r in created)
    last_created = created_at[-1] if created_at else start
    latency = [1000 * (r["done"] - r["sent"]) for r in answered]
    created_latency = [1000 * (r["done"] - r["sent"]) for r in created]
    # Throughput from the first checkout to the last: each one's own wait includes Stripe's latency.
    spread = created_at[-1] - created_at[0] if len(created_at) > 1 else 0.0
    return {
        "requests": len(results),
        "checkouts_created": len(created),
        "sold_out": len(sold_out),
        "payments_unavailable": len(unavailable),
        "errors": len(errors),
        "error_samples": sorted({f"{r.get('status')} {r.get('body', {}).get('code')}" for r in errors})[:5],
        "distinct_checkout_urls": len({r["body"]["checkout_url"] for r in created}),
        "elapsed_s": round(end - start, 3),
        "checkouts_per_s": round((len(created) - 1) / spread, 1) if spread else 0.0,
        "checkouts_per_s_from_start": round(len(created) / max(last_created - start, 1e-6), 1),
        "requests_per_s": round(len(results) / max(end - start, 1e-6), 1),
        "latency_p50_ms": round(percentile(latency, 0.5), 1),
        "latency_p95_ms": round(percentile(latency, 0.95), 1),
        "checkout_latency_p95_ms": round(percentile(created_latency, 0.95), 1),
        "slowest_answer_s": round(max((r["done"] - r["sent"] for r in answered), default=0.0), 3),
        "slowest_payments_unavailable_s": (
            round(max(r["done"] - r["sent"] for r in unavailable), 3) if unavailable else None
        ),
        "payments_unavailable_without_retry_after": sum(not r["retry_after"] for r in unavailable),
    }


# The bystander: a visitor reading pages while the rush goes on, in a process of its own.


def bystander(port: int) -> None:
    """`GET /` and `GET /api/spaces/` in turn every 100 ms on one keep-alive connection until
    standard input closes; then print [sent (monotonic s), latency ms, path, status] for each."""
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    samples = []
    while not stop.is_set():
        path = BYSTANDER_PATHS[len(samples) % len(BYSTANDER_PATHS)]
        sent = time.monotonic()
        try:
            connection.request("GET", path)
            answer = connection.getresponse()
            answer.read()
            status = answer.status
        except (OSError, http.client.HTTPException):
            status = 0
            connection.close()  # opened again by the next request
        samples.append([sent, round(1000 * (time.monotonic() - sent), 2), path, status])
        if len(samples) == len(BYSTANDER_PATHS):
            print("warm", flush=True)  # each path asked once: the bench may start
        stop.wait(max(0.0, sent + BYSTANDER_INTERVAL_S - time.monotonic()))
    print(json.dumps(samples), flush=True)


def bystander_start(port: int) -> subprocess.Popen:
    command = [PYTHON, __file__, "--bystander", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    process.stdout.readline()  # "warm", or nothing if it died: then it has no samples at the end
    return process


def bystander_stop(process: subprocess.Popen) -> list:
    out, _ = process.communicate(timeout=REQUEST_TIMEOUT_S + 10)  # closes its standard input
    return json.loads(out)


def bystander_figures(
    samples: list, *, quiet: tuple[float, float], during: tuple[float, float], waiting: tuple[float, float] | None
) -> dict:
    """Latencies of the requests sent in the quiet phase, during the rush and (a hanging Stripe) while only
    the checkouts waiting on Stripe were left."""
    figures: dict = {}
    failed = []
    phases = [("quiet", quiet), ("rush", during)] + ([("waiting", waiting)] if waiting else [])
    for phase, (first, last) in phases:
        taken = [s for s in samples if first <= s[0] <= last]
        latency = [s[1] for s in taken]
        figures[f"bystander_{phase}_requests"] = len(taken)
        figures[f"bystander_{phase}_p50_ms"] = round(percentile(latency, 0.5), 1)
        figures[f"bystander_{phase}_p95_ms"] = round(percentile(latency, 0.95), 1)
        figures[f"bystander_{phase}_max_ms"] = round(max(latency, default=0.0), 1)
        failed += [f"{s[3]} {s[2]}" for s in taken if s[3] != 200]
    figures.update(bystander_errors=len(failed), bystander_error_samples=sorted(set(failed))[:5])
    quiet_p95 = figures["bystander_quiet_p95_ms"]
    figures["bystander_p95_ratio"] = round(figures["bystander_rush_p95_ms"] / quiet_p95, 2) if quiet_p95 else None
    if waiting:
        waiting_p95 = figures["bystander_waiting_p95_ms"]
        figures["bystander_waiting_p95_ratio"] = round(waiting_p95 / quiet_p95, 2) if quiet_p95 else None
    return figures


def waiting_phase(results: list[dict]) -> tuple[float, float] | None:
    """From the last answer that wasn't a 503 to the last 503: only checkouts waiting on Stripe left."""
    others = [r["done"] for r in results if r and r.get("status") != 503]
    unavailable = [r["done"] for r in results if r and r.get("status") == 503]
    if not others or not unavailable or max(unavailable) <= max(others):
        return None
    return max(others), max(unavailable)


# One run: its own database, stand-in, proxy and daphne.


def site_env(args: argparse.Namespace) -> dict:
    """The environment of the site's processes, Stripe's address and keys aside: DEBUG off, the
    bench's database, and static files collected into the scratch folder (a settings module there
    names it), as the home page needs them."""
    (args.scratch / "bench_ticket_rush_settings.py").write_text(
        "import runpy\n"
        f"globals().update(runpy.run_path({str(ROOT / 'spaces_site' / 'settings.py')!r}))\n"
        f"STATIC_ROOT = {str(args.scratch / 'static')!r}\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}},
        "DJANGO_SETTINGS_MODULE": "bench_ticket_rush_settings",
        "DATABASE_URL": args.database_url,
        "DEBUG": "0",
        "SECRET_KEY": "ticket-rush-benchmark-only-not-a-secret-0123456789abcdefghij",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "STRIPE_BREAKER_COOLDOWN_S": str(args.breaker_cooldown_s),
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "TICKET_RUSH_WEB_CONCURRENCY": str(args.web_concurrency),
        # The connection pool is opt-in (docs/operations.md); the rush runs with it unless told otherwise.
        "DATABASE_POOL_MAX_SIZE": os.environ.get("DATABASE_POOL_MAX_SIZE", "20"),
        # The bystander is an anonymous visitor asking the API 5 times a second.
        "SPACES_API_ANON_RATE": os.environ.get("SPACES_API_ANON_RATE", "100000/min"),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": os.pathsep.join([str(args.scratch), str(ROOT), str(ROOT / "bench")]),
    }
    if args.stripe_budget_s is not None:
        env["STRIPE_REQUEST_BUDGET_S"] = str(args.stripe_budget_s)
    return env


def run(args: argparse.Namespace, *, latency_ms: int | None, hang: bool) -> dict:
    standin = StripeStandin().start()
    proxy = DelayProxy(standin.url, delay_ms=latency_ms or 0) if latency_ms is not None or hang else None
    port = free_port()
    env = {
        **site_env(args),
        "STRIPE_API_BASE": standin.url,
        "STRIPE_SECRET_KEY": standin.api_key,
        "STRIPE_WEBHOOK_SECRET": standin.webhook_secret,
    }
    daphnes: list[subprocess.Popen] = []
    watcher = None
    try:
        say(f"database {admin_url(args.database_url)[1]}: create and migrate")
        database_create(args.database_url)
        subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        say(f"seed: an onboarded creator, a space with {args.cap} seats, {2 * args.buyers} buyers")
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            seeding = [PYTHON, __file__, "--seed", out.name, "--buyers", str(args.buyers), "--cap", str(args.cap)]
            subprocess.run(seeding, cwd=ROOT, env=env, check=True, timeout=300)
            seeded = json.loads(Path(out.name).read_text())
        space_id, tokens = seeded["space_id"], seeded["tokens"]

        log = open(args.log, "a") if args.log else subprocess.DEVNULL  # noqa: SIM115 - closed with daphne
        # One listening socket, accepted from by every web process, as behind a balancer.
        listening = socket.create_server(("127.0.0.1", port), backlog=1024)
        listening.set_inheritable(True)
        for _ in range(args.web_processes):
            daphnes.append(
                subprocess.Popen(
                    [*DAPHNE, "--fd", str(listening.fileno()), "ticket_rush:limited_application"],
                    cwd=ROOT,
                    env={**env, "STRIPE_API_BASE": proxy.url if proxy else standin.url},
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    pass_fds=[listening.fileno()],
                )
            )
        listening.close()
        for daphne in daphnes:
            wait_until_up(f"http://127.0.0.1:{port}/api/spaces/{space_id}/ticketing/", daphne)
        standin.webhook_url = f"http://127.0.0.1:{port}/stripe/webhook/"
        watcher = bystander_start(port)
        stripe = "hanging" if hang else "instant" if not latency_ms else f"+{latency_ms} ms"
        if hang:
            proxy.command("hang")

        say(f"round 1: {args.buyers} buyers at once for {args.cap} seats, Stripe {stripe}")
        calibration_ms = cpu_calibration_ms()
        results, start, quiet_start = rush(port, space_id, tokens[: args.buyers], quiet_s=args.quiet_s)
        first = summarise(results, start)
        samples = bystander_stop(watcher)
        watcher = None
        seen = bystander_figures(
            samples,
            quiet=(quiet_start, start),
            during=(start, start + first["elapsed_s"]),
            waiting=waiting_phase(results) if hang else None,
        )
        say(
            f"round 1: {first['checkouts_created']} checkouts, {first['sold_out']} sold out, "
            f"{first['payments_unavailable']} payments unavailable, {first['errors']} errors "
            f"in {first['elapsed_s']} s: "
            f"{first['checkouts_per_s']} checkouts/s ({first['checkouts_per_s_from_start']} from the start), "
            f"{first['requests_per_s']} requests/s; bystander p95 {seen['bystander_quiet_p95_ms']} ms quiet, "
            f"{seen['bystander_rush_p95_ms']} ms in the rush"
        )
        after_first = seats(args.database_url, space_id)
        figures = {
            "bench": "ticket_rush",
            "buyers": args.buyers,
            "cap": args.cap,
            "stripe_latency_ms": latency_ms or 0,
            "stripe_hang": hang,
            **{k: v for k, v in first.items() if k not in {"requests", "distinct_checkout_urls"}},
            **seen,
            "held_after_round_1": after_first["states"].get("held", 0),
        }
        if not hang:
            figures["errors"] += first["payments_unavailable"]
            # Stripe's side: some pay, some let their checkout expire; each event posted twice, concurrently.
            held = [s for s in standin.sessions() if s["status"] == "open"]
            events = [standin.pay(s["id"]) for s in held[: args.complete]]
            events += [standin.expire(s["id"]) for s in held[args.complete : args.complete + args.expire]]
            with ThreadPoolExecutor(max_workers=20) as pool:
                deliveries = list(pool.map(standin.deliver, events * 2))
            say(f"webhooks: {len(deliveries)} deliveries, {sum(d == 200 for d in deliveries)} answered 200")
            say(f"round 2: {args.buyers} new buyers for the {args.expire} seats that came back")
            second = summarise(rush(port, space_id, tokens[args.buyers :])[0], start)
            figures["errors"] += second["errors"] + second["payments_unavailable"] + sum(d != 200 for d in deliveries)
            figures["error_samples"] += second["error_samples"]
            figures.update(
                round_2_created=second["checkouts_created"],
                round_2_sold_out=second["sold_out"],
                webhook_deliveries=len(deliveries),
            )
        else:
            back = proxy.command("forward")
            say(f"Stripe is back (it swallowed {back.get('chunks_swallowed', 0)} chunks); waiting out the breaker")
            time.sleep(args.breaker_cooldown_s + RECOVERY_MARGIN_S)
            buyers = tokens[args.buyers : args.buyers + min(args.recovery_buyers, args.cap)]
            answers = [rush(port, space_id, [token])[0][0] for token in buyers]
            named = [f"{a.get('status')} {a.get('body', {}).get('code', '')}".strip() for a in answers]
            figures.update(
                recovery_buyers=len(buyers),
                recovery_created=sum(a.get("status") == 201 for a in answers),
                recovery_answers={name: named.count(name) for name in sorted(set(named))},
            )
            figures["errors"] += len(buyers) - figures["recovery_created"]
            say(f"recovery: {figures['recovery_created']} of {len(buyers)} checkouts created {named}")
        final = seats(args.database_url, space_id)
        taken = final["states"].get("held", 0) + final["states"].get("paid", 0)
        open_sessions = {s["id"] for s in standin.sessions() if s["status"] != "expired"}
        figures.update(
            paid=final["states"].get("paid", 0),
            released=final["states"].get("released", 0),
            oversell=max(0, taken - args.cap),
            sessions_without_seat=len(open_sessions - final["seat_sessions"]),
            web_concurrency=args.web_concurrency,
            web_processes=args.web_processes,
            site_web_concurrency=int(os.environ.get("SPACES_WEB_CONCURRENCY") or 4),
            cores=os.cpu_count(),
            cpu_calibration_ms=calibration_ms,
        )
        if proxy:
            figures["stripe_proxy"] = proxy.command("stats")
        say(f"oversell {figures['oversell']}, sessions without a seat {figures['sessions_without_seat']}")
        return figures
    finally:
        if watcher is not None:
            watcher.kill()
            watcher.wait()
        for daphne in daphnes:
            if daphne.poll() is None:
                os.killpg(daphne.pid, signal.SIGTERM)
        for daphne in daphnes:
            try:
                daphne.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(daphne.pid, signal.SIGKILL)
        if proxy is not None:
            proxy.stop()
        standin.stop()
        if not args.keep_db:
            database_drop(args.database_url)


# Goals


def goals_of(args: argparse.Namespace, figures: dict, instant: dict | None) -> dict:
    """The goals that apply to this run: a bound as "<= x" / ">= x", else the exact value."""
    goal: dict = {"oversell": 0, "sessions_without_seat": 0, "errors": 0, "bystander_errors": 0}
    if figures["stripe_hang"]:
        goal.update(
            checkouts_created=0,
            payments_unavailable_without_retry_after=0,
            slowest_payments_unavailable_s=f"<= {HANG_ANSWER_S}",
            bystander_p95_ratio=f"<= {BYSTANDER_HANG_P95_RATIO}",
            bystander_waiting_p95_ratio=f"<= {BYSTANDER_HANG_P95_RATIO}",
            recovery_created=figures["recovery_buyers"],
        )
        return goal
    slow = figures["stripe_latency_ms"] > 0
    goal.update(
        checkouts_created=args.cap,
        sold_out=args.buyers - args.cap,
        round_2_created=args.expire,
        paid=args.complete,
        checkouts_per_s=f">= {CHECKOUTS_PER_S_SLOW_STRIPE if slow else CHECKOUTS_PER_S_INSTANT}",
        bystander_rush_p95_ms=f"<= {BYSTANDER_RUSH_P95_MS}",
    )
    if instant is not None:
        goal["checkouts_per_s_vs_instant"] = f">= {SHARE_OF_INSTANT}"
    return goal


def goal_met(figures: dict, goal: dict) -> dict:
    met = {}
    for name, target in goal.items():
        value = figures.get(name)
        if isinstance(target, str):
            sign, bound = target.split()
            met[name] = value is not None and (value >= float(bound) if sign == ">=" else value <= float(bound))
        else:
            met[name] = value == target
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=300)
    parser.add_argument("--cap", type=int, default=50)
    parser.add_argument("--complete", type=int, help="holds then paid at Stripe (4/5 of --cap)")
    parser.add_argument("--expire", type=int, help="holds whose checkout then expires (1/5 of --cap)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--web-concurrency", type=int, default=0, help="the bench's own bound on requests in Django at once (0: none)"
    )
    parser.add_argument("--stripe-latency-ms", type=int, help="Stripe's answers held back this long by a proxy")
    parser.add_argument("--compare-instant", action="store_true", help="run once with no delay first")
    parser.add_argument("--stripe-hang", action="store_true", help="Stripe never answers in round 1")
    parser.add_argument("--recovery-buyers", type=int, default=10, help="after the hang (at most --cap)")
    parser.add_argument("--breaker-cooldown-s", type=int, default=5, help="the site's STRIPE_BREAKER_COOLDOWN_S")
    parser.add_argument("--stripe-budget-s", type=int, help="the site's STRIPE_REQUEST_BUDGET_S (its own default)")
    parser.add_argument("--quiet-s", type=float, default=3.0, help="the bystander alone before the rush")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--web-processes", type=int, default=1, help="daphne processes on one socket")
    parser.add_argument("--log", help="append daphne's log here")
    parser.add_argument("--repeat", type=int, default=1, help="whole runs; the median one's figures")
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    parser.add_argument("--bystander", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed(args.seed, args.buyers, args.cap)
        return 0
    if args.bystander:
        bystander(args.bystander)
        return 0
    if args.complete is None:
        args.complete = args.cap * 4 // 5 if args.expire is None else max(0, args.cap - args.expire)
    if args.expire is None:
        args.expire = max(0, args.cap - args.complete)
    if args.complete + args.expire > args.cap:
        parser.error("--complete plus --expire can't pass --cap")
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("the rush runs on PostgreSQL: give a postgres:// DATABASE_URL")
    if args.compare_instant and (not args.stripe_latency_ms or args.stripe_hang):
        parser.error("--compare-instant needs --stripe-latency-ms N > 0 and no --stripe-hang")

    with tempfile.TemporaryDirectory(prefix="ticket_rush_") as scratch:
        args.scratch = Path(scratch)
        say("static files: collect (the home page needs them with DEBUG off)")
        collect = [PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"]
        subprocess.run(collect, cwd=ROOT, env=site_env(args), check=True, timeout=300)
        figures = repeated(args)
    print(json.dumps(figures), flush=True)
    return 0 if figures["met"] else 1


def repeated(args: argparse.Namespace) -> dict:
    """`--repeat N` whole runs; the figures are those of the median run (by `checkouts_per_s`, or with
    `--stripe-hang` by `bystander_p95_ratio`), with every run's main figures under `repeats`."""
    if args.repeat == 1:
        return runs(args)
    done = []
    for number in range(1, args.repeat + 1):
        say(f"repeat {number} of {args.repeat}")
        done.append(runs(args))
    key = "bystander_p95_ratio" if args.stripe_hang else "checkouts_per_s"
    median = sorted(done, key=lambda figures: figures[key] or 0)[len(done) // 2]
    kept = ("checkouts_per_s", "bystander_rush_p95_ms", "bystander_p95_ratio", "cpu_calibration_ms", "met")
    kept += ("bystander_waiting_p95_ratio", "slowest_payments_unavailable_s", "checkouts_per_s_vs_instant")
    median["repeats"] = [{k: figures[k] for k in kept if k in figures} for figures in done]
    median["repeat_median_of"] = key
    return median


def runs(args: argparse.Namespace) -> dict:
    """The run of the flags given (after the instant one with `--compare-instant`), with its goals."""
    instant = None
    if args.compare_instant:
        say("run 1 of 2: Stripe instant (through the proxy, no delay)")
        instant = run(args, latency_ms=0, hang=False)
        instant["goal_met"] = goal_met(instant, goals_of(args, instant, None))
        instant["met"] = all(instant["goal_met"].values())
        say(f"run 2 of 2: Stripe +{args.stripe_latency_ms} ms")
    figures = run(args, latency_ms=args.stripe_latency_ms, hang=args.stripe_hang)
    if instant is not None:
        base = instant["checkouts_per_s"]
        figures["checkouts_per_s_vs_instant"] = round(figures["checkouts_per_s"] / base, 2) if base else None
        kept = ("checkouts_per_s", "checkouts_per_s_from_start", "checkouts_created", "errors", "oversell")
        kept += ("latency_p95_ms", "checkout_latency_p95_ms", "bystander_quiet_p95_ms", "bystander_rush_p95_ms")
        figures["instant"] = {k: instant[k] for k in (*kept, "goal_met", "met")}
    goal = goals_of(args, figures, instant)
    met = goal_met(figures, goal)
    figures.update(goal=goal, goal_met=met, met=all(met.values()) and (instant is None or instant["met"]))
    return figures


if __name__ == "__main__":
    sys.exit(main())
