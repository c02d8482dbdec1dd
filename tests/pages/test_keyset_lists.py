"""The API's follower lists and the notifications (page and API) go back a page at a time through
their index, with a `next` link ("Older" on the page) and no count of the whole list; a cursor that
isn't one is a clear 400 on the API."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Follow, User
from scheduling.models import Kind, Notification
from tests.factories import UserFactory
from tests.pages.world import client_of

pytestmark = pytest.mark.django_db

API_PAGE = 50  # REST_FRAMEWORK["PAGE_SIZE"]


def api_as(user: User | None) -> APIClient:
    api = APIClient()
    if user is not None:
        api.force_authenticate(user)
    return api


def walk(api: APIClient, url: str) -> tuple[list[list[dict]], list[str]]:
    """Every page from `url` on, following `next`; and the SQL each page ran."""
    pages, queries = [], []
    while url:
        with CaptureQueriesContext(connection) as captured:
            response = api.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"next", "results"}
        pages.append(body["results"])
        queries += [query["sql"] for query in captured.captured_queries]
        url = body["next"]
    return pages, queries


def test_the_followers_api_goes_back_page_by_page_with_no_count():
    # given: 120 followers, one of them banned, some followed at the same moment (an import)
    star = UserFactory(username="star")
    fans = User.objects.bulk_create(User(username=f"fan{n:03d}", email=f"fan{n}@example.com") for n in range(120))
    Follow.objects.bulk_create(Follow(follower=fan, followee=star) for fan in fans)
    base = timezone.now() - timedelta(days=1)
    for fan in fans:
        Follow.objects.filter(follower=fan).update(created_at=base + timedelta(seconds=fan.pk // 3))
    User.objects.filter(username="fan007").update(is_active=False, banned_at=base)

    # when
    pages, queries = walk(api_as(None), "/api/users/star/followers/")

    # then: newest first (by date, then id), each once, in pages of 50, the banned one left out
    expected = [
        fan.username for fan in sorted(fans, key=lambda f: (f.pk // 3, f.pk), reverse=True) if fan.username != "fan007"
    ]
    assert [person["username"] for page in pages for person in page] == expected
    assert [len(page) for page in pages] == [50, 50, 19]
    assert not any("COUNT(" in sql.upper() for sql in queries)


def test_the_following_api_pages_too():
    # given: someone following 60 people
    fan = UserFactory(username="fan")
    idols = User.objects.bulk_create(User(username=f"idol{n:02d}", email=f"idol{n}@example.com") for n in range(60))
    Follow.objects.bulk_create(Follow(follower=fan, followee=idol) for idol in idols)

    # when
    pages, _ = walk(api_as(None), "/api/users/fan/following/")

    # then
    assert [person["username"] for page in pages for person in page] == [f"idol{n:02d}" for n in range(59, -1, -1)]
    assert [len(page) for page in pages] == [50, 10]


@pytest.mark.parametrize(
    "cursor",
    ["yesterday", "1.2.3", "12", "1.-5", f"1.{2**63}", f"{10**20}.1", "1.5x", ""],
)
def test_a_cursor_that_is_not_one_is_a_clear_400(cursor):
    # given
    star = UserFactory(username="star")
    Follow.objects.create(follower=UserFactory(), followee=star)
    me = UserFactory()

    # when
    followers = api_as(None).get("/api/users/star/followers/", {"before": cursor})
    notifications = api_as(me).get("/api/notifications/", {"before": cursor})

    # then ("" is no cursor: the first page)
    for response in (followers, notifications):
        if cursor == "":
            assert response.status_code == 200
        else:
            assert response.status_code == 400
            assert response.json() == {
                "code": "invalid_cursor",
                "detail": "That isn't a place in this list: start from its first page.",
            }


def test_the_notifications_api_pages_and_keeps_the_unread_filter():
    # given: 70 notifications, the odd ones read
    viewer, other = UserFactory(), UserFactory()
    now = timezone.now()
    Notification.objects.bulk_create(
        Notification(
            user=viewer,
            kind=Kind.LIVE,
            title=f"Note {n}",
            url="/",
            created_at=now - timedelta(minutes=n),
            read_at=now if n % 2 else None,
        )
        for n in range(70)
    )
    Notification.objects.create(user=other, kind=Kind.LIVE, title="Not yours", url="/")

    # when
    pages, queries = walk(api_as(viewer), "/api/notifications/")
    unread, _ = walk(api_as(viewer), "/api/notifications/?unread=true")

    # then
    assert [n["title"] for page in pages for n in page] == [f"Note {n}" for n in range(70)]
    assert [len(page) for page in pages] == [50, 20]
    assert [n["title"] for page in unread for n in page] == [f"Note {n}" for n in range(0, 70, 2)]
    assert not any("COUNT(" in sql.upper() for sql in queries)


def older_link(html: str) -> str | None:
    found = re.search(r'href="\?before=([\d.]+)">Older</a>', html)
    return found and found.group(1)


def titles(html: str) -> list[str]:
    return re.findall(r"<strong>(Note \d+)</strong>", html)


def test_the_notifications_page_goes_back_with_older_links_and_no_count():
    # given: 65 notifications
    viewer = UserFactory()
    now = timezone.now()
    Notification.objects.bulk_create(
        Notification(user=viewer, kind=Kind.LIVE, title=f"Note {n}", url="/", created_at=now - timedelta(minutes=n))
        for n in range(65)
    )
    browser = client_of(viewer)

    # when
    with CaptureQueriesContext(connection) as queries:
        first = browser.get("/notifications/").content.decode()
    first_sql = [query["sql"] for query in queries.captured_queries]  # read before the next request resets them
    second = browser.get(f"/notifications/?before={older_link(first)}").content.decode()
    third = browser.get(f"/notifications/?before={older_link(second)}").content.decode()
    mangled = browser.get("/notifications/?before=yesterday")

    # then
    assert titles(first) + titles(second) + titles(third) == [f"Note {n}" for n in range(65)]
    assert [len(titles(page)) for page in (first, second, third)] == [30, 30, 5]
    assert older_link(third) is None and '<a href="?">Newest</a>' in third
    assert mangled.status_code == 200 and titles(mangled.content.decode()) == titles(first)
    # the bell's unread count is all that counts: over the unread ones, by their partial index
    counts = [sql for sql in first_sql if "COUNT(" in sql.upper()]
    assert first_sql and counts and all('"read_at" IS NULL' in sql for sql in counts)
