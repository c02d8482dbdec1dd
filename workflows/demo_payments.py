"""Ticketing in the demo (`make run`, SPACES_DEMO_PAYMENTS): a creator who may sell, a ticketed space
with seats left and a buyer who holds a ticket.

Made through the same services and the same `stripe` client as real sales,
against the project's Stripe stand-in (ticketing/stripe_standin.py) that
`make run` starts: the creator finishes Connect onboarding and the buyer pays
on the stand-in's own pages, as a person would, and the site then reads both
back from "Stripe" as its return pages do (the stand-in's webhooks can't
reach a site that isn't serving yet).
"""

import http.client
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from accounts.models import User
from rooms.models import Space
from rooms.services import space_create, space_end
from ticketing.services import (
    checkout_session_sync,
    checkout_start,
    creator_account_sync,
    creator_onboarding_link,
    space_ticketing_set,
)

PAST_SPACES = ("Portfolio teardown", "Design systems AMA")
TICKETED_TITLE = "Portfolio reviews, live (ticketed)"
PRICE_MINOR, CURRENCY, CAP = 500, "usd", 50


def _press(url: str) -> None:
    """Press the button on one of the stand-in's pages (a form posting to its own address); its answer
    sends the browser back to the site, which isn't serving yet, so that redirect isn't followed."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("POST", parts.path, body=b"")
        answer = connection.getresponse()
        if answer.status != 303:
            raise RuntimeError(f"The Stripe stand-in answered {answer.status} at {url}.")
    finally:
        connection.close()


def past_spaces(host: User) -> None:
    """Spaces the creator hosted this month: the ticketed-hosting rule counts them."""
    for days_ago, title in enumerate(PAST_SPACES, start=3):
        space = space_create(host=host, title=title, topics=["design"])
        space_end(actor=host, space_id=space.pk)
        started = timezone.now() - timedelta(days=days_ago)
        Space.objects.filter(pk=space.pk).update(started_at=started, ended_at=started + timedelta(hours=1))


def ticketed_space(creator: User, buyer: User) -> Space:
    """Connect finished for the creator, a ticketed space of theirs tomorrow, and the buyer's paid ticket."""
    site = settings.SITE_URL
    _press(creator_onboarding_link(user=creator, return_url=f"{site}/tickets/selling/", refresh_url=f"{site}/"))
    creator_account_sync(stripe_account_id=creator.creator_account.stripe_account_id)
    space = space_create(
        host=creator,
        title=TICKETED_TITLE,
        topics=["design", "careers"],
        scheduled_for=timezone.now() + timedelta(days=1, hours=4),
    )
    space_ticketing_set(actor=creator, space_id=space.pk, price_minor=PRICE_MINOR, currency=CURRENCY, cap=CAP)
    bought = checkout_start(
        buyer=buyer, space_id=space.pk, success_url=f"{site}/tickets/", cancel_url=f"{site}{space.get_absolute_url()}"
    )
    _press(bought.checkout_url)
    checkout_session_sync(session_id=bought.ticket.checkout_session_id)
    return space
