"""A buyer buys a ticket in a real browser: the space page's Buy button, the Stripe stand-in's Checkout
page, our success page, and into the space once it is live. The site runs under daphne in a child
process that talks to the same stand-in, which signs and posts the webhook as Stripe would."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections
from playwright.sync_api import expect

from rooms import services as rooms_services
from rooms.models import Participant, Role
from tests.factories import PASSWORD, UserFactory
from tests.ticketing.scene import make_ticketed_space
from ticketing.models import Ticket, TicketState, WebhookEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_MS = 10_000


@pytest.fixture
def site(stripe_standin, monkeypatch, request, chromium):
    """The live site, configured (through its environment) to use the stand-in; the stand-in posts webhooks to it.

    It comes after `chromium`, so its teardown closes the test's database connection while Playwright still
    holds this thread's context (the connection the test's ORM calls used is the one in that context)."""
    monkeypatch.setenv("STRIPE_API_BASE", stripe_standin.url)
    monkeypatch.setenv("STRIPE_SECRET_KEY", stripe_standin.api_key)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", stripe_standin.webhook_secret)
    server = request.getfixturevalue("asgi_live_server")
    stripe_standin.webhook_url = f"{server.url}/stripe/webhook/"
    yield server
    connections.close_all()


def off_the_browser_thread(call):
    """Run a service on its own thread: Playwright's event loop holds this one, and services send
    their events with `async_to_sync`."""

    def run():
        try:
            return call()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result(timeout=30)


def log_in(chromium, site, username: str):
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{site.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.url}/")
    return context, page, errors


def test_a_buyer_pays_through_checkout_and_lands_in_the_space(stripe_standin, site, chromium):
    # given: a scheduled space selling 5 seats at 5.00, and a buyer signed in
    space = make_ticketed_space(stripe_standin, price_minor=500, cap=5)
    UserFactory(username="buyer")
    UserFactory(username="nobody")
    context, page, errors = log_in(chromium, site, "buyer")

    # when: they open the space and buy
    page.goto(f"{site.url}/spaces/{space.pk}/")
    expect(page.locator("[data-ticket-price]")).to_have_text("5.00 USD")
    expect(page.locator("[data-seats-left]")).to_have_text("5")
    page.get_by_role("button", name="Buy ticket · 5.00 USD").click()

    # then: Stripe's (stand-in's) Checkout page, for this ticket
    page.wait_for_url(f"{stripe_standin.url}/c/pay/*")
    expect(page.locator("h1")).to_have_text("Ticket: Ticketed talk")
    expect(page.locator("[data-amount]")).to_have_text("5.00 USD")

    # when: they pay
    page.get_by_role("button", name="Pay 5.00 USD").click()

    # then: our success page, the ticket paid by the signed webhook, and a way into the space
    page.wait_for_url(f"{site.url}/tickets/checkout/success/?session_id=cs_test_*")
    expect(page.locator("h1")).to_have_text("You're in 🎟")
    ticket = Ticket.objects.get(space=space, buyer__username="buyer")
    assert ticket.state == TicketState.PAID
    event = WebhookEvent.objects.get(type="checkout.session.completed")
    assert event.status == "succeeded" and event.outcome == f"ticket {ticket.pk} held → paid"
    assert stripe_standin.deliveries == [(event.stripe_event_id, 200)]
    page.get_by_role("link", name="Go to the space").click()
    page.wait_for_url(f"{site.url}/spaces/{space.pk}/")
    expect(page.locator("[data-ticket-state=paid]")).to_contain_text("You have a ticket")
    expect(page.locator("[data-seats-left]")).to_have_text("4")

    # when: the host starts the space and the buyer comes back to it
    off_the_browser_thread(lambda: rooms_services.space_start(actor=space.host, space_id=space.pk))
    page.reload()

    # then: they are in, as a listener, over the space's websocket
    page.get_by_role("button", name="✋ Request to speak").wait_for()
    assert Participant.objects.get(space=space, user__username="buyer").role == Role.LISTENER

    # and someone without a ticket is kept out
    other_context, other, other_errors = log_in(chromium, site, "nobody")
    other.goto(f"{site.url}/spaces/{space.pk}/")
    expect(other.locator("#status")).to_have_text("This space needs a ticket.")
    expect(other.get_by_role("button", name="✋ Request to speak")).to_have_count(0)
    assert not Participant.objects.filter(space=space, user__username="nobody").exists()
    assert errors == other_errors == []
    context.close()
    other_context.close()
