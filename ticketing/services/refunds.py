"""Refunds: a cancelled space refunds every paid ticket, staff refund one, and Stripe's own refunds are mirrored.

A refund is a row made in the same transaction as its cause, with the
idempotency key `refund-<ticket id>`; a Celery task per refund asks Stripe
after commit and is retried with backoff while Stripe doesn't answer. Every
retry sends the same key, so Stripe refunds a charge once however often we
ask. The ticket turns `paid → refunded` only when Stripe says so, and the
buyer is told then, and whoever listens to `ticketing.signals.ticket_pass_ended`
hears that the ticket no longer lets its buyer in (a live space lets them go).
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

import stripe
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.services import audit_record
from rooms.models import Space
from rooms.services.numbers import numbers_add
from spaces_site.errors import NotAllowed
from ticketing import lock_objects, signals, tasks
from ticketing.errors import TicketNotFound, TicketWrongState
from ticketing.models import Refund, RefundState, Ticket, TicketState
from ticketing.stripe_client import is_transient, stripe_client

log = logging.getLogger(__name__)


def refund_request(*, ticket: Ticket, actor: User | None, reason: str) -> Refund:
    """Ask for the refund of a paid ticket (call inside a transaction, with the ticket locked).

    Idempotent: a ticket has at most one refund; asking again for one that
    failed tries it again. The Stripe call happens in `refund_request_task`
    after commit.
    """
    if ticket.state != TicketState.PAID:
        raise TicketWrongState(f"Only a paid ticket can be refunded; ticket {ticket.pk} is {ticket.state}.")
    refund, created = Refund.objects.get_or_create(
        ticket=ticket,
        defaults={
            "idempotency_key": f"refund-{ticket.pk}",
            "reason": reason,
            "requested_by": actor if actor is not None and actor.is_authenticated else None,
            "amount_minor": ticket.amount_minor,
            "currency": ticket.currency,
        },
    )
    if not created:
        if refund.state != RefundState.FAILED:
            return refund
        refund.state = RefundState.REQUESTED
        refund.last_error = ""
        refund.save(update_fields=["state", "last_error"])
    audit_record(actor=actor, action="ticketing.refund.requested", subject=ticket, reason=reason, retry=not created)
    transaction.on_commit(lambda: tasks.refund_request_task.delay(refund.pk))
    return refund


def ticket_refund(*, actor: User, ticket_id: int, reason: str = "staff") -> Refund:
    """Staff refund one ticket (the admin's "refund this ticket")."""
    if not actor.is_staff:
        raise NotAllowed("Only staff can refund a ticket.")
    with transaction.atomic():
        ticket = lock_objects.ticket_for_update(ticket_id)
        if ticket is None:
            raise TicketNotFound(f"No ticket with id {ticket_id}.")
        return refund_request(ticket=ticket, actor=actor, reason=reason)


def space_tickets_close(*, space: Space, actor: User | None, refund: bool) -> dict:
    """A ticketed space stops selling for good: call inside the transaction that cancels or ends it.

    Open checkouts are expired at Stripe (after commit, one task each; a
    session paid meanwhile turns into a paid ticket and is refunded). With
    `refund` (cancelled, or never went live) every paid ticket gets a refund.
    Takes the offer's lock, so no seat is held after this.
    """
    offer = lock_objects.offer_for_update(space.pk)
    if offer is None:
        return {"holds": 0, "refunds": 0}
    held = list(Ticket.objects.filter(space=space, state=TicketState.HELD).values_list("pk", flat=True))
    for ticket_id in held:
        transaction.on_commit(lambda ticket_id=ticket_id: tasks.hold_settle_task.delay(ticket_id))
    refunds = 0
    if refund:
        for ticket in lock_objects.tickets_for_update(space=space, state=TicketState.PAID):
            refund_request(ticket=ticket, actor=actor, reason=f"space_{space.state}")
            refunds += 1
    audit_record(actor=actor, action="ticketing.sales.closed", subject=space, holds=len(held), refunds=refunds)
    return {"holds": len(held), "refunds": refunds}


@dataclass(frozen=True)
class RefundAttempt:
    state: str  # the refund's state after the attempt
    retry: bool  # Stripe didn't answer: try again later
    error: str = ""


def refund_attempt(*, refund_id: int) -> RefundAttempt:
    """Ask Stripe to refund (the body of `refund_request_task`). Same key on every attempt."""
    with transaction.atomic():
        refund = lock_objects.refund_for_update(refund_id)
        if refund is None:
            return RefundAttempt("missing", retry=False)
        if refund.state != RefundState.REQUESTED:
            return RefundAttempt(refund.state, retry=False)
        refund.attempts += 1
        refund.next_attempt_at = None
        refund.save(update_fields=["attempts", "next_attempt_at"])
    ticket = refund.ticket
    try:
        answer = stripe_client().v1.refunds.create(
            params={
                "payment_intent": ticket.payment_intent_id,
                # A destination charge: take the money back from the creator, and give back our fee.
                "reverse_transfer": True,
                "refund_application_fee": True,
                "metadata": {"ticket_id": str(ticket.pk), "reason": refund.reason},
            },
            options={"idempotency_key": refund.idempotency_key},
        )
    except stripe.InvalidRequestError as error:
        if error.code == "charge_already_refunded":
            _refund_finish(refund_id=refund.pk, state=RefundState.SKIPPED, note="already refunded at Stripe")
            return RefundAttempt(RefundState.SKIPPED, retry=False)
        return _refund_error(refund_id=refund.pk, error=error, retry=False)
    except stripe.StripeError as error:
        return _refund_error(refund_id=refund.pk, error=error, retry=is_transient(error))
    if answer.status in ("failed", "canceled"):
        return _refund_error(refund_id=refund.pk, error=f"Stripe's refund {answer.id} is {answer.status}", retry=False)
    _refund_finish(refund_id=refund.pk, state=RefundState.SUCCEEDED, stripe_refund_id=answer.id)
    return RefundAttempt(RefundState.SUCCEEDED, retry=False)


def _refund_error(*, refund_id: int, error, retry: bool) -> RefundAttempt:
    """Keep Stripe's error; without a retry the refund has failed and waits for staff."""
    message = str(error)[:2000]
    with transaction.atomic():
        refund = lock_objects.refund_for_update(refund_id)
        refund.last_error = message
        fields = ["last_error"]
        if not retry:
            refund.state = RefundState.FAILED
            refund.finished_at = timezone.now()
            fields += ["state", "finished_at"]
            audit_record(actor=None, action="ticketing.refund.failed", subject=refund.ticket, error=message)
        refund.save(update_fields=fields)
    log.warning("Refund %s: %s", refund_id, message)
    return RefundAttempt(refund.state, retry=retry, error=message)


def refund_retry_scheduled(*, refund_id: int, at) -> None:
    """Note when the task will ask Stripe again (staff see it; the sweep leaves it alone until then)."""
    Refund.objects.filter(pk=refund_id, state=RefundState.REQUESTED).update(next_attempt_at=at)


def refund_give_up(*, refund_id: int) -> None:
    """Retries are spent: the refund waits for staff (admin: "try the refund again")."""
    with transaction.atomic():
        refund = lock_objects.refund_for_update(refund_id)
        if refund is None or refund.state != RefundState.REQUESTED:
            return
        refund.state = RefundState.FAILED
        refund.finished_at = timezone.now()
        refund.save(update_fields=["state", "finished_at"])
        audit_record(actor=None, action="ticketing.refund.failed", subject=refund.ticket, error=refund.last_error)


def _refund_finish(*, refund_id: int, state: str, stripe_refund_id: str = "", note: str = "") -> None:
    """Stripe answered: the refund is done (or was done already) and its ticket turns refunded."""
    ticket_id = Refund.objects.values_list("ticket_id", flat=True).get(pk=refund_id)
    with transaction.atomic():
        # The ticket first, then its refund: the order every path takes.
        ticket = lock_objects.ticket_for_update(ticket_id)
        refund = lock_objects.refund_for_update(refund_id)
        if refund.state != RefundState.REQUESTED:
            return
        refund.state = state
        refund.stripe_refund_id = stripe_refund_id
        refund.last_error = note
        refund.finished_at = timezone.now()
        refund.save(update_fields=["state", "stripe_refund_id", "last_error", "finished_at"])
        audit_record(actor=None, action=f"ticketing.refund.{state}", subject=ticket, stripe_refund=stripe_refund_id)
        ticket_mark_refunded(ticket=ticket, source="refund")


def ticket_mark_refunded(*, ticket: Ticket, source: str) -> bool:
    """paid → refunded (with the ticket locked), and the buyer is told after commit. False if not paid.

    Every way a paid ticket stops being one passes here (a staff refund, a
    cancelled space, Stripe's own `charge.refunded`), so the announcement that
    it no longer lets its buyer in is made here, after commit.
    """
    if ticket.state != TicketState.PAID:
        return False
    ticket.state = TicketState.REFUNDED
    ticket.refunded_at = timezone.now()
    ticket.save(update_fields=["state", "refunded_at"])
    audit_record(actor=None, action="ticketing.ticket.refunded", subject=ticket, source=source)
    numbers_add(space_id=ticket.space_id, tickets_sold=-1, revenue_minor=-ticket.amount_minor)
    ticket_id, space_id, buyer_id = ticket.pk, ticket.space_id, ticket.buyer_id
    transaction.on_commit(lambda: tasks.ticket_refunded_notify_task.delay(ticket_id))
    # Robust: the refund stands and the buyer is still told if a reaction fails (it is logged).
    transaction.on_commit(
        lambda: signals.ticket_pass_ended.send(
            sender=Ticket, ticket_id=ticket_id, space_id=space_id, buyer_id=buyer_id, reason=TicketState.REFUNDED.value
        ),
        robust=True,
    )
    return True


def refunds_resume(*, stuck_for_s: int = 900) -> int:
    """Queue again the refunds whose task was lost (a worker or broker died). Returns how many."""
    cutoff = timezone.now() - timedelta(seconds=stuck_for_s)
    stuck = list(
        Refund.objects.filter(state=RefundState.REQUESTED, created_at__lt=cutoff)
        .exclude(next_attempt_at__gte=cutoff)
        .values_list("pk", flat=True)
    )
    for refund_id in stuck:
        tasks.refund_request_task.delay(refund_id)
    return len(stuck)
