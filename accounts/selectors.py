"""Reads of people and their graph, shared by pages, the API and consumers."""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts.errors import AccountBanned, InvalidCredentials, UserNotFound
from accounts.models import Block, Follow, User, counted_accounts
from spaces_site.keyset import keyset_page
from spaces_site.soft_cache import cached


def user_get(*, username: str) -> User:
    """The active user with this username (any case), or `UserNotFound` (404)."""
    user = User.objects.filter(username__iexact=username).first()
    if user is None:
        raise UserNotFound(f"No user named @{username}.")
    if user.is_banned:
        raise UserNotFound(f"@{user.username} is suspended.")
    return user


@dataclass(frozen=True)
class Relationship:
    """How the viewer stands with another person."""

    is_self: bool
    following: bool
    followed_by: bool
    blocking: bool
    blocked_by: bool


def relationship(*, viewer: User, other: User) -> Relationship:
    if not viewer.is_authenticated:
        return Relationship(False, False, False, False, False)
    if viewer.pk == other.pk:
        return Relationship(True, False, False, False, False)
    follows = set(
        Follow.objects.filter(follower__in=(viewer, other), followee__in=(viewer, other)).values_list(
            "follower_id", "followee_id"
        )
    )
    blocks = set(
        Block.objects.filter(blocker__in=(viewer, other), blocked__in=(viewer, other)).values_list(
            "blocker_id", "blocked_id"
        )
    )
    return Relationship(
        is_self=False,
        following=(viewer.pk, other.pk) in follows,
        followed_by=(other.pk, viewer.pk) in follows,
        blocking=(viewer.pk, other.pk) in blocks,
        blocked_by=(other.pk, viewer.pk) in blocks,
    )


@dataclass(frozen=True)
class PeoplePage:
    """One page of a follower or following list, newest first, and where the next (older) one starts."""

    people: list[User]
    older: str  # the cursor of the next page ("" on the last)
    is_first: bool


def _people_page(follows: QuerySet[Follow], *, person: str, before: str, size: int) -> PeoplePage:
    """A keyset page of `follows` by the follow's date and id (`spaces_site.keyset`): it reads the
    page's rows and one more through the list's index, and never counts the whole list. A cursor that
    isn't one is `InvalidCursor` (400)."""
    page = keyset_page(follows.select_related(person), before=before, size=size)
    return PeoplePage(people=[getattr(row, person) for row in page.rows], older=page.older, is_first=page.is_first)


def followers_page(*, user: User, before: str = "", size: int = 30) -> PeoplePage:
    """A page of the people who follow `user` (those who count: not banned or deactivated), newest first."""
    follows = Follow.objects.filter(counted_accounts("follower__"), followee=user)
    return _people_page(follows, person="follower", before=before, size=size)


def following_page(*, user: User, before: str = "", size: int = 30) -> PeoplePage:
    """A page of the people `user` follows (those who count: not banned or deactivated), newest first."""
    follows = Follow.objects.filter(counted_accounts("followee__"), follower=user)
    return _people_page(follows, person="followee", before=before, size=size)


@dataclass(frozen=True)
class CountedFollowers:
    """A person's followers split by whether they count toward hosting thresholds (PRODUCT.md §1)."""

    counted: int  # active, and following for SPACES_FOLLOWER_MIN_AGE_H from an account at least that old
    too_new: int  # active, but the account or the follow is younger than that
    inactive: int  # banned or deactivated: stop counting the moment it happens


def counted_followers(*, user: User) -> CountedFollowers:
    """The followers of `user` that count toward the hosting and ticketed-hosting thresholds, and why
    the others don't, in one query. `User.followers_count` stays the number shown on profiles: every
    follower who counts here by standing (`models.counted_accounts`, active and not banned), however
    new (`services`).

    Only the follow's age is needed in practice (an account is older than its follows); the account's
    age is checked too so that a follow row dated before its account (an import) can't count early.
    Like the rule before it, this trusts `user.followers_count` as loaded: pass a fresh user.
    """
    if user.followers_count == 0:
        # Kept exact with the follow rows (`services.follow_create`), and an error in it could only
        # refuse: no query for the many people who have no followers yet (every home page asks). Banned
        # and deactivated followers are not in it: someone followed only by them isn't told of them.
        return CountedFollowers(counted=0, too_new=0, inactive=0)
    cutoff = timezone.now() - timedelta(hours=settings.SPACES_FOLLOWER_MIN_AGE_H)
    active = counted_accounts("follower__")
    old_enough = Q(created_at__lte=cutoff, follower__date_joined__lte=cutoff)
    tally = Follow.objects.filter(followee_id=user.pk).aggregate(
        counted=Count("pk", filter=active & old_enough),
        too_new=Count("pk", filter=active & ~old_enough),
        inactive=Count("pk", filter=~active),
    )
    return CountedFollowers(**tally)


def following_ids(*, user: User, among: list[int]) -> set[int]:
    """Which of `among` the user follows: one query for a whole list's follow buttons."""
    if not user.is_authenticated or not among:
        return set()
    return set(Follow.objects.filter(follower=user, followee_id__in=among).values_list("followee_id", flat=True))


# Popular people kept for everyone: more than a page suggests, so a viewer's follows and blocks
# seldom empty the list.
POPULAR_KEPT = 30


def popular_people() -> list[User]:
    """The `POPULAR_KEPT` people most followed (as `people_to_follow` counts them), read in the order
    of the `user_popular` index once a period for everyone (`SPACES_FEEDS_CACHE_S`)."""
    return cached(
        f"people.popular.{POPULAR_KEPT}", settings.SPACES_FEEDS_CACHE_S, lambda: list(_popular()[:POPULAR_KEPT])
    )


def people_to_follow(
    *, viewer: User, limit: int = 5, popular: list[User] | None = None, left_out: Collection[int] | None = None
) -> list[User]:
    """Popular people the viewer doesn't follow yet and has no block with: people others follow, so
    not the staff's accounts, banned ones (inactive), or accounts nobody follows (the demo's filler
    listeners). They come from `popular_people`, the same for everyone; a signed-in viewer's own part
    is which of them they follow or have a block with: one query, or none when the caller read it with
    the rest of the viewer's graph (`popular` and `left_out`, as `rooms.selectors.feed_ties` does)."""
    if limit > POPULAR_KEPT:
        return _people_to_follow(viewer=viewer, limit=limit)  # more than the cache keeps
    popular = popular_people() if popular is None else popular
    if not viewer.is_authenticated:
        return popular[:limit]
    candidates = [person for person in popular if person.pk != viewer.pk]
    if left_out is None:
        left_out = _ties_among(viewer=viewer, ids=[person.pk for person in candidates])
    kept = [person for person in candidates if person.pk not in left_out]
    if len(kept) < limit and len(popular) == POPULAR_KEPT:
        # The viewer follows or blocks much of what the cache keeps: read past it (one query more).
        return _people_to_follow(viewer=viewer, limit=limit)
    return kept[:limit]


def _people_to_follow(*, viewer: User, limit: int) -> list[User]:
    people = _popular()
    if viewer.is_authenticated:
        follows = Follow.objects.filter(follower=viewer, followee=OuterRef("pk"))
        blocks = Block.objects.filter(
            Q(blocker=viewer, blocked=OuterRef("pk")) | Q(blocker=OuterRef("pk"), blocked=viewer)
        )
        people = people.exclude(pk=viewer.pk).filter(~Exists(follows), ~Exists(blocks))
    return list(people[:limit])


def _popular() -> QuerySet[User]:
    return (
        User.objects.filter(is_active=True, is_staff=False, followers_count__gt=0)
        .only("username", "display_name", "avatar", "followers_count")
        .order_by("-followers_count", "pk")
    )


def _ties_among(*, viewer: User, ids: list[int]) -> set[int]:
    """Which of `ids` the viewer follows, has blocked or is blocked by, in one query."""
    if not ids:
        return set()
    follows = Follow.objects.filter(follower=viewer, followee_id__in=ids).values_list("followee_id")
    blocked = Block.objects.filter(blocker=viewer, blocked_id__in=ids).values_list("blocked_id")
    blocking = Block.objects.filter(blocked=viewer, blocker_id__in=ids).values_list("blocker_id")
    return {pk for (pk,) in follows.union(blocked, blocking, all=True)}


def credentials_verify(*, request, username: str, password: str) -> User:
    """The user these credentials belong to, or an error that says why not.

    A banned user who gives the right password is told they are banned; anyone
    else with wrong credentials gets the same message, whether the name exists or not.
    """
    user = authenticate(request, username=username, password=password)
    if user is not None:
        return user
    candidate = User.objects.filter(username__iexact=username, banned_at__isnull=False).first()
    if candidate is not None and candidate.check_password(password):
        raise AccountBanned(
            "This account has been banned." + (f" Reason: {candidate.ban_reason}" if candidate.ban_reason else "")
        )
    raise InvalidCredentials("That username and password don't match an account.")


def blocked_by(*, user: User) -> QuerySet[User]:
    """People `user` has blocked, newest first."""
    return User.objects.filter(blocks_received__blocker=user).order_by("-blocks_received__created_at", "-pk")
