"""Each page of issue 16's table, and the API's lists of followers and notifications, costs the same
number of queries with 1 and with 50 of what it lists (live spaces, followers, participants,
notifications), on SQLite and on PostgreSQL alike.

Each page is asked twice: first with an empty cache (what the first request after a change costs),
then again (what every other request in the next second costs)."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.pages.world import build_world, client_of

pytestmark = pytest.mark.django_db

# page: (queries with an empty cache, queries with the feeds cached)
EXPECTED = {
    # session, user; the viewer's follows among the live hosts and the people suggested, and blocks
    # either way (one query); the bell; the viewer's reminders. Kept for everyone a second (read with
    # an empty cache): the live rows, the live spaces' entries (rendered), the upcoming spaces, the
    # popular people to suggest
    "home, follows the live hosts": (9, 5),
    # everything an anonymous visitor sees on the home page is the same for all of them: cached whole
    "home, anonymous": (4, 0),
    "followers, signed in": (6, 6),
    "followers, anonymous": (2, 2),
    "search, signed in": (6, 6),
    "search, anonymous": (2, 2),
    "space page, signed in": (9, 9),
    "space page, anonymous": (3, 3),
    "profile, signed in": (9, 9),
    "profile, anonymous": (3, 3),
    "live spaces API": (2, 2),
    # session, user; the page (and one more row, to know of an older page); the unread count, twice (the
    # page's "Mark all read" and the bell), over the unread ones only
    "notifications": (5, 5),
    # the person; the page of follows with their followers (and one more); no count of them all
    "followers API, anonymous": (2, 2),
    "followers API, signed in": (4, 4),
    # session, user; the page (and one more)
    "notifications API": (3, 3),
}


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries)


@pytest.mark.parametrize("n", [1, 50])
def test_each_page_costs_the_same_queries_with_1_and_with_50(n):
    # given
    world = build_world(n)
    viewer, anonymous = client_of(world.viewer), client_of(None)
    pages = {
        "home, follows the live hosts": (viewer, "/"),
        "home, anonymous": (anonymous, "/"),
        "followers, signed in": (viewer, "/u/star/followers/"),
        "followers, anonymous": (anonymous, "/u/star/followers/"),
        "search, signed in": (viewer, "/spaces/?q=later"),
        "search, anonymous": (anonymous, "/spaces/?q=later"),
        "space page, signed in": (viewer, f"/spaces/{world.room.pk}/"),
        "space page, anonymous": (anonymous, f"/spaces/{world.room.pk}/"),
        "profile, signed in": (viewer, "/u/star/"),
        "profile, anonymous": (anonymous, "/u/star/"),
        "live spaces API": (anonymous, "/api/spaces/?state=live"),
        "notifications": (viewer, "/notifications/"),
        "followers API, anonymous": (anonymous, "/api/users/star/followers/"),
        "followers API, signed in": (viewer, "/api/users/star/followers/"),
        "notifications API": (viewer, "/api/notifications/"),
    }

    # when
    counted = {}
    for name, (client, url) in pages.items():
        cache.clear()
        cold = _queries(client, url)
        counted[name] = (cold, _queries(client, url))

    # then
    assert counted == EXPECTED
