"""Buying: a held seat and a Stripe Checkout Session for it, one ticket per buyer, sold out, sales closed."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services as accounts_services
from accounts.models import AuditEntry
from rooms import services as rooms_services
from tests.factories import UserFactory
from tests.rooms.scene import make_space
from tests.ticketing.scene import SUCCESS_URL, buy, buy_and_pay, deliver, make_ticketed_space
from ticketing.errors import BuyNotAllowed, NotTicketed, PaymentsUnavailable, SalesClosed, SoldOut
from ticketing.fees import application_fee_minor
from ticketing.models import Ticket, TicketState

pytestmark = pytest.mark.django_db(transaction=True)


def test_buying_holds_a_seat_and_opens_a_destination_charge_checkout_at_stripe(stripe_standin):
    # given
    space = make_ticketed_space(stripe_standin, price_minor=1250, currency="eur", cap=10)
    buyer = UserFactory(email="buyer@example.com")

    # when
    start = buy(buyer, space)

    # then: a held ticket, with the session's address
    ticket = Ticket.objects.get(pk=start.ticket.pk)
    assert start.created is True
    assert (ticket.state, ticket.amount_minor, ticket.currency) == (TicketState.HELD, 1250, "eur")
    assert start.checkout_url == ticket.checkout_url == f"{stripe_standin.url}/c/pay/{ticket.checkout_session_id}"
    # and Stripe got exactly what a destination charge with our fee needs
    (call,) = stripe_standin.calls("POST", "/v1/checkout/sessions")
    params = call.params
    account_id = space.host.creator_account.stripe_account_id
    assert params["mode"] == "payment"
    assert params["line_items"] == [
        {
            "quantity": "1",
            "price_data": {
                "currency": "eur",
                "unit_amount": "1250",
                "product_data": {"name": "Ticket: Ticketed talk", "description": f"Hosted by {space.host.name}"},
            },
        }
    ]
    assert params["payment_intent_data"]["transfer_data"] == {"destination": account_id}
    assert params["payment_intent_data"]["application_fee_amount"] == "38"  # 3 % of 12.50, rounded half up
    assert params["client_reference_id"] == str(ticket.pk)
    assert params["metadata"]["ticket_id"] == str(ticket.pk)
    assert params["customer_email"] == "buyer@example.com"
    assert params["success_url"] == SUCCESS_URL
    assert call.idempotency_key == ticket.checkout_idempotency_key
    # expires_at: at least Stripe's 30 minutes away, and the hold lasts past it
    expires_at = int(params["expires_at"])
    assert 30 * 60 <= expires_at - time.time() <= 33 * 60
    assert ticket.held_until.timestamp() > expires_at
    # the audit entry audit_record writes (on PostgreSQL the hold's own statement writes it)
    (entry,) = AuditEntry.objects.filter(action="ticketing.ticket.held", subject_id=str(ticket.pk))
    assert (entry.actor, entry.subject_type.model_class(), entry.subject_repr) == (buyer, Ticket, str(ticket))
    assert entry.details == {
        "amount_minor": 1250,
        "currency": "eur",
        "application_fee_minor": 38,
        "seats_taken": 1,
        "cap": 10,
    }
    assert abs(entry.created_at - ticket.created_at) < timedelta(seconds=1)


def test_a_second_attempt_returns_the_open_checkout_then_the_paid_ticket(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    buyer = UserFactory()
    first = buy(buyer, space)

    again = buy(buyer, space)
    deliver(stripe_standin, stripe_standin.pay(first.ticket.checkout_session_id))
    after_paying = buy(buyer, space)

    assert (again.created, again.ticket.pk, again.checkout_url) == (False, first.ticket.pk, first.checkout_url)
    assert (after_paying.created, after_paying.ticket.pk, after_paying.checkout_url) == (False, first.ticket.pk, None)
    assert after_paying.ticket.state == TicketState.PAID
    assert len(stripe_standin.calls("POST", "/v1/checkout/sessions")) == 1
    assert Ticket.objects.filter(space=space, buyer=buyer).count() == 1


def test_sold_out_is_a_409_with_a_clear_message_and_holds_nothing(stripe_standin):
    space = make_ticketed_space(stripe_standin, cap=2)
    buy_and_pay(stripe_standin, UserFactory(), space)
    buy(UserFactory(), space)
    late = UserFactory()

    with pytest.raises(SoldOut) as refused:
        buy(late, space)

    assert refused.value.status == 409
    assert refused.value.as_dict() == {
        "code": "sold_out",
        "detail": "Sold out: all 2 seats are sold or held by buyers paying right now. "
        "A held seat comes back if its checkout expires.",
        "cap": 2,
        "seats_taken": 2,
    }
    assert not Ticket.objects.filter(buyer=late).exists()


def test_sales_end_when_the_space_goes_live(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    rooms_services.space_start(actor=space.host, space_id=space.pk)

    with pytest.raises(SalesClosed) as refused:
        buy(UserFactory(), space)

    assert refused.value.detail == "Ticket sales ended when the space went live; it is live now."
    assert not Ticket.objects.exists()


def test_the_host_and_people_the_host_blocked_cannot_buy(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    blocked = UserFactory()
    accounts_services.user_block(blocker=space.host, blocked=blocked)

    with pytest.raises(BuyNotAllowed) as host_refused:
        buy(space.host, space)
    with pytest.raises(BuyNotAllowed) as blocked_refused:
        buy(blocked, space)

    assert host_refused.value.detail == "You host this space: you don't need a ticket."
    assert blocked_refused.value.detail == "You can't buy a ticket to this space."
    assert not Ticket.objects.exists()


def test_a_space_without_tickets_is_a_404(stripe_standin):
    with pytest.raises(NotTicketed):
        buy(UserFactory(), make_space())


def test_when_stripe_fails_the_seat_is_given_back_and_the_buyer_told(stripe_standin):
    space = make_ticketed_space(stripe_standin, cap=1)
    stripe_standin.fail_next("POST", "/v1/checkout/sessions")
    buyer = UserFactory()

    with pytest.raises(PaymentsUnavailable) as refused:
        buy(buyer, space)
    retry = buy(buyer, space)

    assert refused.value.status == 503
    assert "nothing was charged" in refused.value.detail
    failed, held = Ticket.objects.filter(buyer=buyer).order_by("pk")
    assert (failed.state, failed.release_reason) == (TicketState.RELEASED, "checkout_failed")
    assert (held.state, retry.ticket.pk, retry.created) == (TicketState.HELD, held.pk, True)


def test_without_a_stripe_key_buying_is_503_and_holds_nothing(stripe_standin, settings):
    space = make_ticketed_space(stripe_standin)
    settings.STRIPE_SECRET_KEY = ""

    with pytest.raises(PaymentsUnavailable):
        buy(UserFactory(), space)

    assert not Ticket.objects.exists()


def test_the_fee_follows_the_sellers_lifetime_sales_across_the_tier(stripe_standin, settings):
    # given: a 10.00 tier, so the third 4.00 sale straddles it (8.00 sold before)
    settings.SPACES_TICKET_FEE_TIER_MINOR = 1000
    space = make_ticketed_space(stripe_standin, price_minor=400)

    fees = [buy(UserFactory(), space).ticket.application_fee_minor for _ in range(4)]

    # then: 3 % of 4.00, 3 % of 4.00, 3 % of 2.00 + 20 % of 2.00, 20 % of 4.00
    assert fees == [12, 12, 6 + 40, 80]
    assert fees[2] == application_fee_minor(amount_minor=400, sold_before_minor=800)
    assert [
        int(c.params["payment_intent_data"]["application_fee_amount"]) for c in stripe_standin.calls("POST")[-4:]
    ] == fees


def test_a_hold_lasts_until_stripe_says_the_session_cannot_be_paid(stripe_standin):
    space = make_ticketed_space(stripe_standin, cap=1)
    first = buy(UserFactory(), space)
    Ticket.objects.filter(pk=first.ticket.pk).update(held_until=timezone.now() - timedelta(minutes=1))

    # the hold's time is up, but nobody asked Stripe yet: the seat still counts
    with pytest.raises(SoldOut):
        buy(UserFactory(), space)
