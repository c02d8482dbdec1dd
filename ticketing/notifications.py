"""Telling buyers what happened to their tickets.

Email through Django's email backend for now; the in-app notifications of the
scheduling issue will join here, so callers keep calling these functions.
"""

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

from ticketing.models import Ticket


def notify_ticket_refunded(*, ticket: Ticket) -> bool:
    """Email the buyer that their ticket was refunded. Returns False when they have no address."""
    buyer = ticket.buyer
    if not buyer.email:
        return False
    context = {"ticket": ticket, "space": ticket.space, "buyer": buyer, "site_url": settings.SITE_URL}
    send_mail(
        subject=f"Refunded: your ticket to “{ticket.space.title}”",
        message=render_to_string("ticketing/email/ticket_refunded.txt", context),
        from_email=None,
        recipient_list=[buyer.email],
    )
    return True
