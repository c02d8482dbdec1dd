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

import psycopg
import stripe
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import AuditEntry, Block, User
from accounts.services import audit_record
from rooms.models import Space, SpaceBlock, SpaceState
from rooms.services.numbers import numbers_add
from spaces_site.prepared import prepared_cursor
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
from ticketing.fees import lifetime_fee_sql
from ticketing.models import CreatorAccount, Ticket, TicketOffer, TicketState
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
    ticket, created, facts = _seat_hold(buyer=buyer, space_id=space_id)
    if ticket.state == TicketState.PAID or ticket.checkout_url:
        return CheckoutStart(ticket, created=False)
    # A new hold, or one whose checkout another request of this buyer is opening right now: the
    # parameters are a function of the ticket, so the same idempotency key gets the same session.
    params = _session_params(ticket, facts=facts, buyer=buyer, success_url=success_url, cancel_url=cancel_url)
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


@dataclass(frozen=True)
class _Facts:
    """What a buyer's checkout depends on, read in one query and without a lock (`_FACTS_SQL`)."""

    space_state: str
    title: str
    scheduled_for: datetime | None
    host_id: int
    host_display_name: str
    host_username: str
    offer_id: int | None  # None: the space sells no tickets
    cap: int | None
    price_minor: int | None
    currency: str | None
    seller_id: int | None
    seller_user_id: int | None
    charges_enabled: bool
    stripe_account_id: str | None
    buyer_blocked: bool  # the host blocked the buyer
    buyer_removed: bool  # the buyer was removed from the space
    taken: int  # paid plus held tickets
    live_ticket_id: int | None  # the buyer's own held or paid ticket


def _seat_hold(*, buyer: User, space_id: int) -> tuple[Ticket, bool, _Facts]:
    """The buyer's live ticket, or a new held one if a seat is free (True), with what it was decided on.

    In a rush every buyer runs this, and most find the space full: they are told so from one read
    without a lock. A buyer who may have a seat takes it with one statement under the offer's and
    the seller's row locks (`_hold_insert`), which counts the seats and the seller's sales again
    and inserts the ticket only if the space is still on sale, still has a seat and the buyer
    still none. On PostgreSQL the locks, the insert, its audit entry and the commit are one
    message, so the locks are held only while the database runs it (`_hold_postgresql`). If the
    statement inserts nothing, what changed meanwhile is read again and answered (sold out, sales
    closed, the buyer's other request's ticket).
    """
    for _ in range(3):
        facts = _facts(buyer_id=buyer.pk, space_id=space_id)
        if facts.cap is not None and facts.live_ticket_id is None and facts.taken >= facts.cap:
            raise _sold_out(facts.cap, facts.taken)
        if facts.offer_id is None:
            raise NotTicketed("This space doesn't sell tickets.")
        if facts.live_ticket_id is not None:
            existing = selectors.live_ticket_of(space_id=space_id, user=buyer)
            if existing is not None:
                return existing, False, facts
            continue  # released since the read
        _ensure_may_buy(facts=facts, buyer=buyer)
        if not facts.charges_enabled:
            raise SalesClosed("The host can't take payments right now, so tickets are not on sale.", code="seller")
        ticket = _hold_insert(facts=facts, buyer=buyer, space_id=space_id)
        if ticket is not None:
            return ticket, True, facts
    raise TicketWrongState("The space's tickets changed while you were buying. Please try again.")


def _facts(*, buyer_id: int, space_id: int) -> _Facts:
    # Every buyer of a rush runs this: plain SQL, as building it with the ORM cost several times the
    # query itself (the same statement on SQLite and PostgreSQL).
    with prepared_cursor() as cursor:
        cursor.execute(_FACTS_SQL, {**_STATES, "buyer": buyer_id, "space": space_id})
        row = cursor.fetchone()
    if row is None:
        raise TicketNotFound(f"No space with id {space_id}.", code="space_not_found")
    facts = _Facts(*row)
    # SQLite answers EXISTS and booleans as integers.
    return _Facts(
        **{
            **facts.__dict__,
            "charges_enabled": bool(facts.charges_enabled),
            "buyer_blocked": bool(facts.buyer_blocked),
            "buyer_removed": bool(facts.buyer_removed),
            "scheduled_for": _as_read_by_orm(Space._meta.get_field("scheduled_for"), facts.scheduled_for),
        }
    )


def _as_read_by_orm(field, value):
    """A column's raw value as the ORM gives it (on SQLite a datetime is read naive)."""
    column = field.get_col(field.model._meta.db_table)
    for convert in connection.ops.get_db_converters(column) + field.get_db_converters(connection):
        value = convert(value, column, connection)
    return value


def _hold_insert(*, facts: _Facts, buyer: User, space_id: int) -> Ticket | None:
    """The hold itself, under the locks: the new ticket, or None if the space's state, seats or offer, or
    the buyer's tickets, changed since `facts` were read."""
    now = timezone.now()
    expires_at = datetime.fromtimestamp(
        int(now.timestamp()) + settings.SPACES_TICKET_HOLD_MIN * 60 + CHECKOUT_CLOCK_SLACK_S, tz=UTC
    )
    held_until = expires_at + timedelta(seconds=settings.SPACES_TICKET_HOLD_GRACE_S)
    moment = connection.ops.adapt_datetimefield_value
    values = {
        **_STATES,
        "space": space_id,
        "offer": facts.offer_id,
        "seller": facts.seller_id,
        "buyer": buyer.pk,
        "price": facts.price_minor,
        "currency": facts.currency,
        "scheduled": SpaceState.SCHEDULED.value,
        "host": facts.host_id,
        "now": moment(now),
        "expires_at": moment(expires_at),
        "held_until": moment(held_until),
    }
    if connection.vendor == "postgresql":
        row = _hold_postgresql(
            {**values, "cap": facts.cap, "ticket_type": ContentType.objects.get_for_model(Ticket).pk}
        )
        return (
            None
            if row is None
            else _held(row, facts=facts, buyer=buyer, space_id=space_id, now=now, expires_at=expires_at)
        )
    try:
        # SQLite: the transaction takes the database's write lock when it begins (IMMEDIATE).
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_hold_sql(), values)
                row = cursor.fetchone()
                if row is None:
                    return None
                cursor.execute(_TAKEN_SQL, values)
                (taken,) = cursor.fetchone()
            ticket = _held(row, facts=facts, buyer=buyer, space_id=space_id, now=now, expires_at=expires_at)
            audit_record(
                actor=buyer,
                action=HELD_ACTION,
                subject=ticket,
                amount_minor=ticket.amount_minor,
                currency=ticket.currency,
                application_fee_minor=ticket.application_fee_minor,
                seats_taken=taken,
                cap=facts.cap,
            )
            return ticket
    except IntegrityError:
        # Only a write that skipped the write lock could get here: read again, as for a second attempt.
        return None


def _hold_postgresql(values: dict) -> tuple | None:
    """The hold and its audit entry in one round trip, outside any transaction of ours: the row (id, fee),
    or None.

    The two locks and the insert are sent together in psycopg's pipeline mode and end with one
    Sync, so PostgreSQL runs them as one transaction (unless it is inside one already, a test's)
    and the offer's and the seller's locks are held only while it runs them: no round trip and no
    Python waits under them, where a hold in a transaction of the ORM's held them 13 ms on average
    in a rush, waiting for the GIL after every statement (docs/benchmarks.md "Issue 23, third
    session"). The statements are prepared on the connection (`spaces_site.prepared`), so the
    insert isn't planned under the locks either. Each statement reads what was committed before it
    began (READ COMMITTED), so the seats are counted once the locks are ours.
    """
    connection.ensure_connection()
    conn = connection.connection
    with connection.wrap_database_errors:
        try:
            with (
                conn.pipeline(),
                psycopg.Cursor(conn) as offer,
                psycopg.Cursor(conn) as seller,
                psycopg.Cursor(conn) as hold,
            ):
                offer.execute(_LOCK_OFFER_SQL, values)
                seller.execute(_LOCK_SELLER_SQL, values)
                hold.execute(_held_and_audited_sql(), values)
                return hold.fetchone()
        except psycopg.IntegrityError:
            return None  # only a write that skipped the offer's lock could get here: read again


def _held(row: tuple, *, facts: _Facts, buyer: User, space_id: int, now: datetime, expires_at: datetime) -> Ticket:
    """The ticket `_hold_sql()` inserted, as the ORM would have returned it from `create()`."""
    ticket_id, fee = row
    ticket = Ticket(
        pk=ticket_id,
        space_id=space_id,
        buyer=buyer,
        state=TicketState.HELD,
        amount_minor=facts.price_minor,
        currency=facts.currency,
        application_fee_minor=fee,
        created_at=now,
        checkout_expires_at=expires_at,
        held_until=expires_at + timedelta(seconds=settings.SPACES_TICKET_HOLD_GRACE_S),
    )
    ticket._state.adding, ticket._state.db = False, connection.alias
    # The space as read with the facts, so the answer's payload reads nothing more.
    space = Space(
        pk=space_id,
        title=facts.title,
        state=facts.space_state,
        scheduled_for=facts.scheduled_for,
        host_id=facts.host_id,
    )
    space._state.adding, space._state.db = False, connection.alias
    ticket.space = space
    return ticket


_T, _O, _S = Ticket._meta.db_table, TicketOffer._meta.db_table, Space._meta.db_table
_STATES = {"held": TicketState.HELD.value, "paid": TicketState.PAID.value}

# Table names from the models; every value is a parameter.
_FACTS_SQL = f"""
    SELECT s.state, s.title, s.scheduled_for, s.host_id, h.display_name, h.username,
           o.id, o.cap, o.price_minor, o.currency, o.seller_id,
           a.user_id, COALESCE(a.charges_enabled, FALSE), a.stripe_account_id,
           EXISTS (SELECT 1 FROM {Block._meta.db_table} b
                   WHERE b.blocker_id = s.host_id AND b.blocked_id = %(buyer)s),
           EXISTS (SELECT 1 FROM {SpaceBlock._meta.db_table} r WHERE r.space_id = s.id AND r.user_id = %(buyer)s),
           (SELECT COUNT(*) FROM {_T} t WHERE t.space_id = s.id AND t.state IN (%(held)s, %(paid)s)),
           (SELECT MAX(t.id) FROM {_T} t
            WHERE t.space_id = s.id AND t.buyer_id = %(buyer)s AND t.state IN (%(held)s, %(paid)s))
    FROM {_S} s
    JOIN {User._meta.db_table} h ON h.id = s.host_id
    LEFT JOIN {_O} o ON o.space_id = s.id
    LEFT JOIN {CreatorAccount._meta.db_table} a ON a.id = o.seller_id
    WHERE s.id = %(space)s
"""

# The offer, then the seller's account: `ticketing.lock_objects`' order.
_LOCK_OFFER_SQL = f"SELECT 1 FROM {_O} WHERE id = %(offer)s FOR UPDATE"
_LOCK_SELLER_SQL = f"SELECT 1 FROM {CreatorAccount._meta.db_table} WHERE id = %(seller)s FOR UPDATE"


# The seat, if the space is still on sale with the offer read, a seat is free, the buyer has no live
# ticket and is neither blocked by the host nor removed; its fee from the seller's sales counted now.
def _hold_sql() -> str:
    # Built when used: the fee rule reads its settings then.
    return f"""
    INSERT INTO {_T} (space_id, buyer_id, state, amount_minor, currency, application_fee_minor,
                      checkout_session_id, checkout_url, checkout_expires_at, payment_intent_id,
                      held_until, release_reason, created_at)
    SELECT o.space_id, %(buyer)s, %(held)s, o.price_minor, o.currency,
           {lifetime_fee_sql("sold.total + o.price_minor")} - {lifetime_fee_sql("sold.total")},
           NULL, '', %(expires_at)s, '', %(held_until)s, '', %(now)s
    FROM {_O} o
    JOIN {_S} s ON s.id = o.space_id
    CROSS JOIN (
        SELECT COALESCE(SUM(t.amount_minor), 0) AS total
        FROM {_T} t JOIN {_O} so ON so.space_id = t.space_id
        WHERE so.seller_id = %(seller)s AND t.currency = %(currency)s AND t.state IN (%(held)s, %(paid)s)
    ) sold
    WHERE o.id = %(offer)s AND o.space_id = %(space)s AND o.seller_id = %(seller)s
      AND o.price_minor = %(price)s AND o.currency = %(currency)s
      AND s.state = %(scheduled)s AND s.host_id = %(host)s
      AND (SELECT COUNT(*) FROM {_T} t WHERE t.space_id = o.space_id AND t.state IN (%(held)s, %(paid)s)) < o.cap
      AND NOT EXISTS (SELECT 1 FROM {_T} t
                      WHERE t.space_id = o.space_id AND t.buyer_id = %(buyer)s AND t.state IN (%(held)s, %(paid)s))
      AND NOT EXISTS (SELECT 1 FROM {Block._meta.db_table} b
                      WHERE b.blocker_id = s.host_id AND b.blocked_id = %(buyer)s)
      AND NOT EXISTS (SELECT 1 FROM {SpaceBlock._meta.db_table} r
                      WHERE r.space_id = o.space_id AND r.user_id = %(buyer)s)
    RETURNING id, application_fee_minor
"""


# The audit entry `audit_record` would write for a new hold, written by the hold's own statement on
# PostgreSQL (`_hold_postgresql`): its subject's text is `Ticket.__str__`'s, its details those the SQLite
# path passes to `audit_record`; tests/ticketing/test_checkout.py holds the two paths to the same entry.
HELD_ACTION = "ticketing.ticket.held"


def _held_and_audited_sql() -> str:
    return f"""
    WITH held AS ({_hold_sql()}),
    taken AS (  -- the statement's snapshot doesn't show its own insert
        SELECT COUNT(*) + (SELECT COUNT(*) FROM held) AS seats FROM {_T}
        WHERE space_id = %(space)s AND state IN (%(held)s, %(paid)s)
    ),
    audited AS (
        INSERT INTO {AuditEntry._meta.db_table}
            (actor_id, action, subject_type_id, subject_id, subject_repr, details, created_at)
        SELECT %(buyer)s, '{HELD_ACTION}', %(ticket_type)s, h.id::text,
               'Ticket ' || h.id || ' ({TicketState.HELD.value}) for space ' || %(space)s,
               jsonb_build_object(
                   'amount_minor', %(price)s, 'currency', %(currency)s::text,
                   'application_fee_minor', h.application_fee_minor, 'seats_taken', taken.seats, 'cap', %(cap)s
               ),
               %(now)s
        FROM held h CROSS JOIN taken
    )
    SELECT id, application_fee_minor FROM held
"""


_ATTACH_SQL = f"""
    UPDATE {_T} SET checkout_session_id = %s, checkout_url = %s
    WHERE id = %s AND state = %s AND checkout_session_id IS NULL
"""

_TAKEN_SQL = f"SELECT COUNT(*) FROM {_T} WHERE space_id = %(space)s AND state IN (%(held)s, %(paid)s)"


def _ensure_may_buy(*, facts: _Facts, buyer: User) -> None:
    if facts.space_state == SpaceState.CANCELLED:
        raise SalesClosed("This space was cancelled; its tickets are no longer sold.")
    if facts.space_state != SpaceState.SCHEDULED:
        raise SalesClosed(f"Ticket sales ended when the space went live; it is {facts.space_state} now.")
    if buyer.pk in (facts.host_id, facts.seller_user_id):
        raise BuyNotAllowed("You host this space: you don't need a ticket.")
    if facts.buyer_blocked:
        raise BuyNotAllowed("You can't buy a ticket to this space.")
    if facts.buyer_removed:
        raise BuyNotAllowed("You were removed from this space and can't buy a ticket.")


def _session_params(ticket: Ticket, *, facts: _Facts, buyer: User, success_url: str, cancel_url: str) -> dict:
    """The Checkout Session for one ticket: a destination charge to the seller with the platform's fee."""
    host = User(username=facts.host_username, display_name=facts.host_display_name)
    ids = {"ticket_id": str(ticket.pk), "space_id": str(ticket.space_id), "buyer_id": str(ticket.buyer_id)}
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
                    "product_data": {"name": f"Ticket: {facts.title}", "description": f"Hosted by {host.name}"},
                },
            }
        ],
        "payment_intent_data": {
            "application_fee_amount": ticket.application_fee_minor,
            "transfer_data": {"destination": facts.stripe_account_id},
            "description": f"Ticket {ticket.pk} to space {ticket.space_id}",
            "metadata": ids,
        },
        "client_reference_id": str(ticket.pk),
        "metadata": ids,
        "expires_at": int(ticket.checkout_expires_at.timestamp()),
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    if buyer.email:
        params["customer_email"] = buyer.email
    return params


def _checkout_attach(*, ticket: Ticket, session_id: str, url: str) -> Ticket:
    # Nearly always the hold is still held with no session yet: one conditional UPDATE, and the
    # ticket in hand is then exactly what the row says. Otherwise the row decides, under its lock.
    with prepared_cursor() as cursor:
        cursor.execute(_ATTACH_SQL, [session_id, url, ticket.pk, TicketState.HELD.value])
        attached = cursor.rowcount
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
