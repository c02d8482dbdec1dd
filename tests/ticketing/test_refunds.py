"""Refunds: cancelling a ticketed space refunds every paid ticket through Stripe, retried until Stripe
answers, each buyer told; staff refund one ticket; Stripe's own refunds are mirrored."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from rooms import services as rooms_services
from rooms.models import SpaceState
from spaces_site.errors import NotAllowed
from tests.factories import UserFactory
from tests.ticketing.scene import buy, buy_and_pay, deliver, make_ticketed_space
from ticketing import services, tasks
from ticketing.errors import TicketWrongState
from ticketing.models import Refund, RefundState, Ticket, TicketState

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_host_cancels_a_space_with_30_paid_tickets_and_all_30_are_refunded_once(stripe_standin):
    # given: 30 paid tickets, and Stripe failing the first refund call
    space = make_ticketed_space(stripe_standin, price_minor=1500, cap=40)
    buyers = [UserFactory(email=f"buyer{n}@example.com") for n in range(30)]
    tickets = [buy_and_pay(stripe_standin, buyer, space) for buyer in buyers]
    stripe_standin.fail_next("POST", "/v1/refunds")
    host = APIClient()
    host.force_authenticate(space.host)

    # when: the host cancels through the API
    answer = host.post(f"/api/spaces/{space.pk}/cancel/")

    # then: the space is cancelled and 30 refunds were asked of Stripe, each with its own key
    assert answer.status_code == 200 and answer.json()["state"] == SpaceState.CANCELLED
    calls = stripe_standin.calls("POST", "/v1/refunds")
    keys = [call.idempotency_key for call in calls]
    assert len(calls) == 31  # one failed and was tried again
    assert sorted(set(keys)) == sorted(f"refund-{t.pk}" for t in tickets)
    failed = calls[0]
    assert failed.status == 500 and keys.count(failed.idempotency_key) == 2
    assert all(c.params["reverse_transfer"] == "true" and c.params["refund_application_fee"] == "true" for c in calls)
    # Stripe made exactly 30 refunds of the full price
    assert sorted(r["amount"] for r in stripe_standin.refunds()) == [1500] * 30
    # every ticket is refunded, its refund row says so, and the retried one took two attempts
    assert set(Ticket.objects.filter(space=space).values_list("state", flat=True)) == {TicketState.REFUNDED}
    refunds = Refund.objects.filter(ticket__space=space)
    assert refunds.count() == 30
    assert {(r.state, r.reason) for r in refunds} == {(RefundState.SUCCEEDED, "space_cancelled")}
    assert sorted(r.attempts for r in refunds) == [1] * 29 + [2]
    assert refunds.get(idempotency_key=failed.idempotency_key).attempts == 2
    # every buyer was told, once
    assert sorted(m.to[0] for m in mail.outbox) == sorted(b.email for b in buyers)
    assert mail.outbox[0].subject == "Refunded: your ticket to “Ticketed talk”"
    assert "15.00 USD goes back to the card you paid with" in mail.outbox[0].body
    assert AuditEntry.objects.filter(action="ticketing.ticket.refunded").count() == 30


def test_cancelling_twice_or_stripe_repeating_its_events_refunds_nothing_more(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    ticket = buy_and_pay(stripe_standin, UserFactory(email="a@example.com"), space)
    rooms_services.space_cancel(actor=space.host, space_id=space.pk)

    for event in stripe_standin.events("charge.refunded") * 2:
        deliver(stripe_standin, event)
    with pytest.raises(TicketWrongState):
        services.ticket_refund(actor=UserFactory(is_staff=True), ticket_id=ticket.pk)
    tasks.refund_request_task.delay(Refund.objects.get().pk)

    assert len(stripe_standin.refunds()) == 1
    assert len(stripe_standin.calls("POST", "/v1/refunds")) == 1
    assert len(mail.outbox) == 1


def test_a_refund_stripe_keeps_refusing_fails_after_its_retries_and_staff_can_try_again(stripe_standin, settings):
    settings.SPACES_REFUND_MAX_RETRIES = 2
    space = make_ticketed_space(stripe_standin)
    ticket = buy_and_pay(stripe_standin, UserFactory(), space)
    stripe_standin.fail_next("POST", "/v1/refunds", times=3)
    staff = UserFactory(is_staff=True)

    services.ticket_refund(actor=staff, ticket_id=ticket.pk)
    given_up = Refund.objects.get()
    services.ticket_refund(actor=staff, ticket_id=ticket.pk)

    assert (given_up.state, given_up.attempts) == (RefundState.FAILED, 3)
    assert "An error occurred with our connection to Stripe." in given_up.last_error
    assert AuditEntry.objects.filter(action="ticketing.refund.failed").count() == 1
    assert Refund.objects.get().state == RefundState.SUCCEEDED
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.REFUNDED
    assert len(stripe_standin.refunds()) == 1


def test_retries_back_off_exponentially_up_to_the_cap(settings):
    settings.SPACES_REFUND_BACKOFF_MAX_S = 600

    assert [tasks._backoff(n) for n in range(9)] == [5, 10, 20, 40, 80, 160, 320, 600, 600]


def test_a_refund_made_in_stripes_dashboard_first_is_not_made_again(stripe_standin):
    # given: staff refund in Stripe's dashboard, and the webhook hasn't come yet
    space = make_ticketed_space(stripe_standin)
    ticket = buy_and_pay(stripe_standin, UserFactory(email="b@example.com"), space)
    stripe_standin.refund_in_dashboard(ticket.payment_intent_id)

    # when: the space is cancelled
    rooms_services.space_cancel(actor=space.host, space_id=space.pk)

    # then: Stripe said it's refunded already; the ticket is refunded, once
    refund = Refund.objects.get()
    assert (refund.state, refund.last_error) == (RefundState.SKIPPED, "already refunded at Stripe")
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.REFUNDED
    assert len(stripe_standin.refunds()) == 1
    assert len(mail.outbox) == 1


def test_a_checkout_paid_while_the_space_was_being_cancelled_is_refunded(stripe_standin):
    # given: the buyer paid, but Stripe's webhook hasn't arrived when the host cancels
    space = make_ticketed_space(stripe_standin)
    start = buy(UserFactory(), space)
    stripe_standin.pay(start.ticket.checkout_session_id)
    open_one = buy(UserFactory(), space)

    rooms_services.space_cancel(actor=space.host, space_id=space.pk)

    # then: the paid hold became paid and was refunded; the open checkout was expired at Stripe
    assert Ticket.objects.get(pk=start.ticket.pk).state == TicketState.REFUNDED
    assert Refund.objects.get().reason == "paid_after_cancelled"
    assert Ticket.objects.get(pk=open_one.ticket.pk).state == TicketState.RELEASED
    assert stripe_standin.session(open_one.ticket.checkout_session_id)["status"] == "expired"


def test_ending_a_space_that_went_live_closes_open_checkouts_and_refunds_nobody(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    paid = buy_and_pay(stripe_standin, UserFactory(), space)
    held = buy(UserFactory(), space)
    rooms_services.space_start(actor=space.host, space_id=space.pk)

    rooms_services.space_end(actor=space.host, space_id=space.pk)

    assert Ticket.objects.get(pk=paid.pk).state == TicketState.PAID
    assert Ticket.objects.get(pk=held.ticket.pk).state == TicketState.RELEASED
    assert not Refund.objects.exists()
    assert stripe_standin.calls("POST", "/v1/refunds") == []


def test_only_staff_refund_a_ticket(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    ticket = buy_and_pay(stripe_standin, UserFactory(), space)

    with pytest.raises(NotAllowed):
        services.ticket_refund(actor=space.host, ticket_id=ticket.pk)

    assert not Refund.objects.exists()


def test_staff_refund_one_ticket_from_the_admin(stripe_standin):
    # given
    space = make_ticketed_space(stripe_standin)
    paid = buy_and_pay(stripe_standin, UserFactory(email="c@example.com"), space)
    other = buy_and_pay(stripe_standin, UserFactory(), space)
    held = buy(UserFactory(), space).ticket
    admin = Client()
    admin.force_login(UserFactory(is_staff=True, is_superuser=True))

    # when: the refund action on the paid ticket and the held one
    answer = admin.post(
        "/admin/ticketing/ticket/",
        {"action": "refund", ACTION_CHECKBOX_NAME: [paid.pk, held.pk]},
        follow=True,
    )

    # then
    page = answer.content.decode()
    assert f"Refund requested for ticket(s) {paid.pk}; see Refunds." in page
    assert "1 selected ticket(s) were not paid; left alone." in page
    assert Ticket.objects.get(pk=paid.pk).state == TicketState.REFUNDED
    assert Ticket.objects.get(pk=other.pk).state == TicketState.PAID
    assert Ticket.objects.get(pk=held.pk).state == TicketState.HELD
    refund = Refund.objects.get()
    assert (refund.reason, refund.requested_by.is_staff) == ("staff", True)
    assert [m.to for m in mail.outbox] == [["c@example.com"]]
