"""Follow counts under real concurrency: threads with their own PostgreSQL connections."""

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
