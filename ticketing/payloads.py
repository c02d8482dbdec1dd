"""The JSON shapes of ticketing, as the API sends them."""

from ticketing.models import Ticket, TicketOffer, TicketState
from ticketing.selectors import SpaceSales


def money(minor: int, currency: str) -> str:
    return f"{minor / 100:.2f} {currency.upper()}"


def ticket_space_payload(space) -> dict:
    return {
        "id": space.pk,
        "title": space.title,
        "state": space.state,
        "url": space.get_absolute_url(),
        "scheduled_for": space.scheduled_for.isoformat() if space.scheduled_for else None,
    }


def ticket_payload(ticket: Ticket) -> dict:
    return {
        "id": ticket.pk,
        "space": ticket_space_payload(ticket.space),
        "state": ticket.state,
        "amount_minor": ticket.amount_minor,
        "currency": ticket.currency,
        "checkout_url": (ticket.checkout_url or None) if ticket.state == TicketState.HELD else None,
        "held_until": ticket.held_until.isoformat() if ticket.held_until else None,
        "created_at": ticket.created_at.isoformat(),
        "paid_at": ticket.paid_at.isoformat() if ticket.paid_at else None,
        "refunded_at": ticket.refunded_at.isoformat() if ticket.refunded_at else None,
    }


def offer_payload(offer: TicketOffer, *, seats_left: int, on_sale: bool) -> dict:
    return {
        "space_id": offer.space_id,
        "price_minor": offer.price_minor,
        "currency": offer.currency,
        "price": money(offer.price_minor, offer.currency),
        "cap": offer.cap,
        "seats_left": seats_left,
        "on_sale": on_sale,
        "seller": offer.seller.user.username,
    }


def sales_payload(sales: SpaceSales) -> dict:
    return {
        "space": ticket_space_payload(sales.space),
        "currency": sales.offer.currency,
        "price_minor": sales.offer.price_minor,
        "cap": sales.offer.cap,
        "paid": sales.paid,
        "held": sales.held,
        "refunded": sales.refunded,
        "seats_left": sales.seats_left,
        "gross_minor": sales.gross_minor,
        "fees_minor": sales.fees_minor,
        "net_minor": sales.net_minor,
        "refunded_minor": sales.refunded_minor,
    }
