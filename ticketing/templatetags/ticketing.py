"""`{% ticket_box space %}`: the space page's ticket block (price, seats left, Buy, or the host's offer form)."""

from django import template
from django.conf import settings
from django.utils.html import format_html

from rooms.models import SpaceState
from ticketing import selectors
from ticketing.eligibility import ticketed_hosting_eligibility
from ticketing.forms import OfferForm

register = template.Library()


@register.inclusion_tag("ticketing/_ticket_box.html", takes_context=True)
def ticket_box(context, space):
    user = context["user"]
    box = selectors.ticket_box(space=space, user=user)
    is_host = user.is_authenticated and user.pk == space.host_id
    setup = is_host and space.state == SpaceState.SCHEDULED
    initial = (
        {"price": box.offer.price_minor / 100, "currency": box.offer.currency, "cap": box.offer.cap}
        if box.offer
        else {}
    )
    return {
        "space": space,
        "box": box,
        "user": user,
        "request": context.get("request"),
        "csrf_token": context.get("csrf_token"),
        "is_host": is_host,
        "setup": setup,
        "eligibility": ticketed_hosting_eligibility(user) if setup else None,
        "form": OfferForm(initial=initial) if setup else None,
    }


@register.filter
def money(minor: int, currency: str) -> str:
    """`{{ amount|money:currency }}` → "5.00 USD"."""
    return f"{(minor or 0) / 100:.2f} {currency.upper()}"


@register.simple_tag
def demo_payments_notice() -> str:
    """On every payment page while the site runs on the Stripe stand-in (SPACES_DEMO_PAYMENTS)."""
    if not settings.SPACES_DEMO_PAYMENTS:
        return ""
    return format_html(
        '<p class="message demo-payments" role="note" data-demo-payments><strong>{}</strong> {}</p>',
        "Demo payments — no real money.",
        "This site pays through a stand-in for Stripe: no card is asked for and nobody is charged.",
    )
