"""Only real followers count toward hosting and ticketed hosting (PRODUCT.md §1): active, not banned,
following for at least SPACES_FOLLOWER_MIN_AGE_H hours from an account at least that old. Sign-ups
are limited per address and follows per account, so a threshold can't be bought with throwaways."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.eligibility import ensure_may_host, hosting_eligibility
from accounts.errors import HostingNotEligible
from accounts.models import Follow, User
from accounts.selectors import counted_followers
from rooms.models import Space
from tests.factories import UserFactory
from ticketing.eligibility import ticketed_hosting_eligibility

pytestmark = pytest.mark.django_db

MIN_AGE_H = 72  # SPACES_FOLLOWER_MIN_AGE_H's default
ATTACKER = "203.0.113.7"


def _rate(scope: str) -> int:
    """Requests allowed per period by a DRF throttle scope ("10/min" gives 10)."""
    return int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope].split("/")[0])


def _signup(api, n: int, address: str = ATTACKER):
    return api.post(
        "/api/auth/signup/",
        {"username": f"throwaway{n}", "email": f"throwaway{n}@example.com", "password": "a-long-passphrase"},
        REMOTE_ADDR=address,
    )


def _old_account(**fields) -> User:
    return UserFactory(date_joined=timezone.now() - timedelta(days=30), **fields)


def _followed_hours_ago(followee: User, hours: float) -> None:
    Follow.objects.filter(followee=followee).update(created_at=timezone.now() - timedelta(hours=hours))


def test_the_minimum_follower_age_defaults_to_72_hours():
    assert settings.SPACES_FOLLOWER_MIN_AGE_H == MIN_AGE_H


def test_30_signups_from_one_address_in_a_few_seconds_let_only_the_auth_rate_through(api):
    # when
    answers = [_signup(api, n) for n in range(30)]

    # then
    allowed = _rate("auth")
    assert [a.status_code for a in answers] == [201] * allowed + [429] * (30 - allowed)
    assert answers[-1].json()["code"] == "throttled"
    assert User.objects.filter(username__startswith="throwaway").count() == allowed


def test_follows_past_the_per_account_rate_are_refused_429_and_unfollowing_still_works(signed_in, user):
    # given
    allowed = _rate("follow")
    people = User.objects.bulk_create(
        User(username=f"person{n}", email=f"person{n}@example.com") for n in range(allowed + 1)
    )

    # when
    answers = [signed_in.post(f"/api/users/{person.username}/follow/") for person in people]
    unfollow = signed_in.delete(f"/api/users/{people[0].username}/follow/")

    # then
    assert [a.status_code for a in answers] == [200] * allowed + [429]
    assert answers[-1].json()["code"] == "throttled"
    assert "Retry-After" in answers[-1]
    assert not Follow.objects.filter(follower=user, followee=people[-1]).exists()
    assert unfollow.status_code == 200 and unfollow.json()["changed"] is True


def test_the_follow_form_counts_against_the_same_per_account_limit(signed_in, user):
    # given: the account spent its follows through the API
    allowed = _rate("follow")
    people = User.objects.bulk_create(User(username=f"person{n}", email=f"p{n}@example.com") for n in range(allowed))
    for person in people:
        assert signed_in.post(f"/api/users/{person.username}/follow/").status_code == 200
    bob = UserFactory(username="bob")
    browser = Client()
    browser.force_login(user)

    # when
    page = browser.post("/u/bob/follow/", {"next": "/u/bob/"}, follow=True)

    # then
    assert "following people too fast. Try again in" in page.content.decode()
    assert not Follow.objects.filter(follower=user, followee=bob).exists()


def test_counted_followers_leave_out_banned_deactivated_new_accounts_and_fresh_follows():
    # given: 3 real followers, and 4 that aren't
    star = UserFactory(followers=3)
    staff = UserFactory(is_staff=True)
    banned, deactivated, old_but_fresh_follow = _old_account(), _old_account(), _old_account()
    new_account = UserFactory()
    for fan in (banned, deactivated, new_account):
        services.follow_create(follower=fan, followee=star)
    Follow.objects.filter(followee=star, follower__in=[banned, deactivated, new_account]).update(
        created_at=timezone.now() - timedelta(days=10)
    )
    services.follow_create(follower=old_but_fresh_follow, followee=star)
    services.user_ban(actor=staff, user=banned)
    services.user_deactivate(actor=staff, user=deactivated)

    # when
    tally = counted_followers(user=star)

    # then
    assert (tally.counted, tally.too_new, tally.inactive) == (3, 2, 2)
    star.refresh_from_db()
    # the displayed number leaves out whom eligibility leaves out by standing (banned, deactivated), and
    # keeps the followers too new to count yet
    assert star.followers_count == 5 == tally.counted + tally.too_new


def test_a_follow_counts_once_it_is_as_old_as_the_setting(settings):
    # given
    star = UserFactory()
    services.follow_create(follower=_old_account(), followee=star)
    star.refresh_from_db()

    # when / then
    _followed_hours_ago(star, MIN_AGE_H - 0.1)
    assert counted_followers(user=star).counted == 0
    _followed_hours_ago(star, MIN_AGE_H + 0.1)
    assert counted_followers(user=star).counted == 1
    settings.SPACES_FOLLOWER_MIN_AGE_H = 100
    assert counted_followers(user=star).counted == 0


def test_counted_followers_take_one_query(django_assert_num_queries):
    star = UserFactory(followers=5)

    with django_assert_num_queries(1):
        counted_followers(user=star)


def test_a_banned_follower_stops_counting_at_once():
    # given: a host with exactly enough followers
    host = UserFactory(followers=600)
    fan = Follow.objects.filter(followee=host).first().follower
    assert hosting_eligibility(host).eligible is True

    # when
    services.user_ban(actor=UserFactory(is_staff=True), user=fan)

    # then
    eligibility = hosting_eligibility(host)
    assert (eligibility.eligible, eligibility.reason, eligibility.followers_count) == (
        False, "not_enough_followers", 599,
    )  # fmt: skip
    assert eligibility.detail == (
        "Hosting a space needs at least 600 followers or a grant from staff; "
        "you have 599 followers that count, not counting 1 banned or deactivated account."
        " Carrying on a live space handed to you as its co-host needs no followers."
    )
    host.refresh_from_db()
    assert host.followers_count == 599  # and the public count loses them too


def test_599_real_followers_and_30_throwaway_signups_do_not_make_a_host(api):
    # given: 30 fresh accounts, each from an address of its own so the sign-up limit doesn't stop them
    host = UserFactory(followers=599)
    tokens = [_signup(api, n, address=f"198.51.100.{n}").json()["token"] for n in range(30)]
    for token in tokens:
        api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        assert api.post(f"/api/users/{host.username}/follow/").status_code == 200
    api.credentials()
    api.force_authenticate(host)

    # when
    answer = api.post("/api/spaces/", {"title": "Bought my way in"}, format="json")

    # then
    assert answer.status_code == 403
    assert answer.json() == {
        "code": "hosting_not_eligible",
        "detail": "Hosting a space needs at least 600 followers or a grant from staff; you have 599 followers "
        "that count, not counting 30 who joined Spaces or followed you in the last 72 hours."
        " Carrying on a live space handed to you as its co-host needs no followers.",
        "followers_count": 599,
        "required_followers": 600,
    }
    assert not Space.objects.exists()
    host.refresh_from_db()
    assert host.followers_count == 629


def test_the_host_403_says_why_followers_dont_count():
    host = UserFactory(followers=10)
    services.follow_create(follower=UserFactory(), followee=host)
    services.user_ban(actor=UserFactory(is_staff=True), user=Follow.objects.filter(followee=host).first().follower)

    with pytest.raises(HostingNotEligible) as refused:
        ensure_may_host(host)

    assert refused.value.as_dict() == {
        "code": "hosting_not_eligible",
        "detail": "Hosting a space needs at least 600 followers or a grant from staff; you have 9 followers that "
        "count, not counting 1 who joined Spaces or followed you in the last 72 hours "
        "and 1 banned or deactivated account."
        " Carrying on a live space handed to you as its co-host needs no followers.",
        "followers_count": 9,
        "required_followers": 600,
    }


def test_an_eligible_host_is_told_which_followers_count():
    host = UserFactory(followers=600)
    services.follow_create(follower=UserFactory(), followee=host)

    eligibility = hosting_eligibility(host)

    assert (eligibility.eligible, eligibility.followers_count) == (True, 600)
    assert eligibility.detail == (
        "You can host: you have 600 followers that count (at least 600 needed), "
        "not counting 1 who joined Spaces or followed you in the last 72 hours."
    )


def test_ticketed_hosting_counts_only_real_followers():
    # given: 1000 followers, one of them banned, and 5 fresh ones
    seller = UserFactory(followers=1000, hosting_granted=True)
    services.user_ban(actor=UserFactory(is_staff=True), user=Follow.objects.filter(followee=seller).first().follower)
    for _ in range(5):
        services.follow_create(follower=UserFactory(), followee=seller)

    # when
    eligibility = ticketed_hosting_eligibility(seller)

    # then
    assert "not_enough_followers" in eligibility.unmet
    assert eligibility.followers_count == 999
    assert eligibility.detail.startswith(
        "Selling tickets needs at least 1000 followers (you have 999 that count, not counting 5 who joined "
        "Spaces or followed you in the last 72 hours and 1 banned or deactivated account); "
    )
