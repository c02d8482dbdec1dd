"""Django's PostgreSQL backend with psycopg's pool, failing at once while PostgreSQL can't be reached.

Django's pool (`OPTIONS["pool"]`, spaces_site/settings.py) makes a caller that
finds every connection busy wait up to the pool's `timeout` for one. That is
what a burst of requests needs (they wait their turn instead of opening a
connection each past `max_connections`), but not what an outage needs: with
PostgreSQL down, every request would hang for the whole timeout before its
503, where without a pool it fails at once (docs/operations.md).

So this pool remembers that its last attempt to connect failed. Until an
attempt succeeds, a caller that finds no idle connection fails at once with
that error (Django wraps it in `OperationalError`: a 503 by
`spaces_site.middleware.OutageMiddleware`), callers already waiting fail too,
and each such caller starts a new attempt if none is under way, so the pool
sees the server's return within about `reconnect_timeout` of the next caller.
Nothing changes while connections can be opened.
"""

import logging

import psycopg
from django.db.backends.postgresql import base
from prometheus_client import Gauge
from psycopg_pool import ConnectionPool, PoolTimeout

# psycopg's pool logs every failed attempt (one a second during an outage); the site logs each
# outage once (spaces_site.outages). LOGGING can still set this logger's level.
_pool_log = logging.getLogger("psycopg.pool")
if _pool_log.level == logging.NOTSET:
    _pool_log.setLevel(logging.ERROR)


class Unreachable(PoolTimeout):
    """No idle connection, and the pool's last attempt to connect failed."""


class FailFastPool(ConnectionPool):
    _unreachable: BaseException | None = None  # the last attempt's error; None once one succeeds

    def getconn(self, timeout: float | None = None):
        error = self._unreachable
        if error is not None:
            with self._lock:
                idle = bool(self._pool)
                if not idle:
                    self._maybe_grow_pool()  # a new attempt, unless one is under way
            if not idle:
                raise Unreachable(f"PostgreSQL can't be reached: {error}") from error
        return super().getconn(timeout)

    def _connect(self, timeout: float | None = None):
        try:
            conn = super()._connect(timeout)
        except psycopg.OperationalError as error:
            with self._lock:
                self._unreachable = error
                waiting = list(self._waiting)
                self._waiting.clear()
            for client in waiting:
                client.fail(Unreachable(f"PostgreSQL can't be reached: {error}"))
            raise
        self._unreachable = None
        return conn


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool  # Django's, made (not yet opened) from OPTIONS["pool"] on first use
        if type(pool) is ConnectionPool:
            pool.__class__ = FailFastPool  # same object and options, with the behaviour above
        return pool


def _in_use() -> int:
    pools = base.DatabaseWrapper._connection_pools
    return sum(stats["pool_size"] - stats["pool_available"] for stats in (p.get_stats() for p in pools.values()))


# Read when /metrics is scraped: a request waiting on Stripe must hold none (spaces_site/outside.py).
Gauge(
    "spaces_db_pool_connections_in_use",
    "Connections of this process's PostgreSQL pools lent out now (the pool's size less its idle ones).",
).set_function(_in_use)
