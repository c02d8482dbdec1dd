"""Making a space ticketed: only an eligible host, only before it's live, price 1.00 to 999.00, a cap."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from rooms import services as rooms_services
from rooms.models import Space
from tests.factories import UserFactory
from tests.rooms.scene import make_host
from tests.ticketing.scene import buy, make_seller, make_ticketed_space
from ticketing.models import TicketOffer

pytestmark = pytest.mark.django_db


def scheduled_space(host):
    return rooms_services.space_create(host=host, title="Soon", scheduled_for=timezone.now() + timedelta(hours=2))


def test_an_eligible_host_puts_a_scheduled_space_on_sale(stripe_standin, api):
    seller = make_seller(stripe_standin)
    space = scheduled_space(seller)
    api.force_authenticate(seller)

    answer = api.put(f"/api/spaces/{space.pk}/ticketing/", {"price_minor": 999, "currency": "USD", "cap": 25})

    assert answer.status_code == 200
    assert answer.json() == {
        "space_id": space.pk,
        "price_minor": 999,
        "currency": "usd",
        "price": "9.99 USD",
        "cap": 25,
        "seats_left": 25,
        "on_sale": True,
        "seller": seller.username,
    }
    assert Space.objects.get(pk=space.pk).is_ticketed is True
    assert api.get(f"/api/spaces/{space.pk}/")["Content-Type"] == "application/json"
    assert api.get(f"/api/spaces/{space.pk}/").json()["is_ticketed"] is True
    entry = AuditEntry.objects.get(action="ticketing.offer.created")
    assert entry.details == {"price_minor": 999, "currency": "usd", "cap": 25}


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        ({"price_minor": 99, "currency": "usd", "cap": 5}, "bad_price", "A ticket costs from 1.00 USD to 999.00 USD"),
        ({"price_minor": 99901, "currency": "usd", "cap": 5}, "bad_price", "99901 is outside"),
        ({"price_minor": 500, "currency": "jpy", "cap": 5}, "bad_currency", "Tickets are sold in USD, EUR, GBP"),
        ({"price_minor": 500, "currency": "usd", "cap": 0}, "bad_cap", "The ticket cap is from 1 to 100000 seats."),
        ({"price_minor": "five", "currency": "usd", "cap": 5}, "invalid", "price_minor: A valid integer is required."),
        ({"currency": "usd", "cap": 5}, "invalid", "price_minor: This field is required."),
    ],
)
def test_bad_offers_are_400_with_the_rule(stripe_standin, api, body, code, detail):
    seller = make_seller(stripe_standin)
    space = scheduled_space(seller)
    api.force_authenticate(seller)

    answer = api.put(f"/api/spaces/{space.pk}/ticketing/", body, format="json")

    assert answer.status_code == 400
    assert answer.json()["code"] == code
    assert detail in answer.json()["detail"]
    assert not TicketOffer.objects.exists()
    assert Space.objects.get(pk=space.pk).is_ticketed is False


def test_the_price_bounds_themselves_are_allowed(stripe_standin):
    seller = make_seller(stripe_standin)

    cheapest = make_ticketed_space(stripe_standin, seller=seller, price_minor=100)
    dearest = make_ticketed_space(stripe_standin, seller=seller, price_minor=99900)

    assert (cheapest.ticket_offer.price_minor, dearest.ticket_offer.price_minor) == (100, 99900)


def test_a_host_who_may_not_sell_tickets_gets_403_saying_why(stripe_standin, api):
    host = make_host(followers=50)
    space = scheduled_space(host)
    api.force_authenticate(host)

    answer = api.put(f"/api/spaces/{space.pk}/ticketing/", {"price_minor": 500, "currency": "usd", "cap": 5})

    assert answer.status_code == 403
    assert answer.json()["code"] == "ticketed_hosting_not_eligible"
    assert answer.json()["detail"].startswith("Selling tickets needs at least 1000 followers (you have 50); ")
    assert not TicketOffer.objects.exists()


def test_only_the_host_and_only_before_the_space_is_live(stripe_standin, api):
    seller, other = make_seller(stripe_standin), make_seller(stripe_standin)
    space = scheduled_space(seller)
    live = rooms_services.space_create(host=other, title="Now")
    body = {"price_minor": 500, "currency": "usd", "cap": 5}

    api.force_authenticate(other)
    not_host = api.put(f"/api/spaces/{space.pk}/ticketing/", body)
    already_live = api.put(f"/api/spaces/{live.pk}/ticketing/", body)

    assert (not_host.status_code, not_host.json()["code"]) == (403, "not_host")
    assert (already_live.status_code, already_live.json()["code"]) == (409, "not_scheduled")
    assert already_live.json()["detail"] == (
        "Tickets are sold only for a scheduled space, before it goes live; this one is live."
    )
    assert not TicketOffer.objects.exists()


def test_once_seats_are_taken_the_price_stays_and_the_cap_cannot_go_below_them(stripe_standin, api):
    space = make_ticketed_space(stripe_standin, cap=5)
    buy(UserFactory(), space)
    buy(UserFactory(), space)
    api.force_authenticate(space.host)
    url = f"/api/spaces/{space.pk}/ticketing/"

    new_price = api.put(url, {"price_minor": 700, "currency": "usd", "cap": 5})
    too_small = api.put(url, {"price_minor": 500, "currency": "usd", "cap": 1})
    bigger = api.put(url, {"price_minor": 500, "currency": "usd", "cap": 8})

    assert (new_price.status_code, new_price.json()["code"]) == (409, "offer_locked")
    assert (too_small.status_code, too_small.json()["code"]) == (400, "cap_below_taken")
    assert (bigger.status_code, bigger.json()["cap"], bigger.json()["seats_left"]) == (200, 8, 6)


def test_anyone_reads_an_offer_and_a_space_without_one_is_404(stripe_standin, api):
    space = make_ticketed_space(stripe_standin, cap=3)

    offer = api.get(f"/api/spaces/{space.pk}/ticketing/")
    none = api.get(f"/api/spaces/{scheduled_space(make_host()).pk}/ticketing/")

    assert offer.status_code == 200 and offer.json()["seats_left"] == 3
    assert none.status_code == 404
    assert none.json() == {"code": "not_ticketed", "detail": "This space doesn't sell tickets."}
