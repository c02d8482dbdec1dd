"""The followers page goes back a page at a time ("Older") without counting every follower."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import services as accounts_services
from accounts.models import Follow, User
from tests.factories import UserFactory
from tests.pages.world import client_of

pytestmark = pytest.mark.django_db


def names(html: str) -> list[str]:
    return re.findall(r'<span class="muted">@(\w+) ·', html)


def older_link(html: str) -> str | None:
    found = re.search(r'href="\?before=([\d.]+)">Older</a>', html)
    return found and found.group(1)


def test_followers_page_by_page_newest_first_with_no_count():
    # given: 65 followers, one of them banned
    star = UserFactory(username="star")
    fans = [UserFactory(username=f"fan{n:02d}") for n in range(65)]
    for fan in fans:
        accounts_services.follow_create(follower=fan, followee=star)
    User.objects.filter(username="fan10").update(is_active=False, banned_at=fans[0].date_joined)
    anonymous = client_of(None)

    # when
    with CaptureQueriesContext(connection) as queries:
        first = anonymous.get("/u/star/followers/").content.decode()
    first_sql = [query["sql"] for query in queries.captured_queries]  # read before the next request resets them
    second = anonymous.get(f"/u/star/followers/?before={older_link(first)}").content.decode()
    third = anonymous.get(f"/u/star/followers/?before={older_link(second)}").content.decode()
    nonsense = anonymous.get("/u/star/followers/?before=yesterday").content.decode()

    # then
    newest_first = [f"fan{n:02d}" for n in range(64, -1, -1) if n != 10]
    assert names(first) + names(second) + names(third) == newest_first
    assert (len(names(first)), len(names(second)), len(names(third))) == (30, 30, 4)
    assert older_link(third) is None and "Newest</a>" in third
    assert names(nonsense) == names(first)
    assert first_sql and not any("COUNT(" in sql.upper() for sql in first_sql)


def test_followers_of_the_same_moment_are_neither_lost_nor_repeated():
    # given: 40 follows dated alike (an import), ordered by id among themselves
    star = UserFactory(username="star")
    for n in range(40):
        accounts_services.follow_create(follower=UserFactory(username=f"fan{n:02d}"), followee=star)
    Follow.objects.filter(followee=star).update(created_at=star.date_joined)
    anonymous = client_of(None)

    # when
    first = anonymous.get("/u/star/followers/").content.decode()
    second = anonymous.get(f"/u/star/followers/?before={older_link(first)}").content.decode()

    # then
    assert names(first) + names(second) == [f"fan{n:02d}" for n in range(39, -1, -1)]
