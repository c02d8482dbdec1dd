"""Reads of spaces shared by pages, the API and the consumers."""

from collections.abc import Collection
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector, SearchVectorField
from django.db import connection
from django.db.models import Case, CharField, Count, Exists, F, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.db.models.expressions import RawSQL

from accounts.models import Block, Follow, User
from rooms import feeds
from rooms.errors import EntryRefused, NumbersRefused, ReplayRefused, SpaceNotFound
from rooms.models import (
    STAGE_ROLES,
    CaptionLine,
    Connection,
    Participant,
    Role,
    Space,
    SpaceBlock,
    SpaceNumbers,
    SpaceState,
    is_moderator,
)
from rooms.passes import holds_pass, spaces_passed
from rooms.payloads import participant_payload, space_payload

ROLE_ORDER = Case(
    When(role=Role.HOST, then=Value(0)),
    When(role=Role.COHOST, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def space_get(*, space_id: int) -> Space:
    space = Space.objects.select_related("host").filter(pk=space_id).first()
    if space is None:
        raise SpaceNotFound(f"No space with id {space_id}.")
    return space


@dataclass(frozen=True)
class Entry:
    allowed: bool
    code: str
    detail: str


def entry_decision(*, user: User, space: Space) -> Entry:
    """May this user enter this space? The one answer the websocket, the API and the media worker use."""
    if space.state == SpaceState.SCHEDULED:
        return Entry(False, "not_started", "This space hasn't started yet.")
    if space.state != SpaceState.LIVE:
        return Entry(False, "space_over", f"This space has {space.state}.")
    if not user.is_authenticated:
        if space.is_ticketed:
            return Entry(False, "login_required", "Log in with a ticket to join this space.")
        return Entry(True, "anonymous_listener", "Listening without an account.")
    if user.pk == space.host_id:
        return Entry(True, "host", "You host this space.")
    if SpaceBlock.objects.filter(space=space, user=user).exists():
        return Entry(False, "removed", "You were removed from this space.")
    if Block.objects.filter(blocker_id=space.host_id, blocked=user).exists():
        return Entry(False, "blocked", "You can't join this space.")
    if space.is_ticketed and not _admitted_without_ticket(user=user, space=space):
        if not holds_pass(user=user, space=space):
            return Entry(False, "ticket_required", "This space needs a ticket.")
        return Entry(True, "ticket_holder", "Welcome, ticket holder.")
    return Entry(True, "allowed", "Welcome.")


# Co-hosts and invited speakers enter a ticketed space without a ticket (paid holders pass
# `rooms.passes.holds_pass`, the ticket rule): their places in it.
ADMITTED_WITHOUT_TICKET = Q(role__in=STAGE_ROLES) | Q(invited_at__isnull=False)


def _admitted_without_ticket(*, user: User, space: Space) -> bool:
    return Participant.objects.filter(ADMITTED_WITHOUT_TICKET, space=space, user=user).exists()


def replay_decision(*, user: User, space: Space) -> Entry:
    """May this user hear a space's replay, read its transcript (page, API, WebVTT) and see or play its
    clips? One answer for all of them. Nobody the host blocked or removed from the space; for a ticketed
    space, its host, paid ticket holders (`rooms.passes`: a refunded ticket is no pass) and those it let
    in without one; being in the space once is not enough. Staff and the host always."""
    if user.is_authenticated and (user.pk == space.host_id or user.is_staff):
        return Entry(True, "host", "Your space." if user.pk == space.host_id else "Staff.")
    if user.is_authenticated and (
        SpaceBlock.objects.filter(space=space, user=user).exists()
        or Block.objects.filter(blocker_id=space.host_id, blocked=user).exists()
    ):
        return Entry(False, "blocked", "You can't hear this space's replay or read its transcript.")
    if space.is_ticketed:
        if not user.is_authenticated:
            return Entry(False, "login_required", "Log in with a ticket to hear this replay or read its transcript.")
        if not _admitted_without_ticket(user=user, space=space) and not holds_pass(user=user, space=space):
            return Entry(False, "ticket_required", "This space's replay and transcript are for its ticket holders.")
    return Entry(True, "allowed", "Enjoy the replay.")


def replayable_spaces(*, user: User) -> Q:
    """`replay_decision` for many spaces at once, as a filter on spaces: those whose replay and
    transcript `user` may have, by the same rule (the host and staff; for others not removed from the
    space nor blocked by its host, an unticketed space, or a ticketed one they hold a pass to or were
    let into without one). Subqueries of the user's own rows, so a read over many spaces (search by
    what was said) decides none of them in Python. An empty Q for staff: every space."""
    if not user.is_authenticated:
        return Q(is_ticketed=False)
    if user.is_staff:
        return Q()
    shut_out = Q(pk__in=SpaceBlock.objects.filter(user=user).values("space_id")) | Q(
        host_id__in=Block.objects.filter(blocked=user).values("blocker_id")
    )
    let_in = (
        Q(is_ticketed=False)
        | Q(pk__in=Participant.objects.filter(ADMITTED_WITHOUT_TICKET, user=user).values("space_id"))
        | Q(pk__in=spaces_passed(user=user))
    )
    return Q(host_id=user.pk) | (~shut_out & let_in)


def ensure_may_replay(*, user: User, space: Space) -> None:
    """`replay_decision` for the endpoints: ReplayRefused (403) with its code and reason when refused."""
    decision = replay_decision(user=user, space=space)
    if not decision.allowed:
        raise ReplayRefused(decision.detail, code=decision.code)


def ensure_may_enter(*, user: User, space: Space) -> None:
    decision = entry_decision(user=user, space=space)
    if not decision.allowed:
        raise EntryRefused(decision.detail, code=decision.code)


def participant_of(*, space: Space, user: User) -> Participant | None:
    if not user.is_authenticated:
        return None
    return Participant.objects.select_related("user").filter(space=space, user=user).first()


def _present() -> Exists:
    return Exists(Connection.objects.filter(participant=OuterRef("pk")))


def stage_of(*, space: Space) -> list[Participant]:
    """Host, co-hosts, then speakers in the order they came up."""
    return list(
        Participant.objects.filter(space=space, role__in=STAGE_ROLES)
        .select_related("user")
        .annotate(present=_present(), role_order=ROLE_ORDER)
        .order_by("role_order", "joined_at", "pk")
    )


def hand_queue_of(*, space: Space) -> list[Participant]:
    """Listeners asking to speak, first come first served."""
    return list(
        Participant.objects.filter(space=space, role=Role.LISTENER, hand_raised_at__isnull=False)
        .select_related("user")
        .annotate(present=_present())
        .order_by("hand_raised_at", "pk")
    )


def next_host(*, space_id: int) -> Participant | None:
    """Who takes over from a host who leaves or is gone: the co-host present longest in the space."""
    return (
        Participant.objects.filter(space_id=space_id, role=Role.COHOST, absent_since__isnull=True)
        .select_related("user")
        .order_by("joined_at", "pk")
        .first()
    )


def listener_count(*, space_id: int) -> int:
    """Everyone connected: each signed-in person once, each anonymous socket once."""
    counts = Connection.objects.filter(space_id=space_id).aggregate(
        people=Count("participant", distinct=True),
        anonymous=Count("pk", filter=Q(participant__isnull=True)),
    )
    return counts["people"] + counts["anonymous"]


def space_snapshot(*, space: Space, participant: Participant | None) -> dict:
    """Everything a client needs on connect; the hand queue only for moderators."""
    role = participant.role if participant else None
    snapshot = {
        "type": "snapshot",
        "space": space_payload(space),
        "stage": [participant_payload(p, present=p.present) for p in stage_of(space=space)],
        "you": participant_payload(participant) if participant else None,
        "listener_count": listener_count(space_id=space.pk),
    }
    if is_moderator(role):
        snapshot["hands"] = [participant_payload(p, present=p.present) for p in hand_queue_of(space=space)]
    return snapshot


def _visible_to(viewer: User, spaces: QuerySet[Space]) -> QuerySet[Space]:
    if viewer.is_authenticated:
        spaces = spaces.exclude(host__blocks_made__blocked=viewer)
    return spaces


@dataclass(frozen=True)
class FeedTies:
    """What of the viewer's graph reorders or hides home page entries: the live hosts (and of the
    people suggested to follow, those) they follow, the people who blocked them, and of the people
    suggested, those they blocked."""

    followed: frozenset[int]
    hiding: frozenset[int]
    blocking: frozenset[int] = frozenset()

    def left_out(self, people: Collection[int]) -> frozenset[int]:
        """Of `people` (read by `feed_ties`), those not to suggest: followed, or with a block either way."""
        return frozenset(people) & (self.followed | self.hiding | self.blocking)


NO_TIES = FeedTies(frozenset(), frozenset())


def feed_ties(*, viewer: User, people: Collection[int] = ()) -> FeedTies:
    """The viewer's ties to the feeds' hosts and to `people` (those the page suggests following), in
    one query; a page that shows the live bar, the upcoming list and suggestions reads them once and
    hands them to each."""
    if not viewer.is_authenticated:
        return NO_TIES
    live_hosts = len(feeds.live_rows())
    followed = Follow.objects.filter(follower=viewer)
    if viewer.following_count > live_hosts + len(people):
        # Probe the live hosts in the follow index rather than read every follow the viewer has (a
        # subquery, not hundreds of ids to send).
        shown = Q(followee_id__in=Space.objects.filter(state=SpaceState.LIVE).values("host_id"))
        followed = followed.filter(shown | Q(followee_id__in=people) if people else shown)
    arms = [] if not (live_hosts or people) else [_tied(followed, "followee_id", "followed")]
    arms.append(_tied(Block.objects.filter(blocked=viewer), "blocker_id", "hiding"))
    if people:
        arms.append(_tied(Block.objects.filter(blocker=viewer, blocked_id__in=people), "blocked_id", "blocking"))
    rows = list(arms[0].union(*arms[1:], all=True)) if len(arms) > 1 else list(arms[0])
    return FeedTies(
        followed=frozenset(pk for pk, tie in rows if tie == "followed"),
        hiding=frozenset(pk for pk, tie in rows if tie == "hiding"),
        blocking=frozenset(pk for pk, tie in rows if tie == "blocking"),
    )


def _tied(rows: QuerySet, person: str, tie: str) -> QuerySet:
    return rows.annotate(tie=Value(tie, output_field=CharField())).values_list(person, "tie")


def live_spaces(*, viewer: User, limit: int = 20, ties: FeedTies | None = None) -> list[feeds.LiveEntry]:
    """Live spaces for the home page's live bar: hosts the viewer follows first, then the busiest.

    The site-wide order and listener counts come from the cache (`rooms.feeds`), and so does what each
    entry shows (rendered once a period for everyone: `feeds.live_entries`); the viewer's own part is
    one query over the hosts in hand, however many are live (`feed_ties`; none here when the caller
    read them already). Anonymous visitors all see the same bar: it is kept whole."""
    if not viewer.is_authenticated:
        return feeds.for_everyone(f"live.{limit}", lambda: _live_spaces(limit=limit, ties=NO_TIES))
    return _live_spaces(limit=limit, ties=ties or feed_ties(viewer=viewer))


def _live_spaces(*, limit: int, ties: FeedTies) -> list[feeds.LiveEntry]:
    rows = feeds.live_rows()
    if ties.hiding:
        rows = [row for row in rows if row[1] not in ties.hiding]
    if ties.followed:
        # Stable: among the followed and among the others, the cached order (busiest, then newest) holds.
        rows = sorted(rows, key=lambda row: row[1] not in ties.followed)
    return feeds.live_entries(rows[:limit], followed=ties.followed)


def upcoming_spaces(*, viewer: User, limit: int = 20, ties: FeedTies | None = None) -> list[Space]:
    """Scheduled spaces, soonest first, from the cache (`rooms.feeds`) less those of people who blocked
    the viewer, each with its card's shared part rendered (`feeds.card_links`; the reminder buttons
    read the viewer's reminders once: `scheduling` tags)."""
    hiding = (ties or feed_ties(viewer=viewer)).hiding
    upcoming = feeds.upcoming()
    kept = [space for space in upcoming if space.host_id not in hiding]
    if len(kept) < limit and len(upcoming) == feeds.UPCOMING_KEPT:
        # The viewer's blocks hid much of what the cache keeps: read past it (rare; one query more).
        spaces = feeds.space_cards().filter(state=SpaceState.SCHEDULED).exclude(host_id__in=hiding)
        kept = list(spaces.order_by("scheduled_for", "pk")[:limit])
    return feeds.card_links(kept[:limit])


def transcript_lines(*, space: Space) -> QuerySet[CaptionLine]:
    return CaptionLine.objects.filter(space=space).select_related("speaker").order_by("start_ms", "pk")


# Full-text search on PostgreSQL (migration 0007): a space's words are in a stored column of
# PostgreSQL's own, `search_words`, with a GIN index; a transcript's through an expression index on the
# very expression matched here (an expression index serves only the same expression).
SEARCH_CONFIG = "english"
SPACE_WORDS = RawSQL('"rooms_space"."search_words"', [], output_field=SearchVectorField())
CAPTION_WORDS = SearchVector("text", config=SEARCH_CONFIG)
# Spaces whose transcript says the words, at most this many, joined to the title and topic matches.
SAID_MAX = 1000


def spaces_search(*, viewer: User, query: str = "", state: str = "", host: str = "") -> QuerySet[Space]:
    """Spaces by words in their title, topics or transcript, state and host; live first, then upcoming,
    then the rest, and within each the best match first (PostgreSQL's full-text search, through its
    GIN indexes); plain substring matching elsewhere. A transcript's words find its space only for a
    viewer who may read that transcript (`replayable_spaces`): nobody learns what was said in a
    ticketed space by searching for it."""
    # Words from the address bar: a NUL can't be in any text stored (PostgreSQL refuses it in a query).
    query, state, host = (value.replace("\x00", "") for value in (query, state, host))
    spaces = Space.objects.select_related("host")
    relevance = []
    if query and connection.vendor == "postgresql":
        words = SearchQuery(query, search_type="websearch", config=SEARCH_CONFIG)
        said = _spaces_saying(CaptionLine.objects.annotate(words=CAPTION_WORDS).filter(words=words), viewer=viewer)
        spaces = spaces.alias(words=SPACE_WORDS).filter(Q(words=words) | Q(pk__in=said))
        spaces = spaces.annotate(rank=SearchRank(F("words"), words))
        relevance = ["-rank"]
    elif query:
        said = _spaces_saying(CaptionLine.objects.filter(text__icontains=query), viewer=viewer)
        spaces = spaces.filter(Q(title__icontains=query) | Q(topics__icontains=query.lower()) | Q(pk__in=said))
    if state:
        spaces = spaces.filter(state=state)
    if host:
        spaces = spaces.filter(host__username__iexact=host)
    state_order = Case(
        When(state=SpaceState.LIVE, then=Value(0)),
        When(state=SpaceState.SCHEDULED, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return _visible_to(viewer, spaces).order_by(state_order, *relevance, "-started_at", "scheduled_for", "-pk")


def _spaces_saying(lines: QuerySet[CaptionLine], *, viewer: User) -> list[int]:
    """The spaces of these transcript lines whose transcript `viewer` may read. Read apart (one query,
    through the transcript's own index) so that the spaces' match can use theirs: an OR with a
    subquery would scan every space. The viewer's rule is in this query, so `SAID_MAX` counts only
    spaces they may read."""
    readable = replayable_spaces(user=viewer)
    if readable:
        lines = lines.filter(space__in=Space.objects.filter(readable))
    return list(lines.order_by().values_list("space_id", flat=True).distinct()[:SAID_MAX])


def live_space_ids_by_host(*, host_ids: list[int]) -> dict[int, int]:
    """For purple rings: which of these people host a live space now, and which."""
    return dict(Space.objects.filter(state=SpaceState.LIVE, host_id__in=host_ids).values_list("host_id", "pk"))


NUMBERS_STATES = (SpaceState.LIVE, SpaceState.ENDED)


def numbers_of(*, space: Space) -> SpaceNumbers:
    """A space's counters (all zero until something was counted)."""
    return SpaceNumbers.objects.filter(space=space).first() or SpaceNumbers(space=space)


def host_spaces_with_numbers(*, host: User) -> QuerySet[Space]:
    """The spaces someone hosts that ran, newest first, each with its counters joined in (one query a page)."""
    return (
        Space.objects.filter(host=host, state__in=NUMBERS_STATES)
        .select_related("numbers")
        .order_by("-started_at", "-pk")
    )


def ensure_may_see_numbers(*, user: User, space: Space) -> None:
    if not (user.is_authenticated and (user.pk == space.host_id or user.is_staff)):
        raise NumbersRefused("Only the space's host sees its numbers.")


def speakers_of(*, space: Space) -> list[User]:
    """Everyone who was on the space's stage at some point, in the order they joined it."""
    return [
        p.user
        for p in Participant.objects.filter(space=space, was_on_stage=True).select_related("user").order_by("joined_at")
    ]
