import importlib
import re

import pytest
from django.core.management import get_commands

from accounts import services
from accounts.errors import FollowBlocked, SelfFollow
from accounts.models import AuditEntry, Follow, User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def counts(*users: User) -> list[tuple[int, int]]:
    return [tuple(User.objects.values_list("followers_count", "following_count").get(pk=u.pk)) for u in users]


def test_follow_is_idempotent_and_counts_once():
    alice, bob = UserFactory(), UserFactory()

    first = services.follow_create(follower=alice, followee=bob)
    second = services.follow_create(follower=alice, followee=bob)

    assert (first, second) == (True, False)
    assert Follow.objects.filter(follower=alice, followee=bob).count() == 1
    assert counts(alice, bob) == [(0, 1), (1, 0)]


def test_unfollow_is_idempotent():
    alice, bob = UserFactory(), UserFactory()
    services.follow_create(follower=alice, followee=bob)

    first = services.follow_delete(follower=alice, followee=bob)
    second = services.follow_delete(follower=alice, followee=bob)

    assert (first, second) == (True, False)
    assert not Follow.objects.exists()
    assert counts(alice, bob) == [(0, 0), (0, 0)]


def test_self_follow_is_refused():
    alice = UserFactory()

    with pytest.raises(SelfFollow, match=r"You can't follow yourself\."):
        services.follow_create(follower=alice, followee=alice)

    assert not Follow.objects.exists()
    assert counts(alice) == [(0, 0)]


def test_block_ends_follows_both_ways_and_stops_new_ones():
    alice, bob = UserFactory(), UserFactory()
    services.follow_create(follower=alice, followee=bob)
    services.follow_create(follower=bob, followee=alice)

    services.user_block(blocker=alice, blocked=bob)

    assert not Follow.objects.exists()
    assert counts(alice, bob) == [(0, 0), (0, 0)]
    with pytest.raises(FollowBlocked, match="can't follow"):
        services.follow_create(follower=bob, followee=alice)
    with pytest.raises(FollowBlocked, match="Unblock them to follow"):
        services.follow_create(follower=alice, followee=bob)
    assert AuditEntry.objects.filter(action="accounts.user.blocked", subject_id=str(bob.pk)).count() == 1


def test_unblock_allows_following_again():
    alice, bob = UserFactory(), UserFactory()
    services.user_block(blocker=alice, blocked=bob)

    services.user_unblock(blocker=alice, blocked=bob)

    assert services.follow_create(follower=bob, followee=alice) is True


def test_recount_rebuilds_counts_from_rows():
    alice, bob, carol = UserFactory(), UserFactory(), UserFactory()
    services.follow_create(follower=alice, followee=bob)
    services.follow_create(follower=carol, followee=bob)
    User.objects.update(followers_count=99, following_count=99)

    services.follow_counts_recount()

    assert counts(alice, bob, carol) == [(0, 1), (2, 0), (0, 1)]


def test_the_user_docstring_names_only_things_that_exist():
    # given: what the User model's docstring names in backquotes
    named = re.findall(r"`([\w.]+)`", User.__doc__)
    fields = {field.name for field in User._meta.get_fields()}

    # when: each is a field, a management command, or a function of its module or at its dotted path
    def exists(name: str) -> bool:
        module, _, attribute = name.rpartition(".")
        if callable(getattr(importlib.import_module(module or User.__module__), attribute, None)):
            return True
        return name in fields or name in get_commands()

    # then: what rebuilds the counts is named, and is real
    assert "accounts.services.follow_counts_recount" in named
    assert [name for name in named if not exists(name)] == []
