"""Raw statements on the hottest paths, planned by PostgreSQL once per connection rather than every time.

Django's PostgreSQL backend binds parameters on the client: every statement
reaches the server as text with its values in it, and is parsed and planned
again each time. For the few hand-written statements every request of a rush
runs (the API token's lookup, a checkout's facts, the seat hold) planning was
most of the server's work: 0.8-1.1 ms to plan the checkout's facts against
0.13-0.24 ms to run them, and 1.3-1.7 ms against 0.2 ms for the hold, which
is planned while the offer's lock is held (EXPLAIN ANALYZE on the ticket
rush's database, docs/benchmarks.md "Issue 23, third session").

`prepared_cursor()` gives such a statement a cursor that binds on the server,
so psycopg prepares it on the connection the first time (the connection's
`prepare_threshold`, `DATABASE_PREPARED_STATEMENTS` in spaces_site/settings.py)
and later runs only bind and execute. The ORM keeps its client-side binding:
its statements are not prepared. With prepared statements off, on SQLite, or
while Django logs the statements (DEBUG, a test that counts them: its log
shows a statement with its values only as the client binds them), it is
Django's own cursor. Either way its errors are Django's (a `CursorWrapper`). The seat hold, sent with its locks
in psycopg's pipeline (`ticketing.services.checkout._hold_postgresql`), uses
psycopg's cursor itself and is prepared by the same connection setting.
"""

import psycopg
from django.db import connection
from django.db.backends.utils import CursorWrapper


def prepared_cursor() -> CursorWrapper:
    """A cursor of the default connection; use it as a context manager, as `connection.cursor()`."""
    if connection.vendor != "postgresql" or connection.queries_logged:
        return connection.cursor()
    connection.ensure_connection()
    if connection.connection.prepare_threshold is None:
        return connection.cursor()
    return connection.make_cursor(psycopg.Cursor(connection.connection))
