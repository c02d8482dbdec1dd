"""Buying a ticket: hold a seat, open a Stripe Checkout Session for it, and settle the hold from Stripe's answer.

A checkout is three steps, so that nothing scarce waits on Stripe:
`checkout_begin` holds a seat in one short transaction under the offer's row
lock, where paid plus held tickets are counted against the cap;
`checkout_session_open` asks Stripe for the session, on the event loop while
a request waits (`spaces_site.outside`: no thread, no database connection,
no place in the site's line); `checkout_finish` attaches the session to the
ticket in a second short transaction, or gives the seat back if Stripe
failed. `checkout_start` does the three in a row, blocking, for the demo and
commands. A hold ends only from what Stripe says when asked again (never from
what a webhook claims): `paid` when the session is complete and paid,
`released` when it has expired.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import stripe
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from accounts.models import Block, User
from accounts.services import audit_record
from rooms.models import Space, SpaceBlock, SpaceState
from rooms.services.numbers import numbers_add
from ticketing import lock_objects, selectors
from ticketing.errors import (
    BuyNotAllowed,
    NotTicketed,
    PaymentsUnavailable,
    SalesClosed,
    SoldOut,
    TicketNotFound,
    TicketWrongState,
)
from ticketing.fees import application_fee_minor
from ticketing.models import SEAT_TAKING_STATES, Ticket, TicketOffer, TicketState
from ticketing.services.refunds import refund_request
from ticketing.stripe_client import (
    metadata_of,
    payments_check,
    payments_unavailable,
    stripe_client,
    stripe_client_async,
)

log = logging.getLogger(__name__)

# Stripe wants a session's `expires_at` at least 30 minutes after it creates the session; the
# time is fixed when the seat is held, so it carries this margin for the call to reach Stripe.
CHECKOUT_CLOCK_SLACK_S = 120


@dataclass(frozen=True)
class CheckoutStart:
    ticket: Ticket
    created: bool  # False: the buyer's open checkout or paid ticket from before

    @property
    def checkout_url(self) -> str | None:
        return self.ticket.checkout_url if self.ticket.state == TicketState.HELD else None


@dataclass(frozen=True)
class CheckoutHold:
    """A seat held for a buyer whose Checkout Session is still to be opened at Stripe."""

    ticket: Ticket
    created: bool  # False: another request of this buyer holds it and is opening its checkout now
    params: dict  # the session Stripe is asked for: a function of the ticket, like its idempotency key


def checkout_begin(*, buyer: User, space_id: int, success_url: str, cancel_url: str) -> CheckoutStart | CheckoutHold:
    """Hold a seat for `buyer`: a `CheckoutHold` whose session `checkout_session_open` asks Stripe for.

    A buyer who already holds a seat with an open checkout gets it back, and
    one who paid gets their ticket (a `CheckoutStart`): one ticket per buyer
    per space. Raises `PaymentsUnavailable` (503) at once while Stripe is
    failing (before any hold), `SoldOut` (409) when paid plus held tickets
    reach the cap, `SalesClosed` (409) once the space is live.
    """
    payments_check()
    _sold_out_check(buyer=buyer, space_id=space_id)
    ticket, created, seller_account_id = _seat_hold(buyer=buyer, space_id=space_id)
    if ticket.state == TicketState.PAID or ticket.checkout_url:
        return CheckoutStart(ticket, created=False)
    # A new hold, or one whose checkout another request of this buyer is opening right now: the
    # parameters are a function of the ticket, so the same idempotency key gets the same session.
    params = _session_params(
        ticket, success_url=success_url, cancel_url=cancel_url, seller_account_id=seller_account_id
    )
    return CheckoutHold(ticket, created, params)


async def checkout_session_open(hold: CheckoutHold):
    """Ask Stripe for the hold's Checkout Session, waiting on the event loop (no database here)."""
    return await stripe_client_async().v1.checkout.sessions.create_async(
        params=hold.params, options={"idempotency_key": hold.ticket.checkout_idempotency_key}
    )


def checkout_finish(*, hold: CheckoutHold, session: Callable[[], object]) -> CheckoutStart:
    """Attach the session that `session()` returns to the hold's ticket; if it raises Stripe's error, give
    a new hold's seat back and raise `PaymentsUnavailable` (503, with when to try again)."""
    try:
        opened = session()
    except stripe.StripeError as error:
        log.warning("Checkout for ticket %s failed: %s", hold.ticket.pk, error)
        if hold.created:
            hold_release(ticket_id=hold.ticket.pk, reason="checkout_failed")
        raise payments_unavailable(error) from error
    return CheckoutStart(_checkout_attach(ticket=hold.ticket, session_id=opened.id, url=opened.url), hold.created)


def checkout_start(*, buyer: User, space_id: int, success_url: str, cancel_url: str) -> CheckoutStart:
    """The three steps in a row, blocking: for the demo's seed data and commands, never a request."""
    begun = checkout_begin(buyer=buyer, space_id=space_id, success_url=success_url, cancel_url=cancel_url)
    if isinstance(begun, CheckoutStart):
        return begun
    return checkout_finish(
        hold=begun,
        session=lambda: stripe_client().v1.checkout.sessions.create(
            params=begun.params, options={"idempotency_key": begun.ticket.checkout_idempotency_key}
        ),
    )


def _sold_out(cap: int, taken: int) -> SoldOut:
    return SoldOut(
        f"Sold out: all {cap} seats are sold or held by buyers paying right now. "
        "A held seat comes back if its checkout expires.",
        cap=cap,
        seats_taken=taken,
    )


def _sold_out_check(*, buyer: User, space_id: int) -> None:
    """Without the lock, in one query: `SoldOut` when the space is full and `buyer` holds no seat.

    In a rush most buyers find the space full, and they are told so without queueing on the
    lock behind the buyers who do get a seat. Only the count taken under the lock (in
    `_seat_hold`) may give a seat away; this one may only turn a buyer away early.
    """
    # Every buyer of a rush runs this: plain SQL, as building it with the ORM cost several
    # times the query itself (the same statement on SQLite and PostgreSQL).
    held, paid = (state.value for state in SEAT_TAKING_STATES)
    with connection.cursor() as cursor:
        cursor.execute(_SOLD_OUT_SQL, [held, paid, buyer.pk, held, paid, space_id])
        row = cursor.fetchone()
    if row is None:
        raise TicketNotFound(f"No space with id {space_id}.", code="space_not_found")
    cap, taken, mine = row
    if cap is not None and not mine and taken >= cap:
        raise _sold_out(cap, taken)


# Table names from the models; every value is a parameter.
_SOLD_OUT_SQL = f"""
    SELECT o.cap,
           (SELECT COUNT(*) FROM {Ticket._meta.db_table} t WHERE t.space_id = s.id AND t.state IN (%s, %s)),
           EXISTS (SELECT 1 FROM {Ticket._meta.db_table} t
                   WHERE t.space_id = s.id AND t.buyer_id = %s AND t.state IN (%s, %s))
    FROM {Space._meta.db_table} s LEFT JOIN {TicketOffer._meta.db_table} o ON o.space_id = s.id
    WHERE s.id = %s
"""


def _seat_hold(*, buyer: User, space_id: int) -> tuple[Ticket, bool, str | None]:
    """Under the offer's lock: the buyer's live ticket, or a new held one if a seat is free; with the
    seller's Stripe account when the hold is new (None for a ticket from before)."""
    with transaction.atomic():
        offer = lock_objects.offer_for_update(space_id)
        if offer is None:
            if not Space.objects.filter(pk=space_id).exists():
                raise TicketNotFound(f"No space with id {space_id}.", code="space_not_found")
            raise NotTicketed("This space doesn't sell tickets.")
        existing = selectors.live_ticket_of(space_id=space_id, user=buyer)
        if existing is not None:
            return existing, False, None
        # Read after the lock is ours: a cancellation takes the same lock, so this state is current.
        space = (
            Space.objects.select_related("host")
            .annotate(
                buyer_blocked=Exists(Block.objects.filter(blocker_id=OuterRef("host_id"), blocked_id=buyer.pk)),
                buyer_removed=Exists(SpaceBlock.objects.filter(space_id=OuterRef("pk"), user_id=buyer.pk)),
            )
            .get(pk=space_id)
        )
        _ensure_may_buy(space=space, buyer=buyer, seller_user_id=offer.seller.user_id)
        taken = selectors.seats_taken(space_id=space_id)
        if taken >= offer.cap:
            raise _sold_out(offer.cap, taken)
        seller = lock_objects.creator_account_for_update(offer.seller_id)
        if not seller.charges_enabled:
            raise SalesClosed("The host can't take payments right now, so tickets are not on sale.", code="seller")
        fee = application_fee_minor(
            amount_minor=offer.price_minor,
            sold_before_minor=selectors.lifetime_sales_minor(seller=seller, currency=offer.currency),
        )
        now = timezone.now()
        expires_at = datetime.fromtimestamp(
            int(now.timestamp()) + settings.SPACES_TICKET_HOLD_MIN * 60 + CHECKOUT_CLOCK_SLACK_S, tz=UTC
        )
        try:
            with transaction.atomic():
                ticket = Ticket.objects.create(
                    space=space,
                    buyer=buyer,
                    state=TicketState.HELD,
                    amount_minor=offer.price_minor,
                    currency=offer.currency,
                    application_fee_minor=fee,
                    created_at=now,
                    checkout_expires_at=expires_at,
                    held_until=expires_at + timedelta(seconds=settings.SPACES_TICKET_HOLD_GRACE_S),
                )
        except IntegrityError:
            # Only a write that skipped the offer lock could get here; answer as for a second attempt.
            existing = selectors.live_ticket_of(space_id=space_id, user=buyer)
            if existing is None:
                raise
            return existing, False, None
        audit_record(
            actor=buyer,
            action="ticketing.ticket.held",
            subject=ticket,
            amount_minor=ticket.amount_minor,
            currency=ticket.currency,
            application_fee_minor=fee,
            seats_taken=taken + 1,
            cap=offer.cap,
        )
    return ticket, True, seller.stripe_account_id


def _ensure_may_buy(*, space: Space, buyer: User, seller_user_id: int) -> None:
    """`space` carries `buyer_blocked` (the host blocked the buyer) and `buyer_removed` (removed from it)."""
    if space.state == SpaceState.CANCELLED:
        raise SalesClosed("This space was cancelled; its tickets are no longer sold.")
    if space.state != SpaceState.SCHEDULED:
        raise SalesClosed(f"Ticket sales ended when the space went live; it is {space.state} now.")
    if buyer.pk in (space.host_id, seller_user_id):
        raise BuyNotAllowed("You host this space: you don't need a ticket.")
    if space.buyer_blocked:
        raise BuyNotAllowed("You can't buy a ticket to this space.")
    if space.buyer_removed:
        raise BuyNotAllowed("You were removed from this space and can't buy a ticket.")


def _session_params(ticket: Ticket, *, success_url: str, cancel_url: str, seller_account_id: str | None = None) -> dict:
    """The Checkout Session for one ticket: a destination charge to the seller with the platform's fee."""
    space = ticket.space
    seller_account_id = seller_account_id or space.ticket_offer.seller.stripe_account_id
    ids = {"ticket_id": str(ticket.pk), "space_id": str(space.pk), "buyer_id": str(ticket.buyer_id)}
    params = {
        "mode": "payment",
        # Cards settle at once, so a held seat turns paid or expires; no days-long pending payments.
        "payment_method_types": ["card"],
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": ticket.currency,
                    "unit_amount": ticket.amount_minor,
                    "product_data": {"name": f"Ticket: {space.title}", "description": f"Hosted by {space.host.name}"},
                },
            }
        ],
        "payment_intent_data": {
            "application_fee_amount": ticket.application_fee_minor,
            "transfer_data": {"destination": seller_account_id},
            "description": f"Ticket {ticket.pk} to space {space.pk}",
            "metadata": ids,
        },
        "client_reference_id": str(ticket.pk),
        "metadata": ids,
        "expires_at": int(ticket.checkout_expires_at.timestamp()),
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    if ticket.buyer.email:
        params["customer_email"] = ticket.buyer.email
    return params


def _checkout_attach(*, ticket: Ticket, session_id: str, url: str) -> Ticket:
    # Nearly always the hold is still held with no session yet: one conditional UPDATE, and the
    # ticket in hand is then exactly what the row says. Otherwise the row decides, under its lock.
    attached = Ticket.objects.filter(pk=ticket.pk, state=TicketState.HELD, checkout_session_id__isnull=True).update(
        checkout_session_id=session_id, checkout_url=url
    )
    if attached:
        ticket.state, ticket.checkout_session_id, ticket.checkout_url = TicketState.HELD, session_id, url
        return ticket
    with transaction.atomic():
        ticket = lock_objects.ticket_for_update(ticket.pk)
        if ticket.state not in (TicketState.HELD, TicketState.PAID):
            raise TicketWrongState("That checkout was closed before it opened. Please try again.")
        if ticket.checkout_session_id and ticket.checkout_session_id != session_id:
            raise TicketWrongState("This ticket already has another checkout.")
        if ticket.checkout_session_id != session_id or ticket.checkout_url != url:
            ticket.checkout_session_id, ticket.checkout_url = session_id, url
            ticket.save(update_fields=["checkout_session_id", "checkout_url"])
    return ticket


def hold_release(*, ticket_id: int, reason: str, actor: User | None = None) -> Ticket | None:
    """held → released, for a hold whose checkout never opened or that Stripe says can't be paid any more."""
    with transaction.atomic():
        ticket = lock_objects.ticket_for_update(ticket_id)
        if ticket is None or ticket.state != TicketState.HELD:
            return ticket
        ticket.state = TicketState.RELEASED
        ticket.released_at = timezone.now()
        ticket.held_until = None
        ticket.release_reason = reason
        ticket.save(update_fields=["state", "released_at", "held_until", "release_reason"])
        audit_record(actor=actor, action="ticketing.ticket.released", subject=ticket, reason=reason)
    return ticket


def checkout_session_sync(*, session_id: str) -> str:
    """Ask Stripe for the session and move its ticket to match; returns what changed, for the event log.

    The one path from Stripe's truth to a ticket: webhooks about sessions,
    the success page (`checkout_session_fetch` then `checkout_session_apply`,
    so it waits on the event loop) and the sweep all end in
    `checkout_session_apply`, so events that come twice, late or out of
    order can only repeat a move already made.
    """
    return checkout_session_apply(stripe_client().v1.checkout.sessions.retrieve(session_id))


async def checkout_session_fetch(*, session_id: str):
    """The session as Stripe has it now, waiting on the event loop."""
    return await stripe_client_async().v1.checkout.sessions.retrieve_async(session_id)


def checkout_session_apply(session) -> str:
    """Move the session's ticket to match what Stripe said; returns what changed."""
    reference = session.client_reference_id or metadata_of(session).get("ticket_id")
    if not reference or not str(reference).isdigit():
        return f"ignored: session {session.id} is not for a ticket"
    with transaction.atomic():
        ticket = lock_objects.ticket_for_update(int(reference))
        if ticket is None or ticket.checkout_session_id not in (None, session.id):
            return f"ignored: session {session.id} does not belong to ticket {reference}"
        if session.status == "complete" and session.payment_status == "paid":
            return _ticket_pay(ticket, session)
        if session.status == "expired":
            if ticket.state != TicketState.HELD:
                return f"ticket {ticket.pk} is {ticket.state}: no change"
            ticket.state = TicketState.RELEASED
            ticket.released_at = timezone.now()
            ticket.held_until = None
            ticket.release_reason = "expired"
            ticket.checkout_session_id = session.id
            ticket.save(update_fields=["state", "released_at", "held_until", "release_reason", "checkout_session_id"])
            audit_record(actor=None, action="ticketing.ticket.released", subject=ticket, reason="expired")
            return f"ticket {ticket.pk} held → released"
        return f"ticket {ticket.pk} is {ticket.state}; session {session.status}: no change"


def _ticket_pay(ticket: Ticket, session) -> str:
    """held → paid (called with the ticket locked). A payment for a space that can't be attended is refunded."""
    if ticket.state in (TicketState.PAID, TicketState.REFUNDED):
        return f"ticket {ticket.pk} is {ticket.state}: no change"
    if ticket.state == TicketState.RELEASED:
        # Never by design: a hold is released only once Stripe says its session can't be paid.
        raise TicketWrongState(
            f"Session {session.id} was paid but ticket {ticket.pk} was released; refund it in Stripe's dashboard."
        )
    ticket.state = TicketState.PAID
    ticket.paid_at = timezone.now()
    ticket.held_until = None
    ticket.checkout_session_id = session.id
    ticket.payment_intent_id = session.payment_intent or ""
    ticket.save(update_fields=["state", "paid_at", "held_until", "checkout_session_id", "payment_intent_id"])
    audit_record(actor=None, action="ticketing.ticket.paid", subject=ticket, payment_intent=ticket.payment_intent_id)
    numbers_add(space_id=ticket.space_id, tickets_sold=1, revenue_minor=ticket.amount_minor, currency=ticket.currency)
    space = Space.objects.get(pk=ticket.space_id)
    if space.state in (SpaceState.CANCELLED, SpaceState.ENDED):
        # Paid after the space was cancelled or ended: the buyer gets their money back.
        refund_request(ticket=ticket, actor=None, reason=f"paid_after_{space.state}")
        return f"ticket {ticket.pk} held → paid; refund requested (space {space.state})"
    return f"ticket {ticket.pk} held → paid"


def hold_settle(*, ticket_id: int) -> str:
    """End a hold whose time is up (or whose space closed) by asking Stripe: expire the session if it
    is still open, then apply what Stripe says. A session completed meanwhile makes the ticket paid."""
    ticket = Ticket.objects.filter(pk=ticket_id).first()
    if ticket is None or ticket.state != TicketState.HELD:
        return "no change"
    if not ticket.checkout_session_id:
        if timezone.now() < ticket.created_at + timedelta(seconds=CHECKOUT_CLOCK_SLACK_S):
            return f"ticket {ticket.pk}: its checkout is still being opened"
        # The checkout never opened (the request died between hold and Stripe): nobody can pay it.
        hold_release(ticket_id=ticket.pk, reason="no_checkout")
        return f"ticket {ticket.pk} held → released (no checkout)"
    client = stripe_client()
    session = client.v1.checkout.sessions.retrieve(ticket.checkout_session_id)
    if session.status == "open":
        try:
            session = client.v1.checkout.sessions.expire(ticket.checkout_session_id)
        except stripe.InvalidRequestError:
            # It completed (or expired) between our two calls; ask again.
            session = client.v1.checkout.sessions.retrieve(ticket.checkout_session_id)
    return checkout_session_apply(session)


def holds_sweep(*, limit: int = 500) -> dict:
    """Settle holds past `held_until` (their webhook never came). Idempotent; safe to run concurrently."""
    stale = list(
        Ticket.objects.filter(state=TicketState.HELD, held_until__lt=timezone.now())
        .order_by("held_until")
        .values_list("pk", flat=True)[:limit]
    )
    outcomes = {"checked": len(stale), "errors": 0}
    for ticket_id in stale:
        try:
            hold_settle(ticket_id=ticket_id)
        except (stripe.StripeError, PaymentsUnavailable) as error:
            outcomes["errors"] += 1
            log.warning("Could not settle the hold of ticket %s: %s", ticket_id, error)
    return outcomes
