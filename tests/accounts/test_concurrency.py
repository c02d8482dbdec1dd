"""Follow counts under real concurrency: threads with their own PostgreSQL connections."""

from itertools import pairwise

import pytest

from accounts import services
from accounts.models import Follow, User
from tests.concurrency import run_together
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_50_concurrent_follows_leave_the_count_exact():
    star = UserFactory(username="star")
    fans = [UserFactory() for _ in range(50)]

    results = run_together([lambda fan=fan: services.follow_create(follower=fan, followee=star) for fan in fans])

    assert results == [True] * 50
    star.refresh_from_db()
    assert star.followers_count == 50 == Follow.objects.filter(followee=star).count()
    assert set(User.objects.filter(pk__in=[f.pk for f in fans]).values_list("following_count", flat=True)) == {1}


def test_concurrent_duplicate_follows_count_once():
    star, fan = UserFactory(), UserFactory()

    results = run_together([lambda: services.follow_create(follower=fan, followee=star) for _ in range(20)])

    assert sorted(results) == [False] * 19 + [True]
    star.refresh_from_db()
    fan.refresh_from_db()
    assert (star.followers_count, fan.following_count) == (1, 1)


def test_mutual_follows_at_once_do_not_deadlock():
    pairs = [(UserFactory(), UserFactory()) for _ in range(10)]
    calls = []
    for a, b in pairs:
        calls.append(lambda a=a, b=b: services.follow_create(follower=a, followee=b))
        calls.append(lambda a=a, b=b: services.follow_create(follower=b, followee=a))

    results = run_together(calls)

    assert results == [True] * 20
    assert set(User.objects.values_list("followers_count", "following_count")) == {(1, 1)}


def test_follows_and_unfollows_racing_leave_counts_matching_rows():
    star = UserFactory()
    fans = [UserFactory() for _ in range(30)]
    for fan in fans[:15]:
        services.follow_create(follower=fan, followee=star)

    calls = [lambda fan=fan: services.follow_delete(follower=fan, followee=star) for fan in fans[:15]]
    calls += [lambda fan=fan: services.follow_create(follower=fan, followee=star) for fan in fans[15:]]
    results = run_together(calls)

    assert results == [True] * 30
    star.refresh_from_db()
    assert star.followers_count == 15 == Follow.objects.filter(followee=star).count()


def test_a_ban_racing_follows_and_unfollows_of_the_banned_and_their_ties_leaves_counts_as_a_recount_has_them():
    # given: bob follows 10 people and 20 follow him
    staff, bob = UserFactory(is_staff=True), UserFactory(username="bob")
    followed = [UserFactory() for _ in range(10)]
    fans = [UserFactory() for _ in range(20)]
    newcomers = [UserFactory() for _ in range(8)]
    for person in followed:
        services.follow_create(follower=bob, followee=person)
    for fan in fans:
        services.follow_create(follower=fan, followee=bob)

    # when: at the same moment bob is banned, some fans leave him, newcomers follow him, and his ties
    # follow each other (each such follow locks two of the users the ban locks)
    calls = [lambda: services.user_ban(actor=staff, user=bob)]
    calls += [lambda fan=fan: services.follow_delete(follower=fan, followee=bob) for fan in fans[:6]]
    calls += [lambda new=new: services.follow_create(follower=new, followee=bob) for new in newcomers]
    calls += [
        lambda a=a, b=b: services.follow_create(follower=a, followee=b)
        for a, b in [*pairwise(fans[10:]), *((b, a) for a, b in pairwise(followed))]
    ]
    results = run_together(calls)

    # then: nothing failed, and every count is what the rows say with bob left out
    assert [r for r in results if isinstance(r, Exception)] == []
    shown = dict(User.objects.values_list("pk", "followers_count"))
    shown_following = dict(User.objects.values_list("pk", "following_count"))
    services.follow_counts_recount()
    assert dict(User.objects.values_list("pk", "followers_count")) == shown
    assert dict(User.objects.values_list("pk", "following_count")) == shown_following
    assert shown[followed[0].pk] == 1  # followed[1] follows it; bob, banned, doesn't count
