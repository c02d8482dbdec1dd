"""What the home page shows everyone alike, kept in the cache for `SPACES_FEEDS_CACHE_S`.

The live bar and the upcoming list are the same for every viewer until someone's blocks or follows
reorder or hide a few entries. So the shared part (which spaces, in which order, with how many
listening) is read once per second or so for the whole site, in the cache backend (Redis in
production: shared by every web process), and each request adds only what is its own: a query or
two over the ids in hand (`rooms.selectors.live_spaces`, `upcoming_spaces`).

A space that goes live, ends, is cancelled or moves is dropped from the cache as its transaction
commits (the receivers below), so the person who started or ended it sees the change on their next
page; a request that read the old rows just before the commit can put them back for at most one
period, and every other change (a listener joining, a title edit, a space scheduled) shows within
one period too. With Redis down the pages are read afresh (`spaces_site.soft_cache`).
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.dispatch import receiver
from django.template.loader import get_template
from django.utils.safestring import SafeString, mark_safe

from rooms import signals
from rooms.models import Connection, Space, SpaceState
from spaces_site.soft_cache import cached, forget, recall, recall_many, remember, remember_many

LIVE_KEY = "feeds.live.v1"
UPCOMING_KEY = "feeds.upcoming.v2"
# A live space's entry in the live bar and its card, rendered, by space and listener count.
LIVE_ENTRY_KEY = "feeds.live-entry.v1"
# A card's shared part (`rooms/_space_card_link.html`), rendered, by space and what the card shows.
CARD_KEY = "feeds.card.v1"
# The names of what `for_everyone` keeps, to drop with the rest.
EVERYONE_KEY = "feeds.everyone.v1"
# Spaces kept for the upcoming list: more than a page shows, so a viewer's blocks seldom empty it.
UPCOMING_KEPT = 30
# What cards and the live bar read (`templates/rooms/_space_card.html`, `home.html`).
HOST_SHOWN = ("username", "display_name", "avatar")
SPACE_SHOWN = ("host_id", "title", "topics", "state", "is_ticketed", "scheduled_for", "started_at", "ended_at")

T = TypeVar("T")


def _per_space(connections, count: Count) -> Coalesce:
    """A correlated COUNT for each space: one range of `Connection.space`'s index per live space,
    instead of joining every connection of every live space to its space and grouping them all."""
    counted = connections.filter(space=OuterRef("pk")).order_by().values("space").annotate(n=count).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def live_rows() -> list[tuple[int, int, int]]:
    """(space id, host id, listeners) of every live space, the busiest first: each signed-in person
    once, each anonymous socket once (as `selectors.listener_count` counts them)."""
    return cached(LIVE_KEY, settings.SPACES_FEEDS_CACHE_S, _live_rows)


def _live_rows() -> list[tuple[int, int, int]]:
    people = Connection.objects.filter(participant__isnull=False)
    signed_in = _per_space(people, Count("participant", distinct=True))
    anonymous = _per_space(Connection.objects.filter(participant__isnull=True), Count("pk"))
    return list(
        Space.objects.filter(state=SpaceState.LIVE)
        .annotate(listeners=signed_in + anonymous)
        .order_by("-listeners", "-started_at", "-pk")
        .values_list("pk", "host_id", "listeners")
    )


def space_cards() -> QuerySet[Space]:
    """Spaces with what a card or the live bar shows of their host (nothing secret goes to the cache)."""
    return Space.objects.select_related("host").only(*(f"host__{name}" for name in HOST_SHOWN), *SPACE_SHOWN)


@dataclass(frozen=True)
class LiveEntry:
    """A live space as the home page shows it: its entry in the live bar and its card, both the same
    for everyone, and whether the viewer follows its host."""

    pk: int
    host_id: int
    listeners: int
    followed: bool
    bar: SafeString  # rooms/_live_bar_entry.html
    card: SafeString  # rooms/_space_card_link.html


def live_entries(rows: list[tuple[int, int, int]], *, followed: frozenset[int]) -> list[LiveEntry]:
    """The entries of `rows` (space id, host id, listeners), in their order.

    What an entry shows is the same for everyone: rendered once a period (`SPACES_FEEDS_CACHE_S`) and
    kept by space and listener count, so a request reads the page's entries in one round trip instead
    of loading and rendering each space; a title or a host's name shows within the period, as a
    listener count does. Spaces not rendered yet are read in one query, and one no longer live is left
    out (the rows themselves are dropped as a space ends: `_space_changed`)."""
    keys = [f"{LIVE_ENTRY_KEY}.{space_id}.{listeners}" for space_id, _, listeners in rows]
    rendered = recall_many(keys)
    missing = [row for key, row in zip(keys, rows, strict=True) if key not in rendered]
    if missing:
        spaces = space_cards().filter(state=SpaceState.LIVE).in_bulk([space_id for space_id, _, _ in missing])
        bar, card = get_template("rooms/_live_bar_entry.html"), get_template("rooms/_space_card_link.html")
        fresh = {}
        for space_id, _, listeners in missing:
            if space_id in spaces:
                space = spaces[space_id]
                space.listeners = listeners
                fresh[f"{LIVE_ENTRY_KEY}.{space_id}.{listeners}"] = (
                    bar.render({"space": space}),
                    card.render({"space": space}),
                )
        remember_many(fresh, settings.SPACES_FEEDS_CACHE_S)
        rendered.update(fresh)
    entries = []
    for key, (space_id, host_id, listeners) in zip(keys, rows, strict=True):
        if key in rendered:
            bar_html, card_html = rendered[key]
            # Our own templates' output, kept as rendered.
            entries.append(
                LiveEntry(space_id, host_id, listeners, host_id in followed, mark_safe(bar_html), mark_safe(card_html))
            )
    return entries


def _card_key(space: Space) -> str:
    shown = (space.state, space.scheduled_for, space.title, space.topics, getattr(space, "listeners", None))
    return f"{CARD_KEY}.{space.pk}.{hashlib.md5(repr(shown).encode(), usedforsecurity=False).hexdigest()}"


def card_links(spaces: list[Space]) -> list[Space]:
    """`spaces`, each with `card_link`: its card's shared part, rendered once a period for everyone
    and kept by space and what the card shows (the reminder button stays the viewer's own)."""
    keys = [_card_key(space) for space in spaces]
    rendered = recall_many(keys)
    template = None
    fresh = {}
    for key, space in zip(keys, spaces, strict=True):
        if key not in rendered:
            template = template or get_template("rooms/_space_card_link.html")
            rendered[key] = fresh[key] = template.render({"space": space})
        space.card_link = mark_safe(rendered[key])  # our own template's output, kept as rendered
    remember_many(fresh, settings.SPACES_FEEDS_CACHE_S)
    return spaces


def upcoming() -> list[Space]:
    """The first `UPCOMING_KEPT` scheduled spaces, soonest first, ready for their cards."""
    return cached(
        UPCOMING_KEY,
        settings.SPACES_FEEDS_CACHE_S,
        lambda: list(space_cards().filter(state=SpaceState.SCHEDULED).order_by("scheduled_for", "pk")[:UPCOMING_KEPT]),
    )


def for_everyone(name: str, build: Callable[[], T]) -> T:
    """What every anonymous visitor sees alike (`build()`), kept whole for a period."""
    key = f"{EVERYONE_KEY}.{name}"

    def build_and_list() -> T:
        keys = recall(EVERYONE_KEY) or set()
        if key not in keys:
            remember(EVERYONE_KEY, keys | {key}, None)
        return build()

    return cached(key, settings.SPACES_FEEDS_CACHE_S, build_and_list)


def feeds_forget() -> None:
    """Drop the cached feeds: the next page reads them afresh."""
    forget(LIVE_KEY, UPCOMING_KEY, *(recall(EVERYONE_KEY) or ()))


@receiver(signals.space_went_live)
@receiver(signals.space_ended)
@receiver(signals.space_cancelled)
@receiver(signals.space_rescheduled)
def _space_changed(sender, **kwargs) -> None:
    # Now, and again after the commit: a page that read the old rows in between could have put them back.
    feeds_forget()
    transaction.on_commit(feeds_forget)
