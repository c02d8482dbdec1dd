"""Pages and API: price and seats on the space page, Buy → Checkout → success → the space,
my tickets, the creator's sales and payouts, the host's offer form, and the admin."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from rooms import services as rooms_services
from rooms.models import Space
from tests.factories import UserFactory
from tests.rooms.scene import make_host
from tests.ticketing.scene import buy, buy_and_pay, deliver, make_seller, make_ticketed_space
from ticketing.models import Ticket, TicketState

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_space_page_shows_price_and_seats_left_and_a_buy_button_that_goes_to_checkout(stripe_standin):
    space = make_ticketed_space(stripe_standin, price_minor=750, cap=3)
    buy(UserFactory(), space)
    visitor_page = Client().get(f"/spaces/{space.pk}/").content.decode()
    buyer = signed_in(UserFactory())

    page = buyer.get(f"/spaces/{space.pk}/").content.decode()
    to_checkout = buyer.post(f"/spaces/{space.pk}/tickets/buy/")
    after = buyer.get(f"/spaces/{space.pk}/").content.decode()

    assert "<strong data-ticket-price>7.50 USD</strong>" in page
    assert "<span data-seats-left>2</span> of 3 seats left" in page
    assert "Buy ticket · 7.50 USD" in page
    assert "Log in to buy a ticket" in visitor_page
    ticket = Ticket.objects.latest("pk")
    assert to_checkout.status_code == 303
    assert to_checkout["Location"] == ticket.checkout_url == f"{stripe_standin.url}/c/pay/{ticket.checkout_session_id}"
    assert "A seat is held for you until you pay." in after and "<span data-seats-left>1</span>" in after


def test_a_sold_out_space_says_so_and_buying_tells_why(stripe_standin):
    space = make_ticketed_space(stripe_standin, cap=1)
    buy(UserFactory(), space)
    buyer = signed_in(UserFactory())

    page = buyer.get(f"/spaces/{space.pk}/").content.decode()
    refused = buyer.post(f"/spaces/{space.pk}/tickets/buy/", follow=True).content.decode()

    assert "Sold out." in page and "Buy ticket" not in page
    assert "Sold out: all 1 seats are sold or held by buyers paying right now." in refused


def test_the_success_page_confirms_the_ticket_and_leads_to_the_space(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    buyer = UserFactory()
    start = buy(buyer, space)
    deliver(stripe_standin, stripe_standin.pay(start.ticket.checkout_session_id))

    page = signed_in(buyer).get(f"/tickets/checkout/success/?session_id={start.ticket.checkout_session_id}")

    html = page.content.decode()
    assert page.status_code == 200
    assert "You're in" in html and 'data-ticket-state="paid"' in html
    assert f'href="/spaces/{space.pk}/">Go to the space</a>' in html


def test_the_success_page_asks_stripe_when_the_webhook_is_late(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    buyer = UserFactory()
    start = buy(buyer, space)
    stripe_standin.pay(start.ticket.checkout_session_id)  # no webhook delivered

    page = signed_in(buyer).get(f"/tickets/checkout/success/?session_id={start.ticket.checkout_session_id}")

    assert 'data-ticket-state="paid"' in page.content.decode()
    assert Ticket.objects.get(pk=start.ticket.pk).state == TicketState.PAID


def test_nobody_sees_someone_elses_checkout(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    start = buy(UserFactory(), space)

    page = signed_in(UserFactory()).get(f"/tickets/checkout/success/?session_id={start.ticket.checkout_session_id}")

    assert page.status_code == 404


def test_my_tickets_lists_paid_and_held_tickets_but_not_released_attempts(stripe_standin):
    buyer = UserFactory()
    paid_space = make_ticketed_space(stripe_standin)
    held_space = make_ticketed_space(stripe_standin, seller=paid_space.host)
    expired_space = make_ticketed_space(stripe_standin, seller=paid_space.host)
    paid = buy_and_pay(stripe_standin, buyer, paid_space)
    held = buy(buyer, held_space).ticket
    gone = buy(buyer, expired_space).ticket
    deliver(stripe_standin, stripe_standin.expire(gone.checkout_session_id))
    browser = signed_in(buyer)

    page = browser.get("/tickets/").content.decode()
    api = browser.get("/api/me/tickets/").json()

    assert f'data-ticket="{paid.pk}"' in page and f'data-ticket="{held.pk}"' in page
    assert f'data-ticket="{gone.pk}"' not in page
    assert "Finish paying" in page
    assert [(t["id"], t["state"]) for t in api] == [(held.pk, "held"), (paid.pk, "paid")]
    assert api[0]["checkout_url"] == held.checkout_url and api[1]["checkout_url"] is None
    assert 'href="/tickets/">My tickets</a>' in page


def test_the_creator_sees_sales_and_payouts_for_each_space(stripe_standin, settings):
    # given: 3 paid at 20.00 (one then refunded) and 1 held, with a 30.00 tier so the third sale straddles it
    settings.SPACES_TICKET_FEE_TIER_MINOR = 5000
    space = make_ticketed_space(stripe_standin, price_minor=2000, cap=10)
    tickets = [buy_and_pay(stripe_standin, UserFactory(), space) for _ in range(3)]
    buy(UserFactory(), space)
    deliver(stripe_standin, stripe_standin.refund_in_dashboard(tickets[0].payment_intent_id))
    creator = signed_in(space.host)

    sales = creator.get("/api/me/sales/").json()
    page = creator.get("/tickets/selling/").content.decode()

    # fees: 3 % of 20.00 = 0.60, 0.60, then 3 % of 10.00 + 20 % of 10.00 = 2.30; the refunded first one drops out
    assert [t.application_fee_minor for t in tickets] == [60, 60, 230]
    (row,) = sales
    figures = ("paid", "held", "refunded", "seats_left", "gross_minor", "fees_minor", "net_minor", "refunded_minor")
    assert [row[k] for k in figures] == [2, 1, 1, 7, 4000, 290, 3710, 2000]
    assert "<td data-gross>40.00 USD</td>" in page
    assert "<td data-fees>2.90 USD</td>" in page
    assert "<td data-net>37.10 USD</td>" in page


def scheduled(host, title: str):
    return rooms_services.space_create(host=host, title=title, scheduled_for=timezone.now() + timedelta(days=1))


def test_the_host_of_a_scheduled_space_puts_it_on_sale_from_its_page(stripe_standin):
    seller = make_seller(stripe_standin)
    space = scheduled(seller, "Page sale")
    host = signed_in(seller)

    form = host.get(f"/spaces/{space.pk}/").content.decode()
    done = host.post(
        f"/spaces/{space.pk}/tickets/offer/", {"price": "12.50", "currency": "eur", "cap": "40"}, follow=True
    ).content.decode()

    assert "Sell tickets to this space" in form and "Put tickets on sale" in form
    assert "Tickets are on sale: 40 seats at 12.50 EUR." in done
    assert "<strong data-ticket-price>12.50 EUR</strong>" in done


def test_a_host_who_may_not_sell_sees_why_on_the_space_page(stripe_standin):
    host = make_host(followers=20)
    space = scheduled(host, "Not yet")

    page = signed_in(host).get(f"/spaces/{space.pk}/").content.decode()

    assert "Selling tickets needs at least 1000 followers (you have 20);" in page
    assert "Put tickets on sale" not in page


def test_the_buy_api_answers_201_then_200_with_the_same_checkout_then_the_ticket(stripe_standin, api):
    space = make_ticketed_space(stripe_standin)
    buyer = UserFactory()
    api.force_authenticate(buyer)
    url = f"/api/spaces/{space.pk}/tickets/"

    first = api.post(url)
    again = api.post(url)
    deliver(
        stripe_standin, stripe_standin.pay(first.json()["ticket"]["id"] and Ticket.objects.get().checkout_session_id)
    )
    paid = api.post(url)

    assert first.status_code == 201 and first.json()["created"] is True
    assert first.json()["checkout_url"].startswith(f"{stripe_standin.url}/c/pay/cs_test_")
    assert (again.status_code, again.json()["checkout_url"]) == (200, first.json()["checkout_url"])
    assert (paid.status_code, paid.json()["checkout_url"], paid.json()["ticket"]["state"]) == (200, None, "paid")
    (call,) = stripe_standin.calls("POST", "/v1/checkout/sessions")
    assert call.params["success_url"] == "http://testserver/tickets/checkout/success/?session_id={CHECKOUT_SESSION_ID}"
    assert call.params["cancel_url"] == f"http://testserver/spaces/{space.pk}/"


def test_a_new_checkout_is_answered_with_the_space_as_read_for_the_hold_and_no_second_read(stripe_standin, api):
    space = make_ticketed_space(stripe_standin)
    api.force_authenticate(UserFactory())

    with CaptureQueriesContext(connection) as queries:
        created = api.post(f"/api/spaces/{space.pk}/tickets/")

    assert created.status_code == 201
    assert created.json()["ticket"]["space"] == {
        "id": space.pk,
        "title": space.title,
        "state": "scheduled",
        "url": f"/spaces/{space.pk}/",
        "scheduled_for": space.scheduled_for.isoformat(),
    }
    space_table = Space._meta.db_table
    reads_of_space = [
        q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT") and space_table in q["sql"]
    ]
    assert len(reads_of_space) == 1, reads_of_space  # the facts the seat was held on


def test_the_buy_api_errors_are_json_with_code_and_detail(stripe_standin, api, settings):
    space = make_ticketed_space(stripe_standin, cap=1)
    plain = make_ticketed_space(stripe_standin, seller=space.host)
    buy(UserFactory(), space)

    anonymous = api.post(f"/api/spaces/{space.pk}/tickets/")
    api.force_authenticate(UserFactory())
    sold_out = api.post(f"/api/spaces/{space.pk}/tickets/")
    missing = api.post("/api/spaces/999999/tickets/")
    settings.STRIPE_SECRET_KEY = ""
    unavailable = api.post(f"/api/spaces/{plain.pk}/tickets/")

    assert anonymous.status_code == 401
    assert (sold_out.status_code, sold_out.json()["code"]) == (409, "sold_out")
    assert sold_out.json()["detail"].startswith("Sold out: all 1 seats")
    assert (missing.status_code, missing.json()["code"]) == (404, "space_not_found")
    assert unavailable.status_code == 503
    assert unavailable.json() == {
        "code": "payments_unavailable", "detail": "Payments are not set up on this site yet (no Stripe key).",
    }  # fmt: skip


def test_admin_lists_orders_tickets_refunds_webhook_events_and_accounts_with_filters(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    ticket = buy_and_pay(stripe_standin, UserFactory(username="payer"), space)
    admin = signed_in(UserFactory(is_staff=True, is_superuser=True))

    pages = {
        url: admin.get(url)
        for url in (
            "/admin/ticketing/ticket/?state__exact=paid",
            f"/admin/ticketing/ticket/{ticket.pk}/change/",
            "/admin/ticketing/refund/?state__exact=failed",
            "/admin/ticketing/webhookevent/?status__exact=succeeded",
            "/admin/ticketing/creatoraccount/",
            "/admin/ticketing/ticketoffer/",
        )
    }

    assert {url: page.status_code for url, page in pages.items()} == dict.fromkeys(pages, 200)
    listing = pages["/admin/ticketing/ticket/?state__exact=paid"].content.decode()
    assert "payer" in listing and "5.00 USD" in listing and "0.15 USD" in listing
    assert (
        "checkout.session.completed" in pages["/admin/ticketing/webhookevent/?status__exact=succeeded"].content.decode()
    )


def test_the_success_page_waits_politely_when_neither_the_webhook_nor_stripe_answers(stripe_standin):
    space = make_ticketed_space(stripe_standin)
    buyer = UserFactory()
    start = buy(buyer, space)
    stripe_standin.pay(start.ticket.checkout_session_id)
    stripe_standin.fail_next("GET", "/v1/checkout/sessions/")

    page = signed_in(buyer).get(f"/tickets/checkout/success/?session_id={start.ticket.checkout_session_id}")

    html = page.content.decode()
    assert page.status_code == 200
    assert "Confirming your payment…" in html and '<meta http-equiv="refresh" content="3">' in html
    assert Ticket.objects.get(pk=start.ticket.pk).state == TicketState.HELD
