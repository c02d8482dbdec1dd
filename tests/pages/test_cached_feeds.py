"""The home page's shared feeds come from the cache (`rooms.feeds`): a start or an end shows within
2 s, and what is the viewer's own (hosts they follow first, reminders they set) reaches nobody else."""

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import selectors as accounts_selectors
from accounts import services as accounts_services
from accounts.models import Follow, User
from rooms import services
from scheduling.services import reminder_set
from tests.factories import UserFactory
from tests.pages.world import client_of
from tests.rooms.scene import make_host, make_space

WITHIN_S = 2.0


def live_bar(html: str) -> list[int]:
    bar = html.split('class="livebar"', 1)[1].split("</section>", 1)[0]
    return [int(pk) for pk in re.findall(r'data-live-space="(\d+)"', bar)]


def seconds_until(condition) -> float | None:
    """How long until `condition()` holds, polling for at most WITHIN_S (None: it never did)."""
    started = time.monotonic()
    while time.monotonic() - started < WITHIN_S:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    return None


@pytest.mark.django_db(transaction=True)
def test_the_cached_live_bar_shows_a_start_and_drops_an_end_within_2_s():
    # given: the bar is cached for everyone, anonymous and signed in
    busy = make_space(title="Already live")
    services.connection_open(space=busy, participant=None, channel_name="v1")
    viewer, anonymous = client_of(UserFactory()), client_of(None)
    assert live_bar(viewer.get("/").content.decode()) == [busy.pk]
    assert live_bar(anonymous.get("/").content.decode()) == [busy.pk]

    # when: a space starts
    space = make_space(title="Just started")

    # then
    for client in (viewer, anonymous):
        assert seconds_until(lambda c=client: space.pk in live_bar(c.get("/").content.decode())) is not None

    # when: it ends
    services.space_end(actor=space.host, space_id=space.pk)

    # then
    for client in (viewer, anonymous):
        assert seconds_until(lambda c=client: live_bar(c.get("/").content.decode()) == [busy.pk]) is not None


@pytest.mark.django_db
def test_listener_counts_catch_up_within_the_cache_period(settings):
    # given: a bar cached with nobody listening
    settings.SPACES_FEEDS_CACHE_S = 1
    space = make_space(title="Quiet room")
    anonymous = client_of(None)
    assert "0 listening" in anonymous.get("/").content.decode()

    # when: someone comes in (no start or end: nothing drops the cache)
    services.connection_open(space=space, participant=None, channel_name="v1")

    # then
    assert seconds_until(lambda: "1 listening" in anonymous.get("/").content.decode()) is not None


@pytest.mark.django_db
def test_a_followed_host_first_is_shown_to_the_follower_only():
    # given: a busy space, and a quiet one whose host only the fan follows
    busy = make_space(title="Busy room")
    for n in range(3):
        services.connection_open(space=busy, participant=None, channel_name=f"v{n}")
    quiet_host = make_host()
    quiet = make_space(host=quiet_host, title="Quiet room")
    fan, other = UserFactory(), UserFactory()
    accounts_services.follow_create(follower=fan, followee=quiet_host)

    # when: the fan's page is made first, then everyone else's from the same cache
    fans_bar = live_bar(client_of(fan).get("/").content.decode())
    others_bar = live_bar(client_of(other).get("/").content.decode())
    anonymous_bar = live_bar(client_of(None).get("/").content.decode())

    # then
    assert fans_bar == [quiet.pk, busy.pk]
    assert others_bar == anonymous_bar == [busy.pk, quiet.pk]


@pytest.mark.django_db
def test_a_reminder_set_is_shown_to_the_one_who_set_it_only():
    # given
    space = make_space(title="Tomorrow's talk", scheduled_for=timezone.now() + timedelta(days=1))
    holder, other = UserFactory(), UserFactory()
    reminder_set(user=holder, space_id=space.pk)

    # when: the holder's page first, then the others' from the same cache
    holders = client_of(holder).get("/").content.decode()
    others = client_of(other).get("/").content.decode()
    anonymous = client_of(None).get("/").content.decode()

    # then
    assert "Tomorrow&#x27;s talk" in holders and "Reminder set" in holders
    assert "Tomorrow&#x27;s talk" in others and "Reminder set" not in others and "Remind me" in others
    assert "Tomorrow&#x27;s talk" in anonymous and "Reminder set" not in anonymous
    assert "Log in for a reminder" in anonymous


def suggested(html: str) -> list[str]:
    people = (
        html.split("<h2>People to follow</h2>", 1)[1].split("</section>", 1)[0] if "People to follow" in html else ""
    )
    return re.findall(r'<span class="muted">@(\w+) ·', people)


@pytest.mark.django_db
def test_people_to_follow_come_from_one_list_for_everyone_less_the_viewers_own_ties():
    # given: six popular people; the fan follows one, blocked another, and a third blocked the fan
    popular = [UserFactory(username=f"popular{n}", followers=10 - n) for n in range(6)]
    fan, other = UserFactory(username="fan"), UserFactory(username="other")
    accounts_services.follow_create(follower=fan, followee=popular[0])
    accounts_services.user_block(blocker=fan, blocked=popular[1])
    accounts_services.user_block(blocker=popular[2], blocked=fan)

    # when: the fan's page is made first, then the others' from the same cached list
    fans = suggested(client_of(fan).get("/").content.decode())
    others = suggested(client_of(other).get("/").content.decode())
    anonymous = suggested(client_of(None).get("/").content.decode())

    # then: the most followed first, each viewer's own ties left out of their page only
    assert fans == ["popular3", "popular4", "popular5"]
    assert others == ["popular0", "popular1", "popular2", "popular3", "popular4", "popular5"]
    assert anonymous == others


@pytest.mark.django_db
def test_someone_followed_leaves_the_suggestions_at_once_though_the_list_is_kept():
    # given: the suggestions are cached
    UserFactory(username="popular", followers=3)
    UserFactory(username="known", followers=2)
    fan = UserFactory(username="fan")
    browser = client_of(fan)
    assert suggested(browser.get("/").content.decode()) == ["popular", "known"]

    # when
    browser.post("/u/popular/follow/")

    # then: the next page leaves them out (the viewer's ties are never cached)
    assert suggested(browser.get("/").content.decode()) == ["known"]


@pytest.mark.django_db
def test_a_viewer_following_most_of_the_kept_list_is_still_suggested_others():
    # given: more popular people than the cache keeps, nearly all of the kept ones followed by the fan
    kept = accounts_selectors.POPULAR_KEPT
    people = User.objects.bulk_create(
        User(username=f"p{n:02d}", email=f"p{n}@example.com", followers_count=100 - n) for n in range(kept + 8)
    )
    fan = UserFactory(username="fan")
    Follow.objects.bulk_create(Follow(follower=fan, followee=person) for person in people[: kept - 2])

    # when
    shown = suggested(client_of(fan).get("/").content.decode())

    # then: the two kept ones it doesn't follow, then the next most followed, read past the cache
    assert shown == [f"p{n:02d}" for n in range(kept - 2, kept + 4)]
