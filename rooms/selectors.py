"""Reads of spaces shared by pages, the API and the consumers."""

from dataclasses import dataclass

from django.db.models import Case, Count, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When

from accounts.models import Block, Follow, User
from rooms.errors import EntryRefused, NumbersRefused, SpaceNotFound
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
from rooms.passes import holds_pass
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


def _admitted_without_ticket(*, user: User, space: Space) -> bool:
    """Co-hosts and invited speakers enter a ticketed space without a ticket (paid holders pass
    `rooms.passes.holds_pass`, the ticket rule)."""
    return Participant.objects.filter(
        Q(role__in=STAGE_ROLES) | Q(invited_at__isnull=False), space=space, user=user
    ).exists()


def replay_decision(*, user: User, space: Space) -> Entry:
    """May this user hear a space's replay and its clips? Nobody the host blocked or removed; for a
    ticketed space, its host, ticket holders and those it let in without one."""
    if user.is_authenticated and (user.pk == space.host_id or user.is_staff):
        return Entry(True, "host", "Your space." if user.pk == space.host_id else "Staff.")
    if user.is_authenticated and (
        SpaceBlock.objects.filter(space=space, user=user).exists()
        or Block.objects.filter(blocker_id=space.host_id, blocked=user).exists()
    ):
        return Entry(False, "blocked", "You can't hear this space's replay.")
    if space.is_ticketed:
        if not user.is_authenticated:
            return Entry(False, "login_required", "Log in with a ticket to hear this replay.")
        if not _admitted_without_ticket(user=user, space=space) and not holds_pass(user=user, space=space):
            return Entry(False, "ticket_required", "This space's replay is for its ticket holders.")
    return Entry(True, "allowed", "Enjoy the replay.")


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


def live_spaces(*, viewer: User, limit: int = 20) -> list[Space]:
    """Live spaces for the home page's live bar: hosts the viewer follows first, then the busiest."""
    spaces = Space.objects.filter(state=SpaceState.LIVE).select_related("host")
    spaces = _visible_to(viewer, spaces).annotate(
        listeners=Count("connections__participant", distinct=True)
        + Count("connections", filter=Q(connections__participant__isnull=True), distinct=True)
    )
    if viewer.is_authenticated:
        spaces = spaces.annotate(
            followed=Exists(Follow.objects.filter(follower=viewer, followee=OuterRef("host_id")))
        ).order_by("-followed", "-listeners", "-started_at")
    else:
        spaces = spaces.order_by("-listeners", "-started_at")
    return list(spaces[:limit])


def upcoming_spaces(*, viewer: User, limit: int = 20) -> list[Space]:
    """Scheduled spaces, soonest first (the reminder buttons read the viewer's reminders once: `scheduling` tags)."""
    spaces = Space.objects.filter(state=SpaceState.SCHEDULED).select_related("host").order_by("scheduled_for")
    return list(_visible_to(viewer, spaces)[:limit])


def may_read_transcript(*, user: User, space: Space) -> bool:
    """A free space's transcript is as public as its page; a ticketed one's is for its host, the people
    who were in it, and ticket holders."""
    if not space.is_ticketed:
        return True
    if not user.is_authenticated:
        return False
    return (
        user.pk == space.host_id
        or Participant.objects.filter(space=space, user=user).exists()
        or holds_pass(user=user, space=space)
    )


def transcript_lines(*, space: Space) -> QuerySet[CaptionLine]:
    return CaptionLine.objects.filter(space=space).select_related("speaker").order_by("start_ms", "pk")


def spaces_search(*, viewer: User, query: str = "", state: str = "", host: str = "") -> QuerySet[Space]:
    """Spaces by title or topic, state and host; live first, then upcoming, then the rest."""
    # Words from the address bar: a NUL can't be in any text stored (PostgreSQL refuses it in a query).
    query, state, host = (value.replace("\x00", "") for value in (query, state, host))
    spaces = Space.objects.select_related("host")
    if query:
        said = CaptionLine.objects.filter(space=OuterRef("pk"), text__icontains=query)
        spaces = spaces.filter(Q(title__icontains=query) | Q(topics__icontains=query.lower()) | Exists(said))
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
    return _visible_to(viewer, spaces).order_by(state_order, "-started_at", "scheduled_for", "-pk")


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
