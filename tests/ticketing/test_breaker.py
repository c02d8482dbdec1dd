"""Stripe's deadline and breaker: a checkout waits on Stripe within a budget, and after repeated failures the
site stops calling Stripe for a cool-down, answering 503 at once, until a trial call finds it back."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from tests.factories import UserFactory
from tests.ticketing.scene import HangingStripe, make_ticketed_space
from ticketing.models import Ticket, TicketState
from ticketing.stripe_client import breaker

pytestmark = pytest.mark.django_db

CHECKOUTS = "/v1/checkout/sessions"


def buy(api, space):
    api.force_authenticate(UserFactory())
    return api.post(f"/api/spaces/{space.pk}/tickets/")


def test_after_repeated_failures_checkouts_are_refused_at_once_without_calling_stripe(stripe_standin, api, settings):
    # given: Stripe fails every checkout, and the breaker opens after three failed calls
    settings.STRIPE_BREAKER_FAILURES, settings.STRIPE_BREAKER_COOLDOWN_S = 3, 30
    space = make_ticketed_space(stripe_standin, cap=10)
    stripe_standin.fail_next("POST", CHECKOUTS, times=100)
    failed = [buy(api, space) for _ in range(3)]
    calls_before = len(stripe_standin.calls("POST", CHECKOUTS))

    # when: the next buyer tries
    refused = buy(api, space)

    # then: all four are 503 with Retry-After; the fourth never reached Stripe and held no seat
    assert [answer.status_code for answer in [*failed, refused]] == [503] * 4
    assert {answer.json()["code"] for answer in [*failed, refused]} == {"payments_unavailable"}
    assert 0 < int(refused["Retry-After"]) <= 30
    assert len(stripe_standin.calls("POST", CHECKOUTS)) == calls_before
    assert breaker.current_state == "open"
    assert not Ticket.objects.filter(state=TicketState.HELD).exists()
    assert Ticket.objects.filter(state=TicketState.RELEASED, release_reason="checkout_failed").count() == 3


def test_after_the_cool_down_a_checkout_reaches_stripe_again_and_succeeds(stripe_standin, api, settings):
    # given: the breaker opened while Stripe failed, and Stripe is back
    settings.STRIPE_BREAKER_FAILURES, settings.STRIPE_BREAKER_COOLDOWN_S = 2, 30
    space = make_ticketed_space(stripe_standin, cap=10)
    stripe_standin.fail_next("POST", CHECKOUTS, times=2)  # two checkouts (the stand-in's failures aren't retried)
    assert [buy(api, space).status_code for _ in range(2)] == [503, 503]
    during = buy(api, space)

    # when: the cool-down has passed
    with time_machine.travel(timezone.now() + timedelta(seconds=31), tick=True):
        after = buy(api, space)

    # then: refused during the cool-down, a seat and a checkout after it, and the breaker closed
    assert during.status_code == 503
    assert after.status_code == 201
    assert after.json()["checkout_url"]
    assert breaker.current_state == "closed"


def test_a_checkout_waits_on_a_hanging_stripe_no_longer_than_its_budget_and_gives_the_seat_back(
    stripe_standin, api, settings
):
    # given: Stripe accepts connections and never answers
    space = make_ticketed_space(stripe_standin, cap=10)
    hanging = HangingStripe()
    settings.STRIPE_API_BASE, settings.STRIPE_REQUEST_BUDGET_S = hanging.url, 1
    try:
        # when
        started = time.monotonic()
        answer = buy(api, space)
        waited = time.monotonic() - started
    finally:
        hanging.close()

    # then
    assert answer.status_code == 503
    assert answer.json()["code"] == "payments_unavailable"
    assert int(answer["Retry-After"]) > 0
    assert 1 <= waited < 3
    assert Ticket.objects.get().state == TicketState.RELEASED
