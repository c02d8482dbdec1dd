"""The cache as a shortcut for pages, never something they depend on.

Pages keep what is the same for everyone in the cache for a second or two
(`rooms.feeds`, people to follow). When Redis is down that cache is simply not
there: a read is a miss, a write or a delete is skipped, and the page is
built from the database as if nothing were cached (it was 503 during an
outage otherwise, for something it can do without). The outage itself is
logged once by `spaces_site.outages`, not here per request.
"""

import contextlib
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache

from spaces_site.outages import REDIS_ERRORS

T = TypeVar("T")


def cached(key: str, timeout: float | None, build: Callable[[], T]) -> T:
    """`build()`, kept under `key` for `timeout` seconds while the cache answers."""
    try:
        value = cache.get(key)
    except REDIS_ERRORS:
        return build()
    if value is None:
        value = build()
        remember(key, value, timeout)
    return value


def recall(key: str, default=None):
    try:
        return cache.get(key, default)
    except REDIS_ERRORS:
        return default


def recall_many(keys: list[str]) -> dict:
    """The values kept under `keys` (those the cache has), read in one round trip."""
    try:
        return cache.get_many(keys)
    except REDIS_ERRORS:
        return {}


def remember(key: str, value, timeout: float | None) -> None:
    with contextlib.suppress(*REDIS_ERRORS):
        cache.set(key, value, timeout)


def remember_many(values: dict, timeout: float | None) -> None:
    if values:
        with contextlib.suppress(*REDIS_ERRORS):
            cache.set_many(values, timeout)


def forget(*keys: str) -> None:
    with contextlib.suppress(*REDIS_ERRORS):
        cache.delete_many(list(keys))
