"""Stripe's webhooks: signatures, storing by event id, handling once, and any order or repetition."""

import json
import random
import time

import pytest
from django.core import mail

from accounts.models import AuditEntry
from rooms import services as rooms_services
from tests.factories import UserFactory
from tests.ticketing.scene import buy, deliver, make_ticketed_space
from ticketing import services
from ticketing.models import CreatorAccount, Refund, RefundState, Ticket, TicketState, WebhookEvent
from ticketing.stripe_standin import sign

pytestmark = pytest.mark.django_db(transaction=True)


def tickets_by_buyer(space) -> dict[str, str]:
    return dict(Ticket.objects.filter(space=space).values_list("buyer__username", "state"))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_event_twice_in_shuffled_order_gives_the_same_tickets_and_no_double_refund(stripe_standin, seed):
    # given: five buyers; at Stripe ann, bob and cat pay, dan's checkout expires, eve's stays open,
    # bob's payment is refunded in Stripe's dashboard, and the creator's payouts get paused
    space = make_ticketed_space(stripe_standin, cap=10)
    starts = {name: buy(UserFactory(username=name, email=f"{name}@example.com"), space) for name in
              ("ann", "bob", "cat", "dan", "eve")}  # fmt: skip
    session = {name: start.ticket.checkout_session_id for name, start in starts.items()}
    events = [stripe_standin.pay(session[name]) for name in ("ann", "bob", "cat")]
    events.append(stripe_standin.expire(session["dan"]))
    events.append(stripe_standin.refund_in_dashboard(stripe_standin.session(session["bob"])["payment_intent"]))
    account_id = space.host.creator_account.stripe_account_id
    events.append(stripe_standin.set_account(account_id, payouts_enabled=False))

    # when: every event arrives twice, in a shuffled order
    deliveries = events * 2
    random.Random(seed).shuffle(deliveries)
    answers = [deliver(stripe_standin, event).status_code for event in deliveries]

    # then: the same tickets whatever the order
    assert answers == [200] * 12
    assert tickets_by_buyer(space) == {
        "ann": "paid",
        "bob": "refunded",
        "cat": "paid",
        "dan": "released",
        "eve": "held",
    }
    assert CreatorAccount.objects.get(stripe_account_id=account_id).payouts_enabled is False
    # each event stored once, handled once, delivered twice
    stored = WebhookEvent.objects.order_by("stripe_event_id")
    assert sorted(e.stripe_event_id for e in stored) == sorted(e["id"] for e in events)
    assert {(e.status, e.attempts, e.deliveries) for e in stored} == {("succeeded", 1, 2)}
    # we asked Stripe for no refund: bob's was made in the dashboard, and he was told once
    assert stripe_standin.calls("POST", "/v1/refunds") == []
    assert [m.to for m in mail.outbox] == [["bob@example.com"]]
    assert Refund.objects.get(ticket__buyer__username="bob").reason == "stripe"

    # when: the host cancels, and Stripe's events about our refunds arrive twice, mixed with the old ones again
    mail.outbox.clear()
    rooms_services.space_cancel(actor=space.host, space_id=space.pk)
    refunded_events = stripe_standin.events("charge.refunded")[1:]
    later = (refunded_events + events) * 2
    random.Random(seed).shuffle(later)
    for event in later:
        assert deliver(stripe_standin, event).status_code == 200

    # then: ann and cat are refunded once each, bob is not refunded again, eve's open checkout is expired
    refund_calls = stripe_standin.calls("POST", "/v1/refunds")
    assert sorted(c.idempotency_key for c in refund_calls) == sorted(
        f"refund-{starts[name].ticket.pk}" for name in ("ann", "cat")
    )
    assert len(stripe_standin.refunds()) == 3  # bob's from the dashboard, ann's and cat's from us
    assert tickets_by_buyer(space) == {
        "ann": "refunded", "bob": "refunded", "cat": "refunded", "dan": "released", "eve": "released",
    }  # fmt: skip
    assert stripe_standin.session(session["eve"])["status"] == "expired"
    assert sorted(m.to[0] for m in mail.outbox) == ["ann@example.com", "cat@example.com"]
    assert set(Refund.objects.values_list("state", flat=True)) == {RefundState.SUCCEEDED}


def test_a_bad_signature_is_refused_with_400_and_changes_nothing(stripe_standin, client):
    space = make_ticketed_space(stripe_standin)
    start = buy(UserFactory(), space)
    event = stripe_standin.pay(start.ticket.checkout_session_id)
    body, good_signature = stripe_standin.signed(event)
    forged_body = json.dumps({**event, "id": "evt_forged"})

    answers = [
        deliver(stripe_standin, event, client=client, secret="whsec_someone_else"),
        client.post("/stripe/webhook/", data=body, content_type="application/json"),  # no signature
        client.post(
            "/stripe/webhook/", data=forged_body, content_type="application/json", HTTP_STRIPE_SIGNATURE=good_signature
        ),
        client.post(  # signed, but ten minutes ago: a replay
            "/stripe/webhook/",
            data=body,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(body.decode(), stripe_standin.webhook_secret, int(time.time()) - 600),
        ),
    ]

    assert [a.status_code for a in answers] == [400, 400, 400, 400]
    assert answers[0].json() == {
        "code": "bad_signature",
        "detail": "The Stripe-Signature header does not match this body.",
    }
    assert not WebhookEvent.objects.exists()
    assert Ticket.objects.get(pk=start.ticket.pk).state == TicketState.HELD
    assert not AuditEntry.objects.filter(action="ticketing.ticket.paid").exists()


def test_the_object_is_asked_of_stripe_so_a_signed_but_false_claim_changes_nothing(stripe_standin):
    # given: an open session, and an event that says (falsely) it was paid
    space = make_ticketed_space(stripe_standin)
    start = buy(UserFactory(), space)
    claim = stripe_standin.session(start.ticket.checkout_session_id)
    claim.update(status="complete", payment_status="paid", payment_intent="pi_made_up")
    event = {"id": "evt_claim", "object": "event", "type": "checkout.session.completed", "data": {"object": claim}}

    answer = deliver(stripe_standin, event)

    stored = WebhookEvent.objects.get(stripe_event_id="evt_claim")
    assert answer.status_code == 200
    assert (stored.status, stored.outcome) == (
        "succeeded",
        f"ticket {start.ticket.pk} is held; session open: no change",
    )
    assert Ticket.objects.get(pk=start.ticket.pk).state == TicketState.HELD
    assert stripe_standin.calls("GET", f"/v1/checkout/sessions/{start.ticket.checkout_session_id}")


def test_an_event_is_handled_once_and_retried_when_stripe_does_not_answer(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    start = buy(UserFactory(), space)
    event = stripe_standin.pay(start.ticket.checkout_session_id)
    stripe_standin.fail_next("GET", "/v1/checkout/sessions/")

    deliver(stripe_standin, event)
    again = services.webhook_event_process(event_id=WebhookEvent.objects.get().pk)

    stored = WebhookEvent.objects.get()
    assert (stored.status, stored.attempts, stored.error) == ("succeeded", 2, "")
    assert again == "done"
    assert Ticket.objects.get(pk=start.ticket.pk).state == TicketState.PAID
    assert len(stripe_standin.calls("GET", "/v1/checkout/sessions/")) == 2


def test_a_failed_event_is_kept_with_its_error_and_handled_when_stripe_sends_it_again(stripe_standin, settings):
    settings.STRIPE_BREAKER_FAILURES = 100  # the task's own retries, not the breaker (tests/ticketing/test_breaker.py)
    space = make_ticketed_space(stripe_standin)
    start = buy(UserFactory(), space)
    event = stripe_standin.pay(start.ticket.checkout_session_id)
    stripe_standin.fail_next("GET", "/v1/checkout/sessions/", times=9)  # more than the task's retries

    deliver(stripe_standin, event)
    failed = WebhookEvent.objects.get()
    deliver(stripe_standin, event)

    assert (failed.status, failed.attempts) == ("failed", 9)
    assert failed.error.startswith("APIError: ")
    assert WebhookEvent.objects.get().status == "succeeded"
    assert Ticket.objects.get(pk=start.ticket.pk).state == TicketState.PAID


def test_events_we_do_not_handle_are_stored_and_ignored(stripe_standin):
    event = {"id": "evt_other", "object": "event", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}

    answer = deliver(stripe_standin, event)

    assert answer.json() == {"received": True, "id": "evt_other"}
    stored = WebhookEvent.objects.get()
    assert (stored.type, stored.status, stored.outcome) == (
        "customer.created", "succeeded", "ignored: customer.created is not handled here",
    )  # fmt: skip


def test_without_a_signing_secret_webhooks_answer_503_so_stripe_retries(stripe_standin, settings, client):
    settings.STRIPE_WEBHOOK_SECRETS = []
    event = {"id": "evt_x", "object": "event", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}

    answer = deliver(stripe_standin, event, client=client)

    assert answer.status_code == 503
    assert answer.json()["code"] == "payments_unavailable"
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        "[]",
        '[{"id": "evt_1", "object": "event", "type": "customer.created"}]',
        '"evt_1"',
        "42",
        "null",
        "not json",
        '{"id": "evt_1"}',
        '{"id": 1, "type": "customer.created"}',
        '{"id": "evt_1", "type": ["customer.created"]}',
    ],
)
def test_a_signed_body_that_is_not_an_event_object_is_refused_with_400_and_stores_nothing(settings, client, body):
    # given: a body signed with our secret, as Stripe signs, that is not a JSON object with an id and type
    settings.STRIPE_WEBHOOK_SECRETS = ["whsec_test"]

    # when
    answer = client.post(
        "/stripe/webhook/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(body, "whsec_test")
    )

    # then
    assert answer.status_code == 400
    assert answer.json() == {
        "code": "bad_payload",
        "detail": 'The body is not a Stripe event: a JSON object with an "id" and a "type".',
    }
    assert not WebhookEvent.objects.exists()
