"""Pages at scale (issue 16): the site's pages with 100,000 people on PostgreSQL, served by one daphne.

    .venv/bin/python bench/pages.py [--database-url postgres://postgres@127.0.0.1:5432/spaces_bench_pages]
        [--requests 100] [--concurrent-s 10] [--keep]

It drops and creates that PostgreSQL database (its name must start with `spaces_bench`), migrates it
and seeds, with bulk SQL (`seed_scale`, reusable by other benchmarks), 100,000 people, about a million
follows (three hosts with 52-62k followers, most people following 3-14), 500 live spaces with about
14,000 connections (one of them with 500 people in it), 2,000 scheduled spaces with 200,000 reminders,
20,000 ended spaces and 302,000 notifications (1,000 of them one viewer's).

It then serves the site with one daphne, DEBUG off (static files collected into a scratch folder, a
pool of 20 database connections, the local-memory cache of one process), and asks each page of the
issue's table and the API's lists of followers and notifications, for three viewers (one following
20 hosts of whom 5 are live, one following 2,000, and an anonymous visitor), `--requests` times in a
row after a warm-up: p50 and p95 in ms. The queries of each page are counted in this process,
against the same database, with Django's test client (the first request with an empty cache, then a
second one). Last, 20 clients ask for `/` at once for `--concurrent-s` seconds (anonymous, then the
viewer following 20): requests/s and p95.

Progress goes to stdout; the last line is one JSON object with the figures and the goals of the
issue's acceptance 1 they are held against.
"""

import argparse
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DAPHNE = (sys.executable, "-m", "daphne")
SECRET = "bench-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz"

GOAL = {"page_p95_ms": 30.0, "home_anonymous_rps": 150.0, "home_signed_in_rps": 60.0}
PEOPLE = 100_000
VIEWER_20, VIEWER_2000 = 99_001, 99_002  # follows 20 hosts (5 live) / follows 2,000
BIG_HOSTS = {1: (1_001, 63_000), 2: (20_001, 77_000), 3: (40_001, 92_000)}  # followers: id ranges
LIVE, SCHEDULED, ENDED = range(1, 501), range(501, 2501), range(2501, 22501)  # space ids
CLIENTS = 20


def say(message: str) -> None:
    print(f"[pages {time.strftime('%H:%M:%S')}] {message}", flush=True)


def fresh_postgres(url: str) -> None:
    """Drop and create the benchmark's own PostgreSQL database (only one named spaces_bench*)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.startswith("spaces_bench"):
        raise SystemExit(f"--database-url must name a database starting with spaces_bench, not {name!r}")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


# Words for titles and topics: "music" is in one space in ten.
WORDS = "(ARRAY['music','tech','startups','design','jazz','politics','football','books','crypto','film'])"
TITLE_SQL = (
    "(ARRAY['Morning','Late night','Weekly','Open','Friday'])[1 + {i} % 5] || ' ' || "
    + WORDS
    + "[1 + ({i} / 5) % 10] || ' ' || (ARRAY['talk','hangout','questions','jam','debate'])[1 + ({i} / 50) % 5]"
)
TOPICS_SQL = WORDS + "[1 + ({i} / 5) % 10] || ',' || (ARRAY['culture','news','chat','learning'])[1 + {i} % 4]"


def seed_scale(url: str) -> dict:
    """Seed a migrated, empty database with the data set of issue 16 in bulk SQL; returns what a
    bench needs to find in it (ids and usernames)."""
    import psycopg

    space_columns = (
        "id, host_id, title, topics, pinned_link, state, speak_policy, captions_enabled, recording_enabled,"
        " is_ticketed, transcript_kept, scheduled_for, created_at, started_at, ended_at, end_reason"
    )
    steps = [
        (
            "people",
            f"""INSERT INTO accounts_user (id, password, is_superuser, first_name, last_name, email, is_staff,
                is_active, date_joined, username, display_name, bio, avatar, followers_count, following_count,
                hosting_granted, ban_reason)
            SELECT i, '!', false, '', '', 'p' || i || '@example.com', false, true, now() - interval '400 days',
                'p' || i, 'Person ' || i, '', '', 0, 0, i <= 2500, ''
            FROM generate_series(1, {PEOPLE}) i""",
        ),
        (
            "big hosts' followers",
            "INSERT INTO accounts_follow (created_at, followee_id, follower_id) "
            + " UNION ALL ".join(
                f"SELECT now() - (f % 5000) * interval '1 hour', {host}, f FROM generate_series({first}, {last}) f"
                for host, (first, last) in BIG_HOSTS.items()
            ),
        ),
        (
            "everyone's follows",
            f"""INSERT INTO accounts_follow (created_at, followee_id, follower_id)
            SELECT now() - ((u * k) % 9000) * interval '1 hour', 4 + ((u * 7919 + k * 15485863) % {PEOPLE - 3}), u
            FROM generate_series(1, {PEOPLE}) u, generate_series(1, 14) k
            WHERE k <= 3 + u % 12 AND u NOT IN ({VIEWER_20}, {VIEWER_2000})
                AND 4 + ((u * 7919 + k * 15485863) % {PEOPLE - 3}) <> u
            ON CONFLICT DO NOTHING""",
        ),
        (
            "the viewers' follows",
            f"""INSERT INTO accounts_follow (created_at, followee_id, follower_id)
            SELECT now(), h, {VIEWER_20} FROM generate_series(10, 14) h
            UNION ALL SELECT now(), h, {VIEWER_20} FROM generate_series(3000, 3014) h
            UNION ALL SELECT now(), h, {VIEWER_2000} FROM generate_series(4, 2003) h""",
        ),
        (
            "follow counts",
            """UPDATE accounts_user u SET followers_count = f.n
                FROM (SELECT followee_id, count(*) n FROM accounts_follow GROUP BY 1) f WHERE u.id = f.followee_id;
            UPDATE accounts_user u SET following_count = f.n
                FROM (SELECT follower_id, count(*) n FROM accounts_follow GROUP BY 1) f WHERE u.id = f.follower_id""",
        ),
        (
            "spaces",
            f"""INSERT INTO rooms_space ({space_columns})
            SELECT i, i, {TITLE_SQL.format(i="i")}, {TOPICS_SQL.format(i="i")}, '', 'live', 'everyone', true, false,
                false, false, NULL::timestamptz, now(), now() - (i % 120) * interval '1 minute', NULL::timestamptz, ''
            FROM generate_series({LIVE.start}, {LIVE.stop - 1}) i
            UNION ALL
            SELECT i, i, {TITLE_SQL.format(i="i")}, {TOPICS_SQL.format(i="i")}, '', 'scheduled', 'everyone', true,
                false, false, false, now() + (i - 500) * interval '10 minutes', now(), NULL, NULL, ''
            FROM generate_series({SCHEDULED.start}, {SCHEDULED.stop - 1}) i
            UNION ALL
            SELECT i, 1 + i % 2500, {TITLE_SQL.format(i="i")}, {TOPICS_SQL.format(i="i")}, '', 'ended', 'everyone',
                true, false, false, false, NULL, now() - i * interval '1 hour', now() - i * interval '1 hour',
                now() - i * interval '1 hour' + interval '45 minutes', 'host'
            FROM generate_series({ENDED.start}, {ENDED.stop - 1}) i""",
        ),
        (
            "participants and connections",
            f"""INSERT INTO rooms_participant (role, muted, joined_at, user_id, space_id, was_on_stage)
            SELECT 'host', true, now(), s, s, true FROM generate_series({LIVE.start}, {LIVE.stop - 1}) s;
            INSERT INTO rooms_participant (role, muted, joined_at, user_id, space_id, was_on_stage)
            SELECT CASE WHEN k <= 12 THEN 'speaker' ELSE 'listener' END, true, now(), 50000 + k, 1, k <= 12
            FROM generate_series(1, 499) k;
            INSERT INTO rooms_participant (role, muted, joined_at, user_id, space_id, was_on_stage)
            SELECT 'listener', true, now(), 1 + ((s * 7919 + k * 131) % {PEOPLE}), s, false
            FROM generate_series(2, {LIVE.stop - 1}) s, generate_series(1, 30) k WHERE k <= 1 + s % 25
            ON CONFLICT DO NOTHING;
            INSERT INTO rooms_connection (channel_name, opened_at, last_seen_at, participant_id, space_id)
            SELECT 'bench.p.' || id, now(), now(), id, space_id FROM rooms_participant;
            INSERT INTO rooms_connection (channel_name, opened_at, last_seen_at, participant_id, space_id)
            SELECT 'bench.a.' || s || '.' || k, now(), now(), NULL, s
            FROM generate_series(2, {LIVE.stop - 1}) s, generate_series(1, 30) k WHERE k <= 1 + s % 25""",
        ),
        (
            "reminders",
            f"""INSERT INTO scheduling_reminder (created_at, space_id, user_id)
            SELECT now(), s, 1 + ((s * 104729 + k * 7) % {PEOPLE})
            FROM generate_series({SCHEDULED.start}, {SCHEDULED.stop - 1}) s, generate_series(1, 100) k
            UNION ALL SELECT now(), s, {VIEWER_20} FROM generate_series(501, 505) s
            ON CONFLICT DO NOTHING""",
        ),
        (
            "notifications",
            f"""INSERT INTO scheduling_notification (kind, title, body, url, created_at, read_at, user_id, space_id)
            SELECT 'host_live', 'Person ' || (1 + i % 500) || ' is live', '', '/spaces/' || (1 + i % 500) || '/',
                now() - i * interval '1 minute', CASE WHEN i % 3 = 0 THEN NULL ELSE now() END,
                CASE WHEN i <= 1000 THEN {VIEWER_20} ELSE 1 + i % {PEOPLE} END, 1 + i % 500
            FROM generate_series(1, 302000) i""",
        ),
    ]
    started = time.monotonic()
    with psycopg.connect(url) as connection:
        for name, sql in steps:
            step = time.monotonic()
            for statement in sql.split(";"):
                connection.execute(statement)
            say(f"seeded {name} in {time.monotonic() - step:.1f}s")
        for table in ("accounts_user", "rooms_space", "rooms_participant", "rooms_connection"):
            connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")
        counts = {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in (
                "accounts_user",
                "accounts_follow",
                "rooms_connection",
                "scheduling_reminder",
                "scheduling_notification",
                "rooms_space",
            )
        }
    say(f"seeded in {time.monotonic() - started:.1f}s: {counts}")
    return {
        "seed_s": round(time.monotonic() - started, 1),
        "rows": counts,
        "viewers": {"follows_20": VIEWER_20, "follows_2000": VIEWER_2000},
        "big_host": "p1",
        "big_room": 1,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_env(url: str, scratch: Path) -> dict:
    """The environment of the site's processes: DEBUG off, this database, static files collected into
    `scratch` (a settings module there names the folder), no broker, no ticker."""
    # The site's settings file run as a module of its own (importing `spaces_site.settings` from here
    # would start the site's package, whose Celery app reads the settings being defined).
    (scratch / "bench_pages_settings.py").write_text(
        "import runpy\n"
        f"globals().update(runpy.run_path({str(ROOT / 'spaces_site' / 'settings.py')!r}))\n"
        f"STATIC_ROOT = {str(scratch / 'static')!r}\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CELERY_BROKER_URL", "DEBUG")}
    env.update(
        DJANGO_SETTINGS_MODULE="bench_pages_settings",
        PYTHONPATH=os.pathsep.join([str(scratch), str(ROOT)]),
        SECRET_KEY=SECRET,
        DATABASE_URL=url,
        # Django runs each request's database work on a thread of its own under ASGI: without a pool each
        # request opens a connection (about 7 ms here). The pool, as docs/operations.md advises.
        DATABASE_CONN_MAX_AGE="0",
        DATABASE_POOL_MAX_SIZE="20",
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        CELERY_TASK_ALWAYS_EAGER="1",
        SPACES_TICKER_S="0",
        LOG_LEVEL="WARNING",
        MEDIA_ROOT=str(scratch / "uploads"),
        # The API's throttles still count each request, but allow the bench's hundreds a minute from one
        # address and one account.
        SPACES_API_ANON_RATE="100000/min",
        SPACES_API_USER_RATE="100000/min",
    )
    return env


def run_step(name: str, args: list[str], env: dict, timeout: float = 300) -> None:
    started = time.monotonic()
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    say(f"{name}: done in {time.monotonic() - started:.1f}s")


def set_up_django(env: dict) -> None:
    os.environ.update(env)
    for name in ("REDIS_URL", "CELERY_BROKER_URL", "DEBUG"):
        os.environ.pop(name, None)
    sys.path[:0] = env["PYTHONPATH"].split(os.pathsep)
    import django

    django.setup()


def sessions() -> dict[str, str]:
    """A session cookie for each signed-in viewer, made as a login makes it."""
    from django.test import Client

    from accounts.models import User

    cookies = {}
    for name, pk in (("follows_20", VIEWER_20), ("follows_2000", VIEWER_2000)):
        client = Client()
        client.force_login(User.objects.get(pk=pk))
        cookies[name] = client.cookies["sessionid"].value
    return cookies


def count_queries(url: str, cookie: str | None) -> tuple[int, int]:
    """The page's queries with an empty cache, then again (in this process, on the same database)."""
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    if cookie:
        client.cookies["sessionid"] = cookie
    cache.clear()
    counts = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as queries:
            status = client.get(url).status_code
        if status != 200:
            raise RuntimeError(f"{url} answered {status} in process")
        counts.append(len(queries))
    return counts[0], counts[1]


def get(conn: http.client.HTTPConnection, url: str, cookie: str | None) -> float:
    headers = {"Cookie": f"sessionid={cookie}"} if cookie else {}
    started = time.perf_counter()
    conn.request("GET", url, headers=headers)
    response = conn.getresponse()
    response.read()
    elapsed = (time.perf_counter() - started) * 1000
    if response.status != 200:
        raise RuntimeError(f"{url} answered {response.status}")
    return elapsed


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def sequential(port: int, url: str, cookie: str | None, requests: int) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(10):
        get(conn, url, cookie)
    times = [get(conn, url, cookie) for _ in range(requests)]
    conn.close()
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(percentile(times, 0.95), 1)}


def concurrent(port: int, cookie: str | None, seconds: float) -> dict:
    """`CLIENTS` threads, each on its own keep-alive connection, asking for `/` for `seconds`."""
    times: list[float] = []
    errors = []
    stop_at = time.monotonic() + seconds
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        try:
            while time.monotonic() < stop_at:
                mine.append(get(conn, "/", cookie))
        except (OSError, RuntimeError, http.client.HTTPException) as error:
            errors.append(repr(error))
        finally:
            conn.close()
            with lock:
                times.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {
        "requests_per_s": round(len(times) / elapsed, 1),
        "p95_ms": round(percentile(times, 0.95), 1) if times else None,
        "requests": len(times),
        "errors": len(errors),
    }


def wait_http(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        if process.poll() is not None:
            raise RuntimeError(f"daphne exited with {process.returncode} before answering")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"daphne did not answer on port {port} within {timeout:.0f}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/spaces_bench_pages")
    parser.add_argument("--requests", type=int, default=100, help="sequential requests per page and viewer")
    parser.add_argument("--concurrent-s", type=float, default=10.0, help="seconds of 20 concurrent clients")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    load = os.getloadavg()
    result: dict = {"bench": "pages", "loadavg_at_start": [round(x, 2) for x in load], "cpus": os.cpu_count()}
    say(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    env = settings_env(args.database_url, scratch)
    daphne = None
    status = 1
    try:
        fresh_postgres(args.database_url)
        run_step("migrate", [PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env)
        seeded = seed_scale(args.database_url)
        result.update(seed_s=seeded["seed_s"], rows=seeded["rows"])
        run_step("collectstatic", [PYTHON, "manage.py", "collectstatic", "--noinput", "-v0"], env)
        set_up_django(env)
        cookies = sessions()
        viewers = {"follows_20": cookies["follows_20"], "follows_2000": cookies["follows_2000"], "anonymous": None}
        pages = {
            "home": "/",
            "followers": f"/u/{seeded['big_host']}/followers/",
            "search": "/spaces/?q=music",
            "space": f"/spaces/{seeded['big_room']}/",
            "profile": f"/u/{seeded['big_host']}/",
            "api_live": "/api/spaces/?state=live",
            "notifications": "/notifications/",
            # The API's lists, a page at a time like the pages (no count of the 62k followers, the 1,000
            # notifications).
            "api_followers": f"/api/users/{seeded['big_host']}/followers/",
            "api_notifications": "/api/notifications/",
        }

        port = free_port()
        log = open(scratch / "daphne.log", "wb")  # noqa: SIM115 - daphne writes to it until it stops
        daphne = subprocess.Popen(
            [*DAPHNE, "-b", "127.0.0.1", "-p", str(port), "spaces_site.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_http(port, daphne)
        say(f"daphne pid {daphne.pid} answers on 127.0.0.1:{port}")

        figures: dict = {}
        worst = 0.0
        for page, url in pages.items():
            for viewer, cookie in viewers.items():
                if page in ("notifications", "api_notifications") and cookie is None:
                    continue
                timing = sequential(port, url, cookie, args.requests)
                cold, warm = count_queries(url, cookie)
                figures[f"{page} / {viewer}"] = {**timing, "queries": warm, "queries_cold_cache": cold}
                worst = max(worst, timing["p95_ms"])
                say(
                    f"{page:17} {viewer:12} p50 {timing['p50_ms']:6.1f} ms  p95 {timing['p95_ms']:6.1f} ms  "
                    f"queries {warm} ({cold} with an empty cache)"
                )
        result["pages"] = figures
        result["worst_p95_ms"] = worst
        for viewer in ("anonymous", "follows_20"):
            load_now = os.getloadavg()[0]
            home = concurrent(port, viewers[viewer], args.concurrent_s)
            home["loadavg_1m_before"] = round(load_now, 2)
            result[f"home_concurrent_{viewer}"] = home
            say(f"GET / from {CLIENTS} clients, {viewer}: {home['requests_per_s']} requests/s, p95 {home['p95_ms']} ms")
        result["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        result["goal"] = GOAL
        result["met"] = (
            worst <= GOAL["page_p95_ms"]
            and result["home_concurrent_anonymous"]["requests_per_s"] >= GOAL["home_anonymous_rps"]
            and result["home_concurrent_follows_20"]["requests_per_s"] >= GOAL["home_signed_in_rps"]
        )
        result["python"] = platform.python_version()
        status = 0
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - report any failure in the JSON line
        say(f"FAILED: {type(error).__name__}: {error}")
        result["failed"] = f"{type(error).__name__}: {error}"
    finally:
        if daphne is not None:
            daphne.terminate()
            try:
                daphne.wait(timeout=10)
            except subprocess.TimeoutExpired:
                daphne.kill()
        if "django" in sys.modules:
            from django.db import connections

            connections.close_all()
        if not args.keep:
            try:
                import psycopg

                parts = urlsplit(args.database_url)
                with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as connection:
                    connection.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')
            except psycopg.Error as error:
                say(f"could not drop the database: {error}")
    print(json.dumps(result), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
