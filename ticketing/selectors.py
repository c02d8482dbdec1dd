"""Reads of ticketing shared by pages, the API, the entry rule and the services.

The seat count lives here (`seats_taken`): the buying service calls it under
the offer's row lock, pages call it to show seats left.
"""

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from accounts.models import User
from rooms.models import Space, SpaceState
from ticketing.errors import TicketNotFound
from ticketing.models import SEAT_TAKING_STATES, CreatorAccount, Ticket, TicketOffer, TicketState


def creator_account_of(*, user: User) -> CreatorAccount | None:
    if not user.is_authenticated:
        return None
    return CreatorAccount.objects.filter(user=user).first()


def creator_charges_enabled(*, user: User) -> bool:
    """Has `user` finished Stripe onboarding far enough to be paid?"""
    return CreatorAccount.objects.filter(user_id=user.pk, charges_enabled=True).exists()


def holds_paid_ticket(*, user: User, space: Space) -> bool:
    """The ticket rule of `rooms.selectors.entry_decision`: a paid (not refunded) ticket to this space."""
    if not user.is_authenticated:
        return False
    return paid_ticket_space_ids(user=user).filter(space_id=space.pk).exists()


def paid_ticket_space_ids(*, user: User) -> QuerySet:
    """The ticket rule for many spaces at once: the ids of the spaces `user` (signed in) holds a paid
    ticket to, as a subquery (`rooms.selectors.replayable_spaces`, for search)."""
    return Ticket.objects.filter(buyer_id=user.pk, state=TicketState.PAID).values("space_id")


def offer_of(*, space_id: int) -> TicketOffer | None:
    return TicketOffer.objects.select_related("seller", "seller__user").filter(space_id=space_id).first()


def seats_taken(*, space_id: int) -> int:
    """Paid tickets plus held ones. Under the offer's lock this is the number that may not pass the cap."""
    return Ticket.objects.filter(space_id=space_id, state__in=SEAT_TAKING_STATES).count()


def live_ticket_of(*, space_id: int, user: User) -> Ticket | None:
    """The buyer's held or paid ticket to this space, if any (there is at most one)."""
    if not user.is_authenticated:
        return None
    return Ticket.objects.filter(space_id=space_id, buyer_id=user.pk, state__in=SEAT_TAKING_STATES).first()


def lifetime_sales_minor(*, seller: CreatorAccount, currency: str) -> int:
    """What a creator has sold in `currency`: paid tickets plus held ones (the fee basis; refunds don't count)."""
    return Ticket.objects.filter(
        space__ticket_offer__seller=seller, currency=currency, state__in=SEAT_TAKING_STATES
    ).aggregate(total=Coalesce(Sum("amount_minor"), 0))["total"]


@dataclass(frozen=True)
class TicketBox:
    """What the space page shows about tickets to this viewer."""

    offer: TicketOffer | None
    seats_left: int
    on_sale: bool
    closed_reason: str  # why it is not on sale, for people
    ticket: Ticket | None  # the viewer's held or paid ticket
    is_seller: bool


def ticket_box(*, space: Space, user: User) -> TicketBox:
    offer = offer_of(space_id=space.pk) if space.is_ticketed else None
    if offer is None:
        return TicketBox(None, 0, False, "", None, False)
    seats_left = max(offer.cap - seats_taken(space_id=space.pk), 0)
    if space.state != SpaceState.SCHEDULED:
        closed = "Ticket sales ended when the space went live." if space.state != SpaceState.CANCELLED else ""
    elif seats_left == 0:
        closed = "Sold out."
    else:
        closed = ""
    return TicketBox(
        offer=offer,
        seats_left=seats_left,
        on_sale=space.state == SpaceState.SCHEDULED and seats_left > 0,
        closed_reason=closed,
        ticket=live_ticket_of(space_id=space.pk, user=user),
        is_seller=user.is_authenticated and offer.seller.user_id == user.pk,
    )


def tickets_of(*, user: User) -> QuerySet[Ticket]:
    """A buyer's tickets, newest first, without the attempts that were released."""
    return (
        Ticket.objects.filter(buyer=user)
        .exclude(state=TicketState.RELEASED)
        .select_related("space", "space__host", "refund")
        .order_by("-created_at", "-pk")
    )


def ticket_of_checkout(*, user: User, session_id: str) -> Ticket:
    """The buyer's ticket paid through this Checkout Session (the success page), or 404."""
    ticket = Ticket.objects.select_related("space").filter(buyer=user, checkout_session_id=session_id).first()
    if ticket is None:
        raise TicketNotFound("No ticket of yours was bought in that checkout.")
    return ticket


@dataclass(frozen=True)
class SpaceSales:
    """A creator's figures for one space: tickets and money, in the offer's currency."""

    space: Space
    offer: TicketOffer
    paid: int
    held: int
    refunded: int
    gross_minor: int  # paid tickets
    fees_minor: int  # the platform's fee on them
    net_minor: int  # transferred to the creator's Stripe account
    refunded_minor: int

    @property
    def seats_left(self) -> int:
        return max(self.offer.cap - self.paid - self.held, 0)


def sales_of(*, user: User) -> list[SpaceSales]:
    """Sales and payout figures for every space `user` sells tickets to, newest first."""
    paid, held, refunded = (
        Q(space__tickets__state=state) for state in (TicketState.PAID, TicketState.HELD, TicketState.REFUNDED)
    )
    offers = (
        TicketOffer.objects.filter(seller__user=user)
        .select_related("space", "space__host")
        .annotate(
            paid=Count("space__tickets", filter=paid),
            held=Count("space__tickets", filter=held),
            refunded=Count("space__tickets", filter=refunded),
            gross=Coalesce(Sum("space__tickets__amount_minor", filter=paid), 0),
            fees=Coalesce(Sum("space__tickets__application_fee_minor", filter=paid), 0),
            refunded_amount=Coalesce(Sum("space__tickets__amount_minor", filter=refunded), 0),
        )
        .order_by("-created_at", "-pk")
    )
    return [
        SpaceSales(
            space=offer.space,
            offer=offer,
            paid=offer.paid,
            held=offer.held,
            refunded=offer.refunded,
            gross_minor=offer.gross,
            fees_minor=offer.fees,
            net_minor=offer.gross - offer.fees,
            refunded_minor=offer.refunded_amount,
        )
        for offer in offers
    ]
