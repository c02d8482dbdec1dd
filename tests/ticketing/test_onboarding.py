"""Stripe Connect Express onboarding: the account, the link, the return page and `account.updated`."""

import pytest
from django.test import Client

from accounts.models import AuditEntry
from tests.factories import UserFactory
from tests.ticketing.scene import deliver
from ticketing.models import CreatorAccount

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_onboarding_creates_an_express_account_once_and_links_to_stripe(stripe_standin, api):
    creator = UserFactory(followers=700, email="creator@example.com")
    api.force_authenticate(creator)

    first = api.post("/api/me/stripe-onboarding/")
    second = api.post("/api/me/stripe-onboarding/")

    account = CreatorAccount.objects.get(user=creator)
    assert first.status_code == second.status_code == 200
    assert first.json()["url"].startswith(f"{stripe_standin.url}/setup/")
    (created,) = stripe_standin.calls("POST", "/v1/accounts")
    assert created.params["type"] == "express"
    assert created.params["email"] == "creator@example.com"
    assert created.params["capabilities"] == {
        "card_payments": {"requested": "true"},
        "transfers": {"requested": "true"},
    }
    links = stripe_standin.calls("POST", "/v1/account_links")
    assert [link.params["account"] for link in links] == [account.stripe_account_id] * 2
    assert links[0].params["return_url"] == "http://testserver/tickets/selling/onboarding/return/"
    assert links[0].params["refresh_url"] == "http://testserver/tickets/selling/onboarding/refresh/"
    assert (account.charges_enabled, account.details_submitted) == (False, False)
    assert api.get("/api/me/stripe-onboarding/").json() == {
        "stripe_account_id": account.stripe_account_id,
        "charges_enabled": False,
        "payouts_enabled": False,
        "details_submitted": False,
    }


def test_only_people_who_may_host_start_onboarding(stripe_standin, api):
    api.force_authenticate(UserFactory(followers=3))

    answer = api.post("/api/me/stripe-onboarding/")

    assert answer.status_code == 403
    assert answer.json()["code"] == "hosting_not_eligible"
    assert stripe_standin.calls() == []
    assert not CreatorAccount.objects.exists()


def test_finishing_onboarding_and_coming_back_marks_the_account_payable(stripe_standin):
    # given: a creator sent to Stripe from the selling page
    creator = UserFactory(followers=700)
    browser = signed_in(creator)
    to_stripe = browser.post("/tickets/selling/onboarding/")
    link = to_stripe["Location"]

    # when: they finish at Stripe (no webhook reaches us) and Stripe sends them back
    stripe_standin.complete_onboarding(CreatorAccount.objects.get(user=creator).stripe_account_id)
    back = browser.get("/tickets/selling/onboarding/return/", follow=True)

    # then: the return page asked Stripe, and the account can take charges
    assert to_stripe.status_code == 303 and link.startswith(f"{stripe_standin.url}/setup/")
    assert "Stripe can pay you now." in back.content.decode()
    account = CreatorAccount.objects.get(user=creator)
    assert (account.charges_enabled, account.payouts_enabled, account.details_submitted) == (True, True, True)
    assert AuditEntry.objects.filter(action="ticketing.creator_account.updated").count() == 1


def test_a_stale_link_gets_a_fresh_one(stripe_standin):
    creator = UserFactory(followers=700)
    browser = signed_in(creator)
    browser.post("/tickets/selling/onboarding/")

    refreshed = browser.get("/tickets/selling/onboarding/refresh/")

    assert refreshed.status_code == 303 and refreshed["Location"].startswith(f"{stripe_standin.url}/setup/")
    assert len(stripe_standin.calls("POST", "/v1/account_links")) == 2
    assert len(stripe_standin.calls("POST", "/v1/accounts")) == 1


def test_account_updated_keeps_charges_enabled_as_stripe_says(stripe_standin, api):
    creator = UserFactory(followers=700)
    api.force_authenticate(creator)
    api.post("/api/me/stripe-onboarding/")
    account_id = CreatorAccount.objects.get(user=creator).stripe_account_id

    deliver(stripe_standin, stripe_standin.complete_onboarding(account_id))
    enabled = CreatorAccount.objects.get(user=creator).charges_enabled
    deliver(stripe_standin, stripe_standin.set_account(account_id, charges_enabled=False))
    disabled = CreatorAccount.objects.get(user=creator).charges_enabled

    assert (enabled, disabled) == (True, False)


def test_account_updated_for_an_account_we_do_not_know_is_ignored(stripe_standin):
    event = {"id": "evt_acct", "object": "event", "type": "account.updated", "data": {"object": {"id": "acct_other"}}}

    deliver(stripe_standin, event)

    assert not CreatorAccount.objects.exists()
    assert stripe_standin.calls() == []


def test_when_stripe_does_not_answer_onboarding_is_a_503_that_says_so(stripe_standin, api):
    api.force_authenticate(UserFactory(followers=700))
    stripe_standin.fail_next("POST", "/v1/accounts")

    answer = api.post("/api/me/stripe-onboarding/")

    assert answer.status_code == 503
    assert answer.json() == {
        "code": "payments_unavailable",
        "detail": "Stripe didn't answer, so onboarding can't start now. Please try again.",
        "retry_after": 5,
    }
    assert answer["Retry-After"] == "5"
    assert not CreatorAccount.objects.exists()
