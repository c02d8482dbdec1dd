import os
import shutil

import pytest
from django.conf import settings
from django.db import connection, connections
from rest_framework.test import APIClient

from tests.factories import UserFactory
from ticketing.stripe_client import breaker

# With SPACES_TEST_STRICT=1 (CI), a missing PostgreSQL or browser fails the run
# instead of leaving its tests out.
STRICT = os.environ.get("SPACES_TEST_STRICT") == "1"
CHROMIUM = os.environ.get("SPACES_CHROMIUM", "/usr/bin/chromium")
# The flags that work here (../shared/NOTES.md).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


# Tests that hold the site to the clock (real audio, browsers, the topology's faults, answers within
# a bound, limits that refill): marked `alone`, they run while nothing else of the test command runs
# (scripts/run_tests.py runs the rest of the two passes side by side).
ALONE_MARKS = ("browser", "media")
ALONE_PATHS = (
    "tests/topology/",
    "tests/media/",
    "tests/accounts/test_email_outage.py",
    "tests/pages/test_cached_feeds.py",
    "tests/rooms/test_bad_input.py",
    "tests/rooms/test_command_limits.py",
    "tests/rooms/test_presence.py",
    "tests/rooms/test_presence_restart.py",
    "tests/scheduling/test_celery_worker.py",
    "tests/scheduling/test_newcomer_golive.py",
    "tests/spaces_site/test_daphne_backpressure.py",
    "tests/ticketing/test_breaker.py",
    "tests/ticketing/test_checkout.py",
    "tests/ticketing/test_hanging_stripe.py",
    "tests/ticketing/test_webhooks.py",
)


@pytest.hookimpl(tryfirst=True)  # before `-m` chooses by marks
def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(ALONE_PATHS) or any(item.get_closest_marker(m) for m in ALONE_MARKS):
            item.add_marker(pytest.mark.alone)
    leave_out = {}
    if connection.vendor != "postgresql":
        leave_out["postgres"] = "needs PostgreSQL (set DATABASE_URL)"
    if connection.vendor != "sqlite":
        leave_out["sqlite"] = "about the embedded default, SQLite"
    if not settings.REDIS_URL:
        leave_out["redis"] = "needs Redis (set REDIS_URL)"
    if not shutil.which(CHROMIUM):
        if STRICT:
            raise pytest.UsageError(f"Browser tests need Chromium at {CHROMIUM}.")
        leave_out["browser"] = f"needs Chromium at {CHROMIUM}"
    kept, dropped = [], []
    for item in items:
        (dropped if any(item.get_closest_marker(m) for m in leave_out) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
        reasons = "; ".join(f"{m}: {why}" for m, why in leave_out.items())
        print(f"\nLeft out {len(dropped)} tests in this pass ({reasons}).")


# Made by `migrate` and changed only by it: the flush between transactional tests keeps them.
KEPT_BY_FLUSH = frozenset({"django_content_type", "auth_permission"})
# Up to this many rows in every table, the flush on PostgreSQL DELETEs them; past it, it TRUNCATEs.
FEW_ROWS = 500


def _holds_many_rows(connection, tables: list[str], many: int = FEW_ROWS) -> bool:
    """Whether any of `tables` holds more than `many` rows: one statement, reading at most that many of each."""
    quote = connection.ops.quote_name
    probes = " OR ".join(f"EXISTS (SELECT 1 FROM {quote(table)} OFFSET {many})" for table in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {probes}")
        return cursor.fetchone()[0]


@pytest.fixture(scope="session", autouse=True)
def _quick_flush():
    """Between transactional tests Django empties every table. On PostgreSQL it does so with one
    TRUNCATE, which makes new files for all 40 tables: about 0.45 s, with the content types and
    permissions it then inserts again, against 0.01 s for a DELETE of the few rows a test wrote.
    So the flush DELETEs (foreign keys, deferred, are checked once at its commit) unless a table
    holds many rows: deleted rows stay behind as dead ones until autovacuum comes, and a few
    thousand of them made every later scan of their table slower. It keeps the content types
    and permissions, so nothing needs making again after it. Tests only: nothing in the product
    flushes."""
    from django.core.management.commands import flush
    from django.db.backends.postgresql.base import DatabaseWrapper as PostgreSQLWrapper
    from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper

    PostgreSQL, SQLite = PostgreSQLWrapper.ops_class, SQLiteWrapper.ops_class

    def keeping(flush):
        def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
            tables = [table for table in tables if table not in KEPT_BY_FLUSH]
            return flush(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)

        return sql_flush

    truncating = PostgreSQL.sql_flush

    def deleting(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade or not tables or _holds_many_rows(self.connection, tables):
            return truncating(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
        return ["SET CONSTRAINTS ALL DEFERRED", *(f"DELETE FROM {self.quote_name(table)}" for table in tables)]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(PostgreSQL, "sql_flush", keeping(deleting))
        patch.setattr(SQLite, "sql_flush", keeping(SQLite.sql_flush))
        # The post_migrate receivers make only those two tables' rows, which the flush now keeps.
        patch.setattr(flush, "emit_post_migrate_signal", lambda *args, **kwargs: None)
        yield


@pytest.fixture(autouse=True)
def _fresh_redis_channel_layer():
    """In the Redis pass, each test gets its own channel layer object.

    A process in production runs one event loop; the suite runs hundreds, some in other threads
    (`async_to_sync`), and a layer object shared by all of them carries its receive state from one
    test's loop to the next. The messages live in Redis, so a fresh object loses nothing; the
    in-memory layer of the SQLite pass is kept.
    """
    yield
    if settings.REDIS_URL:
        from channels.layers import channel_layers

        channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _stripe_breaker_closed():
    """Each test starts with Stripe's breaker closed: one that opened it mustn't refuse the next's calls."""
    breaker.close()
    yield
    breaker.close()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: keys made from primary keys would carry over otherwise
    (a database flushed between tests hands out the same ids again)."""
    from django.core.cache import caches

    for cache in caches.all():  # the default and the template fragments' (each process's own)
        cache.clear()


@pytest.fixture(autouse=True)
def _file_folders(settings, tmp_path_factory, monkeypatch):
    """Uploads, recordings and the recording spool in a folder of the test's own, here and in the
    processes a test starts (daphne, a media worker), which read them from the environment."""
    folder = tmp_path_factory.mktemp("files")
    settings.MEDIA_ROOT = folder / "uploads"
    settings.SPACES_RECORDING_SPOOL_DIR = folder / "recording-spool"
    monkeypatch.setenv("MEDIA_ROOT", str(settings.MEDIA_ROOT))
    monkeypatch.setenv("SPACES_RECORDING_SPOOL_DIR", str(settings.SPACES_RECORDING_SPOOL_DIR))


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def signed_in(api, user) -> APIClient:
    api.force_authenticate(user)
    return api


@pytest.fixture
def chromium(monkeypatch):
    """A headless Chromium (Debian's, through Playwright) with the flags NOTES.md lists."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls the
    # test makes between page actions are still plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def phone(chromium):
    """A phone-sized page (390 by 844, touch)."""
    context = chromium.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()
    # The test's ORM calls ran while Playwright held this thread's context; their
    # connection is not the one pytest-django closes, so close it here.
    connections.close_all()


@pytest.fixture
def browsers(asgi_live_server, chromium):
    """Several people, each in a browser context of their own, on the live site."""
    from tests.browsers import Browsers

    browsers = Browsers(chromium, asgi_live_server.url)
    yield browsers
    browsers.close()
    # The test's ORM calls ran while Playwright held this thread; their
    # connection is not the one pytest-django closes, so close it here.
    connections.close_all()


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """On SQLite, the test database is a file rather than in memory, so that the
    daphne process of `asgi_live_server` can open it too."""
    from django.conf import settings

    default = settings.DATABASES["default"]
    if default["ENGINE"] == "django.db.backends.sqlite3" and not default["TEST"].get("NAME"):
        default["TEST"]["NAME"] = str(tmp_path_factory.mktemp("sqlite") / "test.sqlite3")


@pytest.fixture
def asgi_live_server(transactional_db):
    """The real ASGI site (pages, static files and websockets) under daphne, in a child
    process on the test database. The test's data must be committed to be seen:
    mark the test `django_db(transaction=True)`."""
    from tests.live_server_asgi import AsgiLiveServer

    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.fail("asgi_live_server can't share an in-memory SQLite database with daphne.", pytrace=False)
    with AsgiLiveServer({alias: connections[alias].settings_dict for alias in connections}) as server:
        yield server


@pytest.fixture
def sent(monkeypatch) -> list[dict]:
    """Every space event message handed to the channel layer, with the groups it went to."""
    from rooms import events

    messages = []
    send = events._group_send

    async def recorded(layer, groups, message):
        messages.append({**message, "groups": list(groups)})
        await send(layer, groups, message)

    monkeypatch.setattr(events, "_group_send", recorded)
    return messages
