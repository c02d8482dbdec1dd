"""Holds whose webhook never came: the periodic sweep asks Stripe and settles them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from spaces_site.celery import app
from tests.factories import UserFactory
from tests.ticketing.scene import buy, buy_and_pay, make_ticketed_space
from ticketing import tasks
from ticketing.models import Refund, RefundState, Ticket, TicketState

pytestmark = pytest.mark.django_db(transaction=True)


def time_up(*tickets) -> None:
    Ticket.objects.filter(pk__in=[t.pk for t in tickets]).update(held_until=timezone.now() - timedelta(seconds=1))


def test_the_sweep_settles_holds_past_their_time_from_what_stripe_says(stripe_standin):
    # given: four holds whose time is up and whose webhooks never came
    space = make_ticketed_space(stripe_standin, cap=10)
    still_open, paid, expired, not_yet = (buy(UserFactory(), space).ticket for _ in range(4))
    stripe_standin.pay(paid.checkout_session_id)
    stripe_standin.expire(expired.checkout_session_id)
    time_up(still_open, paid, expired)

    # when
    outcome = tasks.holds_sweep_task.delay().result

    # then: the open one is expired at Stripe and released, the paid one is paid, the expired one released
    states = dict(Ticket.objects.values_list("pk", "state"))
    assert states == {
        still_open.pk: TicketState.RELEASED,
        paid.pk: TicketState.PAID,
        expired.pk: TicketState.RELEASED,
        not_yet.pk: TicketState.HELD,
    }
    assert stripe_standin.session(still_open.checkout_session_id)["status"] == "expired"
    assert outcome == {"checked": 3, "errors": 0, "refunds_requeued": 0}
    # and the seats came back
    assert buy(UserFactory(), space).created is True


def test_a_hold_whose_checkout_never_opened_is_released(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    ticket = Ticket.objects.create(
        space=space,
        buyer=UserFactory(),
        amount_minor=500,
        currency="usd",
        application_fee_minor=15,
        created_at=timezone.now() - timedelta(hours=1),
        held_until=timezone.now() - timedelta(minutes=1),
    )

    tasks.holds_sweep_task.delay()

    ticket.refresh_from_db()
    assert (ticket.state, ticket.release_reason) == (TicketState.RELEASED, "no_checkout")
    assert stripe_standin.calls("GET", "/v1/checkout/sessions/") == []


def test_when_stripe_does_not_answer_the_sweep_leaves_the_hold_for_next_time(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    ticket = buy(UserFactory(), space).ticket
    time_up(ticket)
    stripe_standin.fail_next("GET", "/v1/checkout/sessions/")

    first = tasks.holds_sweep_task.delay().result
    second = tasks.holds_sweep_task.delay().result

    assert (first["errors"], second["errors"]) == (1, 0)
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.RELEASED


def test_the_sweep_queues_again_a_refund_whose_task_was_lost(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    ticket = buy_and_pay(stripe_standin, UserFactory(), space)
    refund = Refund.objects.create(
        ticket=ticket, idempotency_key=f"refund-{ticket.pk}", reason="space_cancelled", amount_minor=500, currency="usd"
    )
    Refund.objects.filter(pk=refund.pk).update(created_at=timezone.now() - timedelta(hours=1))

    outcome = tasks.holds_sweep_task.delay().result

    assert outcome["refunds_requeued"] == 1
    assert Refund.objects.get(pk=refund.pk).state == RefundState.SUCCEEDED
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.REFUNDED


def test_celery_beat_runs_the_sweep_every_minute():
    entry = app.conf.beat_schedule["ticketing-holds-sweep"]

    assert entry == {"task": "ticketing.tasks.holds_sweep_task", "schedule": 60.0}
    assert entry["task"] in app.tasks
