"""Addresses that follow from one object's key alone, reversed once per process.

A list shows several addresses for each person or space in it (profile,
picture, follow buttons; a reminder button's five), and reversing them was
much of a page's time. `paths` keeps them by the routes, the key, and the
script prefix and URLconf they were reversed under.
"""

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

from django.urls import get_script_prefix, get_urlconf, reverse

Routes = tuple[tuple[str, str], ...]  # (name in the mapping, URL pattern name)


def paths(routes: Routes, **key) -> Mapping[str, str]:
    """`{name: reverse(pattern, kwargs=key)}` for each route, read-only, cached per process."""
    ((kwarg, value),) = key.items()
    return _paths(routes, kwarg, value, get_script_prefix(), get_urlconf())


@lru_cache(maxsize=32768)
def _paths(routes: Routes, kwarg: str, value, script_prefix: str, urlconf: str | None) -> Mapping[str, str]:
    kwargs = {kwarg: value}
    return MappingProxyType({name: reverse(pattern, kwargs=kwargs) for name, pattern in routes})
