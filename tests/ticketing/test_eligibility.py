"""Ticketed hosting: followers, spaces hosted in 30 days and Stripe onboarding, all needed;
the 403 says which fail, with the figures."""

import pytest

from accounts.errors import HostingNotEligible
from tests.factories import UserFactory
from tests.ticketing.scene import hosted_before, make_seller, onboard
from ticketing.eligibility import ensure_may_sell_tickets, ticketed_hosting_eligibility

pytestmark = pytest.mark.django_db


def test_an_onboarded_creator_with_1000_followers_and_3_spaces_in_30_days_may_sell(stripe_standin):
    seller = make_seller(stripe_standin)

    eligibility = ensure_may_sell_tickets(seller)

    assert (eligibility.eligible, eligibility.reason, eligibility.unmet) == (True, "eligible", ())
    assert (eligibility.followers_count, eligibility.hosted_count, eligibility.charges_enabled) == (1000, 3, True)
    assert eligibility.detail == (
        "You can sell tickets: 1000 followers, 3 spaces hosted in the last 30 days, and Stripe can pay you."
    )


@pytest.mark.parametrize(
    ("followers", "hosted", "onboarded", "unmet"),
    [
        (999, 3, True, ("not_enough_followers",)),
        (1000, 2, True, ("not_enough_hosted",)),
        (1000, 3, False, ("payouts_not_ready",)),
        (12, 0, False, ("not_enough_followers", "not_enough_hosted", "payouts_not_ready")),
    ],
)
def test_each_condition_that_fails_is_named_with_its_figures(stripe_standin, followers, hosted, onboarded, unmet):
    user = UserFactory(followers=followers, hosting_granted=True)
    hosted_before(user, hosted)
    if onboarded:
        onboard(stripe_standin, user)

    eligibility = ticketed_hosting_eligibility(user)

    assert (eligibility.eligible, eligibility.unmet, eligibility.reason) == (False, unmet, unmet[0])
    assert (eligibility.followers_count, eligibility.hosted_count, eligibility.charges_enabled) == (
        followers, hosted, onboarded,
    )  # fmt: skip


def test_the_403_lists_every_failing_condition(stripe_standin):
    user = UserFactory(followers=640, hosting_granted=True)
    hosted_before(user, 1)

    with pytest.raises(HostingNotEligible) as refused:
        ensure_may_sell_tickets(user)

    assert refused.value.status == 403
    assert refused.value.as_dict() == {
        "code": "ticketed_hosting_not_eligible",
        "detail": "Selling tickets needs at least 1000 followers (you have 640); "
        "at least 3 spaces hosted in the last 30 days (you hosted 1); "
        "a finished Stripe onboarding so you can be paid (yours isn't finished).",
        "unmet": ["not_enough_followers", "not_enough_hosted", "payouts_not_ready"],
        "followers_count": 640,
        "required_followers": 1000,
        "hosted_count": 1,
        "required_hosted": 3,
        "hosted_window_days": 30,
        "charges_enabled": False,
    }


def test_spaces_hosted_more_than_30_days_ago_do_not_count(stripe_standin):
    user = UserFactory(followers=1000)
    hosted_before(user, 2, days_ago=2)
    hosted_before(user, 5, days_ago=31)
    onboard(stripe_standin, user)

    eligibility = ticketed_hosting_eligibility(user)

    assert (eligibility.eligible, eligibility.hosted_count) == (False, 2)


def test_a_staff_grant_of_hosting_does_not_stand_in_for_the_ticketed_rules(stripe_standin):
    user = UserFactory(followers=3, hosting_granted=True)
    hosted_before(user, 3)
    onboard(stripe_standin, user)

    assert ticketed_hosting_eligibility(user).unmet == ("not_enough_followers",)


def test_thresholds_are_settings(stripe_standin, settings):
    settings.SPACES_TICKETED_MIN_FOLLOWERS = 10
    settings.SPACES_TICKETED_MIN_HOSTED = 1
    user = UserFactory(followers=10, hosting_granted=True)
    hosted_before(user, 1)
    onboard(stripe_standin, user)

    assert ticketed_hosting_eligibility(user).eligible is True


def test_the_eligibility_api_answers_with_the_figures(stripe_standin, api):
    user = UserFactory(followers=5)
    api.force_authenticate(user)

    answer = api.get("/api/me/ticketed-hosting-eligibility/")

    assert answer.status_code == 200
    body = answer.json()
    assert (body["eligible"], body["reason"], body["followers_count"], body["required_followers"]) == (
        False, "not_enough_followers", 5, 1000,
    )  # fmt: skip
    assert body["unmet"] == ["not_enough_followers", "not_enough_hosted", "payouts_not_ready"]
