"""Reminders benchmark: the lead reminders of one space to N holders, in the app and by email.

    .venv/bin/python bench/reminders.py [--holders 10000] [--followers 0]
        [--database-url postgres://postgres@127.0.0.1:5432/spaces_bench_reminders]

It builds a throwaway SQLite database in a temporary directory (or, with
`--database-url`, drops and creates that PostgreSQL database: its name must
start with `spaces_bench`), migrates it, and seeds a host, one scheduled space
and N people with an email address and a reminder for it. It then moves the
space's start so its lead time has come (set-up, not a product path) and times
one due-work pass, run in-process as the one-command default runs it (Celery
eager; the locmem email backend; the in-memory channel layer for the live
pushes, with no sockets listening): the pass plans the deliveries in bulk and
sends them in batches of SPACES_DELIVERY_BATCH ids. It counts every query the
pass makes, and checks the outcome: N + 1 notifications and N + 1 emails (the
host gets their own reminder), every delivery sent, nobody twice.

`--followers F` also measures a go-live: a host with F followers starts a
scheduled space. It times the request's part (`space_start`, with the plan
task queued as Celery would queue it) apart from the fan-out (the plan task and
the send tasks it queues, run in-process), F in-app notifications ("someone
you follow is live" is in-app only by default).

Progress goes to stdout; the last line is one JSON object with the figures and
the goals they are held against. It stops by itself (seeding 10,000 holders
and the pass take well under a minute here).
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
GOAL = {"deliver_all_s": 30.0, "duplicates": 0, "missing": 0}


def say(message: str) -> None:
    print(f"[reminders {time.strftime('%H:%M:%S')}] {message}", flush=True)


def fresh_postgres(url: str) -> None:
    """Drop and create the benchmark's own PostgreSQL database (only one named spaces_bench*)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.startswith("spaces_bench"):
        raise SystemExit(f"--database-url must name a database starting with spaces_bench, not {name!r}")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')


def set_up_django(database_url: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="spaces_site.settings",
        SECRET_KEY="bench-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
        DATABASE_URL=database_url,
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        CELERY_TASK_ALWAYS_EAGER="1",
        SPACES_TICKER_S="0",
        LOG_LEVEL="WARNING",
    )
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "DEBUG"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class QueryCounter:
    """Counts the queries a block makes (a connection execute wrapper: no SQL kept)."""

    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def seed_people(prefix: str, count: int):
    from accounts.models import User

    batch = 2000
    for start in range(0, count, batch):
        User.objects.bulk_create(
            User(username=f"{prefix}{n}", email=f"{prefix}{n}@bench.example")
            for n in range(start, min(count, start + batch))
        )
    return User.objects.filter(username__startswith=prefix)


def measure_reminders(holders: int) -> dict:
    from datetime import timedelta

    from django.core import mail
    from django.db import connection
    from django.db.models import Count
    from django.utils import timezone

    from accounts.models import User
    from rooms import services as rooms_services
    from rooms.models import Space
    from scheduling import tasks
    from scheduling.models import Delivery, DeliveryState, Notification, Reminder

    say(f"seeding a host, a scheduled space and {holders} holders")
    host = User.objects.create(username="bench_host", email="host@bench.example", hosting_granted=True)
    space = rooms_services.space_create(
        host=host, title="reminders benchmark", scheduled_for=timezone.now() + timedelta(hours=1)
    )
    people = seed_people("bench_holder", holders)
    Reminder.objects.bulk_create(
        (Reminder(user_id=pk, space=space) for pk in people.values_list("pk", flat=True)), batch_size=2000
    )
    # Set-up: the lead time has come (10 minutes before the start).
    Space.objects.filter(pk=space.pk).update(scheduled_for=timezone.now() + timedelta(minutes=10))
    mail.outbox = []

    say("one due-work pass: plan, send in-app and email")
    counter = QueryCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        result = tasks.due_work_task()
    elapsed = time.perf_counter() - started

    expected = holders + 1
    notifications = Notification.objects.filter(space=space)
    recipients = [m.to[0] for m in mail.outbox]
    in_app_people = notifications.values_list("user_id", flat=True).distinct().count()
    states = dict(
        Delivery.objects.filter(space=space)
        .order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    figures = {
        "holders": holders,
        "deliver_all_s": round(elapsed, 2),
        "deliveries_per_s": round(2 * expected / elapsed),
        "queries": counter.count,
        "queries_per_delivery": round(counter.count / (2 * expected), 2),
        "notifications": notifications.count(),
        "emails": len(recipients),
        "delivery_states": states,
        "duplicates": (notifications.count() - in_app_people) + (len(recipients) - len(set(recipients))),
        "missing": (expected - in_app_people) + (expected - len(set(recipients))),
        "sent": states.get(DeliveryState.SENT, 0),
        "pass": result,
    }
    say(
        f"{figures['notifications']} notifications and {figures['emails']} emails in {elapsed:.2f} s, "
        f"{counter.count} queries"
    )
    return figures


def measure_go_live(followers: int) -> dict:
    from datetime import timedelta
    from unittest import mock

    from django.db import connection
    from django.db.models import F
    from django.utils import timezone

    from accounts.models import Follow, User
    from rooms import services as rooms_services
    from scheduling import tasks
    from scheduling.models import Notification

    say(f"seeding a host with {followers} followers")
    host = User.objects.create(username="bench_star", email="star@bench.example", hosting_granted=True)
    fans = seed_people("bench_fan", followers)
    ids = list(fans.values_list("pk", flat=True))
    for start in range(0, len(ids), 5000):
        Follow.objects.bulk_create(Follow(follower_id=pk, followee=host) for pk in ids[start : start + 5000])
    User.objects.filter(pk=host.pk).update(followers_count=F("followers_count") + followers)
    space = rooms_services.space_create(
        host=host, title="go-live benchmark", scheduled_for=timezone.now() + timedelta(hours=1)
    )

    say("the host starts the space (the plan task queued, as Celery would)")
    queued = []
    counter = QueryCounter()
    with (
        mock.patch("scheduling.services.announcements.plan_soon", side_effect=queued.append),
        connection.execute_wrapper(counter),
    ):
        started = time.perf_counter()
        rooms_services.space_start(actor=host, space_id=space.pk)
        request_s = time.perf_counter() - started
    request_queries = counter.count

    say(f"the fan-out to {followers} followers")
    counter = QueryCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        for announcement_id in queued:
            tasks.announcement_plan_task(announcement_id)
    fan_out_s = time.perf_counter() - started
    told = Notification.objects.filter(space=space).count()
    say(
        f"{told} notifications in {fan_out_s:.2f} s, {counter.count} queries; "
        f"the request took {request_s * 1000:.0f} ms"
    )
    return {
        "followers": followers,
        "request_ms": round(request_s * 1000, 1),
        "request_queries": request_queries,
        "fan_out_s": round(fan_out_s, 2),
        "fan_out_queries": counter.count,
        "notifications": told,
        "missing": followers - told,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--holders", type=int, default=10_000)
    parser.add_argument("--followers", type=int, default=0, help="also time a go-live to this many followers")
    parser.add_argument("--database-url", default="", help="a PostgreSQL database named spaces_bench*, recreated")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-reminders-") as scratch:
        if args.database_url:
            fresh_postgres(args.database_url)
            database_url, database = args.database_url, "postgresql"
        else:
            database_url, database = f"sqlite:///{scratch}/bench.sqlite3", "sqlite"
        say(f"migrating a fresh {database} database")
        set_up_django(database_url)
        from django.conf import settings

        figures = {"bench": "reminders", "database": database, **measure_reminders(args.holders)}
        if args.followers:
            figures["go_live"] = measure_go_live(args.followers)
        figures.update(
            fanout_chunk=settings.SPACES_FANOUT_CHUNK,
            delivery_batch=settings.SPACES_DELIVERY_BATCH,
            cpus=os.cpu_count(),
            python=platform.python_version(),
            goal=GOAL,
            met=figures["deliver_all_s"] <= GOAL["deliver_all_s"]
            and figures["duplicates"] == GOAL["duplicates"]
            and figures["missing"] == GOAL["missing"],
        )
        from django.db import connections

        connections.close_all()
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
