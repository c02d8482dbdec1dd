"""Demo payments, as `make run` serves them: the Stripe stand-in beside the site (its objects kept in a
file), the demo data seeded through it, and a newcomer who buys a ticket through the demo Checkout,
gets into the space, and is refunded by staff from the admin. Every payment page says so."""

import os
import secrets

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connections
from playwright.sync_api import expect

from rooms import services as rooms_services
from rooms.models import Space, SpaceState
from tests.live_server_asgi import AsgiLiveServer
from tests.ticketing.test_browser import off_the_browser_thread
from ticketing.models import Ticket, TicketState
from ticketing.stripe_standin import StripeStandin
from workflows.demo_payments import TICKETED_TITLE
from workflows.management.commands.seed_demo import ADMIN_PASSWORD, DEMO_PASSWORD

WAIT_MS = 10_000
DEMO = "Demo payments — no real money"


def log_in(chromium, url: str, username: str, password: str):
    context = chromium.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/")
    return page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_newcomer_buys_a_demo_ticket_gets_in_and_staff_refund_it(settings, tmp_path, request):
    # given: the stand-in as `make run` starts it, and the demo data seeded through it
    with StripeStandin(state_file=tmp_path / "stripe-standin.json") as standin:
        settings.SPACES_DEMO_PAYMENTS = True
        settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE = standin.api_key, standin.url
        settings.STRIPE_WEBHOOK_SECRETS = [standin.webhook_secret]
        with open(os.devnull, "w") as quiet:
            call_command("seed_demo", stdout=quiet)
        space = Space.objects.get(title=TICKETED_TITLE)
        assert Ticket.objects.get(space=space, buyer__username="alex").state == TicketState.PAID
        assert (tmp_path / "stripe-standin.json").exists()

        env = {
            "DJANGO_SETTINGS_MODULE": "spaces_site.settings_test",  # its fast hasher: the seed's passwords
            "DEBUG": "1",
            "SPACES_DEMO_PAYMENTS": "1",
            "SPACES_DEMO_STRIPE_PORT": str(standin.server.server_address[1]),
            "STRIPE_SECRET_KEY": "",
        }
        databases = {alias: connections[alias].settings_dict for alias in connections}
        with AsgiLiveServer(databases, env=env) as site:
            standin.webhook_url = f"{site.url}/stripe/webhook/"
            chromium = request.getfixturevalue("chromium")

            # when: leo, new here, opens the ticketed space and buys a seat
            leo = log_in(chromium, site.url, "leo", DEMO_PASSWORD)
            leo.goto(f"{site.url}/spaces/{space.pk}/")
            expect(leo.locator("#tickets [data-demo-payments]")).to_contain_text(DEMO)
            leo.get_by_role("button", name="Buy ticket · 5.00 USD").click()

            # then: the demo Checkout says it is one, and paying brings them back with a ticket
            leo.wait_for_url(f"{standin.url}/c/pay/*")
            expect(leo.get_by_text(DEMO)).to_be_visible()
            leo.get_by_role("button", name="Pay 5.00 USD").click()
            leo.wait_for_url(f"{site.url}/tickets/checkout/success/*")
            expect(leo.locator("h1")).to_have_text("You're in 🎟")
            expect(leo.locator("[data-demo-payments]")).to_contain_text(DEMO)
            ticket = Ticket.objects.get(space=space, buyer__username="leo")
            assert ticket.state == TicketState.PAID
            leo.goto(f"{site.url}/tickets/")
            expect(leo.locator("[data-demo-payments]")).to_contain_text(DEMO)

            # when: maya ends the space she is live in and starts the ticketed one
            live = Space.objects.get(host__username="maya", state=SpaceState.LIVE)
            off_the_browser_thread(lambda: rooms_services.space_end(actor=live.host, space_id=live.pk))
            off_the_browser_thread(lambda: rooms_services.space_start(actor=space.host, space_id=space.pk))

            # then: leo gets in, over the space's websocket
            leo.goto(f"{site.url}/spaces/{space.pk}/")
            leo.get_by_role("button", name="✋ Request to speak").wait_for()

            # when: staff refund the ticket from the admin
            admin = log_in(chromium, site.url, "admin", ADMIN_PASSWORD)
            admin.goto(f"{site.url}/admin/ticketing/ticket/?q=leo")
            admin.locator(f"input[name=_selected_action][value='{ticket.pk}']").check()
            admin.select_option("select[name=action]", "refund")
            admin.get_by_role("button", name="Go").click()
            expect(admin.locator(".messagelist")).to_contain_text(f"Refund requested for ticket(s) {ticket.pk}")

            # then: the money goes back through the stand-in, and leo's entry ends at once
            expect(leo.locator("#status")).to_contain_text("refunded", timeout=WAIT_MS)
            ticket.refresh_from_db()
            assert ticket.state == TicketState.REFUNDED
            assert [r["payment_intent"] for r in standin.refunds()] == [ticket.payment_intent_id]
        connections.close_all()


def test_demo_payments_never_run_with_real_keys_or_in_production(monkeypatch):
    import importlib

    import spaces_site.settings as site_settings

    try:
        # with a real key, the demo switch is ignored
        monkeypatch.setenv("DEBUG", "1")
        monkeypatch.setenv("SPACES_DEMO_PAYMENTS", "1")
        monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_real")
        reloaded = importlib.reload(site_settings)
        assert not reloaded.SPACES_DEMO_PAYMENTS and reloaded.STRIPE_SECRET_KEY == "sk_live_real"
        # and with DEBUG off, asking for it is refused at start
        monkeypatch.delenv("STRIPE_SECRET_KEY")
        monkeypatch.setenv("DEBUG", "0")
        monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(64))
        with pytest.raises(ImproperlyConfigured, match="never production"):
            importlib.reload(site_settings)
    finally:
        monkeypatch.undo()
        importlib.reload(site_settings)
