"""Set-up for ticketing tests: an eligible creator onboarded at the Stripe stand-in, a ticketed space, buyers."""

import contextlib
import socket
import threading
from datetime import timedelta

from django.test import Client
from django.utils import timezone

from accounts.models import User
from rooms import services as rooms_services
from rooms.models import Space, SpaceState
from tests.factories import UserFactory
from ticketing import services
from ticketing.models import Ticket
from ticketing.stripe_standin import StripeStandin

SUCCESS_URL = "http://testserver/tickets/checkout/success/?session_id={CHECKOUT_SESSION_ID}"
RETURN_URL = "http://testserver/tickets/selling/onboarding/return/"
REFRESH_URL = "http://testserver/tickets/selling/onboarding/refresh/"


def hosted_before(user: User, count: int, *, days_ago: int = 2) -> None:
    """`count` spaces `user` hosted (started and ended) `days_ago` days ago (set-up, not a product path)."""
    started = timezone.now() - timedelta(days=days_ago)
    Space.objects.bulk_create(
        Space(host=user, title=f"Earlier {n}", state=SpaceState.ENDED, started_at=started, ended_at=started)
        for n in range(count)
    )


def onboard(standin: StripeStandin, user: User) -> str:
    """Take `user` through Stripe Connect onboarding at the stand-in; returns their account id."""
    services.creator_onboarding_link(user=user, return_url=RETURN_URL, refresh_url=REFRESH_URL)
    account_id = user.creator_account.stripe_account_id
    standin.complete_onboarding(account_id)
    services.creator_account_sync(stripe_account_id=account_id)
    return account_id


def make_seller(standin: StripeStandin, **fields) -> User:
    """A creator who may sell tickets: 1000 followers, 3 spaces hosted in the last 30 days, onboarded."""
    seller = UserFactory(followers=1000, **fields)
    hosted_before(seller, 3)
    onboard(standin, seller)
    return User.objects.get(pk=seller.pk)


def make_ticketed_space(
    standin: StripeStandin, *, seller: User | None = None, price_minor: int = 500, currency: str = "usd", cap: int = 50
) -> Space:
    seller = seller or make_seller(standin)
    space = rooms_services.space_create(
        host=seller, title="Ticketed talk", scheduled_for=timezone.now() + timedelta(days=1)
    )
    services.space_ticketing_set(actor=seller, space_id=space.pk, price_minor=price_minor, currency=currency, cap=cap)
    return Space.objects.select_related("host").get(pk=space.pk)


def buy(buyer: User, space: Space) -> services.CheckoutStart:
    return services.checkout_start(
        buyer=buyer, space_id=space.pk, success_url=SUCCESS_URL, cancel_url=f"http://testserver/spaces/{space.pk}/"
    )


def buy_and_pay(standin: StripeStandin, buyer: User, space: Space) -> Ticket:
    """Buy, pay at the stand-in's Checkout, and let the webhook turn the hold into a paid ticket."""
    start = buy(buyer, space)
    deliver(standin, standin.pay(start.ticket.checkout_session_id))
    return Ticket.objects.get(pk=start.ticket.pk)


def deliver(standin: StripeStandin, event: dict, *, client: Client | None = None, secret: str | None = None):
    """Post `event` to our webhook endpoint, signed as Stripe signs it; returns the response."""
    body, signature = standin.signed(event, secret=secret)
    return (client or Client()).post(
        "/stripe/webhook/", data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


class HangingStripe:
    """A TCP server that accepts every connection, reads what comes and never answers."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.socket.accept()
            except OSError:
                return
            self.accepted.append(conn)  # kept open, never answered

    def close(self) -> None:
        # On Linux a close alone doesn't wake the thread blocked in accept(); a shutdown does.
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()
        for conn in self.accepted:
            conn.close()
