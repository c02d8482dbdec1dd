"""Keyset pages: a list read a page at a time, newest first, through its index on (date, id).

Each page reads its rows and one more, starting after the last row of the page before: what a page
costs doesn't grow with the list, and nothing counts the whole list (a paginator's `COUNT(*)` over a
host's 62,000 followers took longer than the page). Lists say "Older" instead of "page 3 of 2,067".
A cursor names the last row shown: its date in whole microseconds since the epoch (exact, where a
float's would round) and its id, `1732700000000000.42`.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar

from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from drf_spectacular.utils import OpenApiParameter
from rest_framework.utils.urls import replace_query_param

from spaces_site.errors import InvalidRequest

T = TypeVar("T", bound=Model)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
# Ids are 64-bit integers in every table: a larger one is no row's (SQLite refuses to bind it).
ID_MAX = 2**63 - 1


class InvalidCursor(InvalidRequest):
    code = "invalid_cursor"


@dataclass(frozen=True)
class KeysetPage(Generic[T]):
    """One page of a list, newest first, and where the next (older) one starts."""

    rows: list[T]
    older: str  # the cursor of the next page ("" on the last)
    is_first: bool


def cursor_of(at: datetime, pk: int) -> str:
    return f"{(at - EPOCH) // MICROSECOND}.{pk}"


def cursor_parse(cursor: str) -> tuple[datetime, int]:
    """The date and id a cursor names, or `InvalidCursor` (400) for anything `cursor_of` didn't make."""
    try:
        micros, pk = (int(part) for part in cursor.split("."))
        at = EPOCH + micros * MICROSECOND
    except (ValueError, OverflowError) as error:
        raise InvalidCursor("That isn't a place in this list: start from its first page.") from error
    if not 0 <= pk <= ID_MAX:
        raise InvalidCursor("That isn't a place in this list: start from its first page.")
    return at, pk


def keyset_page(rows: QuerySet[T], *, before: str = "", size: int, date: str = "created_at") -> KeysetPage[T]:
    """A page of `rows`, newest first by `date` then id, after the row the cursor `before` names (the
    first page for ""). `rows` is filtered down to one list (one person's followers or
    notifications); an index on that filter and (`date`, id) serves the page."""
    is_first = not before
    if before:
        at, pk = cursor_parse(before)
        rows = rows.filter(Q(**{f"{date}__lt": at}) | Q(**{date: at, "pk__lt": pk}))
    found = list(rows.order_by(f"-{date}", "-pk")[: size + 1])
    older = cursor_of(getattr(found[size - 1], date), found[size - 1].pk) if len(found) > size else ""
    return KeysetPage(rows=found[:size], older=older, is_first=is_first)


# An API list's `before` parameter, for its schema.
BEFORE = OpenApiParameter(
    "before",
    str,
    description="Where the page starts, as the previous page's `next` link gives it; leave it out for the newest.",
)


def older_url(request: HttpRequest, older: str) -> str | None:
    """The address of the page after this one (this request's, with `before=older`), for an API's
    `next`; None on the last page."""
    return replace_query_param(request.build_absolute_uri(), "before", older) if older else None
