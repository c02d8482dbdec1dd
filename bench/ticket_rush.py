"""Ticket rush benchmark: N buyers start a checkout at the same instant for a space with C seats.

    .venv/bin/python bench/ticket_rush.py [--buyers 300] [--cap 50] [--complete 40] [--expire 10]
        [--database-url postgres://postgres@127.0.0.1:5432/spaces_bench_tix] [--web-concurrency 0] [--keep-db]

It makes its own PostgreSQL database (`DATABASE_URL`, or the default above; an
existing database of that name is dropped first, and the database is dropped
again at the end unless `--keep-db`), migrates it, starts our Stripe stand-in
(`ticketing.stripe_standin`) in this process and daphne on a free port of
127.0.0.1 with `STRIPE_API_BASE` pointing at the stand-in, and seeds an
eligible, onboarded creator, one scheduled ticketed space with C seats and
2 x N buyers with API tokens.

Round 1: N threads, one connection each, are released together and each
POSTs `/api/spaces/<id>/tickets/` once: exactly C must get a Checkout
Session (201) and the rest a 409 `sold_out`. Then `--complete` of the holds
are paid and `--expire` expire at the stand-in, which signs and posts the 2 x
(complete + expire) events (each twice, concurrently) to daphne's webhook.
Round 2: N new buyers race for the `expire` seats that came back.

It prints checkouts created per second (created / time from the start signal
to the last 201), requests answered per second, latency percentiles and the
oversell count (paid + held tickets above the cap, read from the database;
also Checkout Sessions at Stripe without a seat): both must be 0. The last
line is one JSON object with the figures and the goals they are held against.
Client and server share the machine's cores.

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

from ticketing.stripe_standin import StripeStandin  # noqa: E402 - after the path is set

# The interpreter running the bench (any virtualenv with requirements-dev.txt), and daphne under it.
PYTHON = sys.executable
DAPHNE = (sys.executable, "-m", "daphne")
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/spaces_bench_tix"
REQUEST_TIMEOUT_S = 60.0
START_TIMEOUT_S = 30.0

GOAL = {
    "oversell": 0,
    "sessions_without_seat": 0,
    "errors": 0,
    "checkouts_per_s": 100,  # at least (issue 12): 50 seats sold out within 0.5 s of a 300-buyer rush
}


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


def rush(port: int, space_id: int, tokens: list[str]) -> tuple[list[dict], float]:
    """Every buyer on its own thread and connection, released together; each POSTs once."""
    ready = threading.Barrier(len(tokens) + 1)
    results: list[dict] = [{} for _ in tokens]

    def buyer(index: int, token: str) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
        connection.connect()
        ready.wait(timeout=60)
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
            results[index] = {"status": answer.status, "body": parsed, "sent": sent, "done": done}
        except OSError as error:
            results[index] = {
                "status": 0,
                "body": {"code": type(error).__name__},
                "sent": sent,
                "done": time.monotonic(),
            }
        finally:
            connection.close()

    threads = [threading.Thread(target=buyer, args=(i, token)) for i, token in enumerate(tokens)]
    for thread in threads:
        thread.start()
    ready.wait(timeout=60)
    start = time.monotonic()
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT_S + 30)
    return results, start


def percentile(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def summarise(results: list[dict], start: float) -> dict:
    created, sold_out, errors = [], [], []
    for r in results:
        if r.get("status") == 201:
            created.append(r)
        elif r.get("status") == 409 and r["body"].get("code") == "sold_out":
            sold_out.append(r)
        else:
            errors.append(r)
    end = max((r["done"] for r in results if r), default=start)
    last_created = max((r["done"] for r in created), default=start)
    latency = [1000 * (r["done"] - r["sent"]) for r in results if r]
    created_latency = [1000 * (r["done"] - r["sent"]) for r in created]
    return {
        "requests": len(results),
        "checkouts_created": len(created),
        "sold_out": len(sold_out),
        "errors": len(errors),
        "error_samples": sorted({f"{r.get('status')} {r.get('body', {}).get('code')}" for r in errors})[:5],
        "distinct_checkout_urls": len({r["body"]["checkout_url"] for r in created}),
        "elapsed_s": round(end - start, 3),
        "checkouts_per_s": round(len(created) / max(last_created - start, 1e-6), 1),
        "requests_per_s": round(len(results) / max(end - start, 1e-6), 1),
        "latency_p50_ms": round(percentile(latency, 0.5), 1),
        "latency_p95_ms": round(percentile(latency, 0.95), 1),
        "checkout_latency_p95_ms": round(percentile(created_latency, 0.95), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=300)
    parser.add_argument("--cap", type=int, default=50)
    parser.add_argument("--complete", type=int, default=40, help="holds then paid at Stripe")
    parser.add_argument("--expire", type=int, default=10, help="holds whose checkout then expires")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)
    parser.add_argument(
        "--web-concurrency", type=int, default=0, help="the bench's own bound on requests in Django at once (0: none)"
    )
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--log", help="write daphne's log here")
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed(args.seed, args.buyers, args.cap)
        return 0
    if args.complete + args.expire > args.cap:
        parser.error("--complete plus --expire can't pass --cap")
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("the rush runs on PostgreSQL: give a postgres:// DATABASE_URL")

    standin = StripeStandin().start()
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}},
        "DJANGO_SETTINGS_MODULE": "spaces_site.settings",
        "DATABASE_URL": args.database_url,
        "DEBUG": "0",
        "SECRET_KEY": "ticket-rush-benchmark-only-not-a-secret-0123456789abcdefghij",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "STRIPE_API_BASE": standin.url,
        "STRIPE_SECRET_KEY": standin.api_key,
        "STRIPE_WEBHOOK_SECRET": standin.webhook_secret,
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "TICKET_RUSH_WEB_CONCURRENCY": str(args.web_concurrency),
        # The connection pool is opt-in (docs/operations.md); the rush runs with it unless told otherwise.
        "DATABASE_POOL_MAX_SIZE": os.environ.get("DATABASE_POOL_MAX_SIZE", "20"),
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}",
    }
    daphne = None
    figures: dict = {}
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

        log = open(args.log, "w") if args.log else subprocess.DEVNULL  # noqa: SIM115 - closed with daphne
        daphne = subprocess.Popen(
            [*DAPHNE, "-b", "127.0.0.1", "-p", str(port), "ticket_rush:limited_application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        wait_until_up(f"http://127.0.0.1:{port}/api/spaces/{space_id}/ticketing/", daphne)
        standin.webhook_url = f"http://127.0.0.1:{port}/stripe/webhook/"

        say(f"round 1: {args.buyers} buyers at once for {args.cap} seats")
        results, start = rush(port, space_id, tokens[: args.buyers])
        first = summarise(results, start)
        say(
            f"round 1: {first['checkouts_created']} checkouts, {first['sold_out']} sold out, {first['errors']} errors "
            f"in {first['elapsed_s']} s: {first['checkouts_per_s']} checkouts/s, {first['requests_per_s']} requests/s"
        )
        after_first = seats(args.database_url, space_id)

        # Stripe's side: some pay, some let their checkout expire; each event posted twice, concurrently.
        held = [s for s in standin.sessions() if s["status"] == "open"]
        events = [standin.pay(s["id"]) for s in held[: args.complete]]
        events += [standin.expire(s["id"]) for s in held[args.complete : args.complete + args.expire]]
        with ThreadPoolExecutor(max_workers=20) as pool:
            deliveries = list(pool.map(standin.deliver, events * 2))
        say(f"webhooks: {len(deliveries)} deliveries, {sum(d == 200 for d in deliveries)} answered 200")

        say(f"round 2: {args.buyers} new buyers for the {args.expire} seats that came back")
        results, start = rush(port, space_id, tokens[args.buyers :])
        second = summarise(results, start)
        final = seats(args.database_url, space_id)
        taken = final["states"].get("held", 0) + final["states"].get("paid", 0)
        open_sessions = {s["id"] for s in standin.sessions() if s["status"] != "expired"}
        figures = {
            "bench": "ticket_rush",
            "buyers": args.buyers,
            "cap": args.cap,
            "checkouts_created": first["checkouts_created"],
            "sold_out": first["sold_out"],
            "errors": first["errors"] + second["errors"] + sum(d != 200 for d in deliveries),
            "error_samples": first["error_samples"] + second["error_samples"],
            "checkouts_per_s": first["checkouts_per_s"],
            "requests_per_s": first["requests_per_s"],
            "elapsed_s": first["elapsed_s"],
            "latency_p50_ms": first["latency_p50_ms"],
            "latency_p95_ms": first["latency_p95_ms"],
            "checkout_latency_p95_ms": first["checkout_latency_p95_ms"],
            "held_after_round_1": after_first["states"].get("held", 0),
            "paid": final["states"].get("paid", 0),
            "released": final["states"].get("released", 0),
            "round_2_created": second["checkouts_created"],
            "round_2_sold_out": second["sold_out"],
            "oversell": max(0, taken - args.cap),
            "sessions_without_seat": len(open_sessions - final["seat_sessions"]),
            "webhook_deliveries": len(deliveries),
            "web_concurrency": args.web_concurrency,
            "site_web_concurrency": int(os.environ.get("SPACES_WEB_CONCURRENCY") or 4),
            "cores": os.cpu_count(),
        }
        expected = {
            "checkouts_created": args.cap,
            "sold_out": args.buyers - args.cap,
            "round_2_created": args.expire,
            "paid": args.complete,
        }
        goals = {**GOAL, **expected}
        met = (
            figures["oversell"] == 0
            and figures["sessions_without_seat"] == 0
            and figures["errors"] == 0
            and figures["checkouts_per_s"] >= GOAL["checkouts_per_s"]
            and all(figures[k] == v for k, v in expected.items())
        )
        say(
            f"oversell {figures['oversell']}, sessions without a seat {figures['sessions_without_seat']}; "
            f"round 2: {second['checkouts_created']} checkouts, {second['sold_out']} sold out"
        )
        figures.update(goals={k: (f">= {v}" if k == "checkouts_per_s" else v) for k, v in goals.items()}, met=met)
    finally:
        if daphne is not None and daphne.poll() is None:
            os.killpg(daphne.pid, signal.SIGTERM)
            try:
                daphne.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(daphne.pid, signal.SIGKILL)
        standin.stop()
        if not args.keep_db:
            database_drop(args.database_url)
    print(json.dumps(figures), flush=True)
    return 0 if figures.get("met") else 1


if __name__ == "__main__":
    sys.exit(main())
