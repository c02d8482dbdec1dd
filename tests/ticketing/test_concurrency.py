"""Seats never oversell on PostgreSQL: buyers race for the last seats with real threads, each on its own connection."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from tests.factories import UserFactory
from tests.ticketing.scene import buy, deliver, make_ticketed_space
from ticketing.errors import SoldOut
from ticketing.models import Ticket, TicketState, WebhookEvent
from ticketing.selectors import seats_taken
from ticketing.services import CheckoutStart

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# Threads racing at any moment, each with its own database connection: PostgreSQL here allows
# 100 connections in all (SHOW max_connections), shared with other test runs, so 300 buyers
# are queued at once onto this many threads rather than given 300 connections.
RACERS = 40


def race(calls) -> list:
    """Queue every call at once on RACERS threads released together; each result or exception, in order."""
    go = threading.Event()

    def run(call):
        go.wait(timeout=30)
        try:
            return call()
        except Exception as error:  # noqa: BLE001 - the test inspects what each buyer was told
            return error
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        futures = [pool.submit(run, call) for call in calls]
        go.set()
        return [future.result(timeout=120) for future in futures]


def test_300_buyers_for_50_seats_hold_exactly_50_and_after_40_paid_and_10_expired_exactly_10_more_buy(stripe_standin):
    # given: 50 seats, 300 buyers
    space = make_ticketed_space(stripe_standin, cap=50)
    buyers = UserFactory.create_batch(300)

    # when: all 300 start a checkout at once
    results = race([lambda buyer=buyer: buy(buyer, space) for buyer in buyers])

    # then: exactly 50 hold a seat, each with its own Checkout Session; the other 250 are told it's sold out
    started = [r for r in results if isinstance(r, CheckoutStart)]
    refused = [r for r in results if not isinstance(r, CheckoutStart)]
    assert len(started) == 50 and len(refused) == 250
    assert all(isinstance(r, SoldOut) and r.status == 409 for r in refused), {type(r).__name__ for r in refused}
    assert refused[0].detail.startswith("Sold out: all 50 seats are sold or held by buyers paying right now.")
    assert Ticket.objects.filter(space=space, state=TicketState.HELD).count() == 50
    assert Ticket.objects.filter(space=space).count() == 50
    assert len({s.ticket.buyer_id for s in started}) == 50
    assert len(stripe_standin.sessions()) == 50

    # when: 40 pay and 10 let their checkout expire; Stripe's 50 events each arrive twice, all at once
    holds = [s.ticket for s in started]
    events = [stripe_standin.pay(t.checkout_session_id) for t in holds[:40]]
    events += [stripe_standin.expire(t.checkout_session_id) for t in holds[40:]]
    answers = race([lambda event=event: deliver(stripe_standin, event).status_code for event in events * 2])

    # then: 40 paid, 10 released, every event handled once
    assert answers == [200] * 100
    assert Ticket.objects.filter(space=space, state=TicketState.PAID).count() == 40
    assert Ticket.objects.filter(space=space, state=TicketState.RELEASED).count() == 10
    assert set(WebhookEvent.objects.values_list("status", "attempts", "deliveries")) == {("succeeded", 1, 2)}
    assert seats_taken(space_id=space.pk) == 40

    # when: 20 new buyers race for the 10 seats that came back
    latecomers = UserFactory.create_batch(20)
    second = race([lambda buyer=buyer: buy(buyer, space) for buyer in latecomers])

    # then: exactly 10 more, and no more after them
    assert sum(isinstance(r, CheckoutStart) for r in second) == 10
    assert sum(isinstance(r, SoldOut) for r in second) == 10
    with pytest.raises(SoldOut):
        buy(UserFactory(), space)
    assert seats_taken(space_id=space.pk) == 50
    assert Ticket.objects.filter(space=space, state__in=[TicketState.PAID, TicketState.HELD]).count() == 50


def test_one_buyer_clicking_buy_many_times_at_once_gets_one_seat_and_one_checkout(stripe_standin):
    space = make_ticketed_space(stripe_standin, cap=5)
    buyer = UserFactory()

    results = race([lambda: buy(buyer, space) for _ in range(10)])

    assert all(isinstance(r, CheckoutStart) for r in results), results
    assert len({r.ticket.pk for r in results}) == 1
    assert len({r.checkout_url for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert Ticket.objects.filter(space=space).count() == 1
    assert len(stripe_standin.sessions()) == 1
