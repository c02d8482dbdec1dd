"""Stripe's webhooks: verify, store by event id, then handle once in Celery.

The endpoint only checks the signature and stores the event (answering
fast); `webhook_event_process` handles it: it takes the event row's lock to
move it `received → started`, asks Stripe for the object the event is about
(trusting nothing in the payload but ids), moves tickets and accounts only
from allowed states, and records `succeeded` or `failed` with the error.

Nothing unfinished is dropped: a crash is recorded as `failed` and retried by
the task; a `started` whose worker died is taken again once its timeout
(doubling with each attempt) has passed, by Stripe's next delivery or by
`webhook_events_resume`, the periodic sweep that also queues again events
whose task was lost. The row lock keeps every path to one handling at a time.
"""

import json
import logging
from datetime import datetime, timedelta

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from spaces_site.errors import InvalidRequest, ServiceError
from ticketing import lock_objects, tasks
from ticketing.errors import PaymentsUnavailable
from ticketing.models import Refund, RefundState, Ticket, TicketState, WebhookEvent, WebhookEventStatus
from ticketing.services.checkout import checkout_session_sync
from ticketing.services.onboarding import creator_account_sync
from ticketing.services.refunds import ticket_mark_refunded
from ticketing.stripe_client import is_transient, metadata_of, stripe_client

log = logging.getLogger(__name__)

# A handler that started this long ago and never finished died with its worker: run it again.
# The timeout doubles with each attempt (up to 32 times), so an event that kills its worker is
# not taken every ten minutes for ever.
STALE_START = timedelta(minutes=10)
# Past this many attempts the sweep stops taking a dead start again: it waits for staff or Stripe.
SWEEP_MAX_ATTEMPTS = 9
# A failed event's task retries it at `next_attempt_at`; this long after, the retry counts as lost.
RETRY_LOST_AFTER = timedelta(minutes=5)


class BadSignature(InvalidRequest):
    code = "bad_signature"


NOT_AN_EVENT = 'The body is not a Stripe event: a JSON object with an "id" and a "type".'


def webhook_event_receive(*, payload: bytes, signature: str | None) -> WebhookEvent:
    """Verify a delivery's signature and store its event (once); queue its handling after commit.

    Raises `BadSignature` (400) and stores nothing when the signature or the
    body is wrong. A repeated delivery of an event not yet handled is queued
    again; the handling finds it busy if its first handler is still running.
    """
    secrets = settings.STRIPE_WEBHOOK_SECRETS
    if not secrets:
        raise PaymentsUnavailable("Stripe webhooks are not set up here (no signing secret).")
    for secret in secrets:
        try:
            # The signature only: stripe's construct_event would also build an Event from the body and
            # fail (a 500) on any JSON that isn't an object; the body is read below, on our terms.
            stripe.WebhookSignature.verify_header(payload, signature, secret, stripe.Webhook.DEFAULT_TOLERANCE)
            break
        except stripe.SignatureVerificationError:
            continue
        except ValueError as error:
            raise BadSignature(NOT_AN_EVENT, code="bad_payload") from error
    else:
        raise BadSignature("The Stripe-Signature header does not match this body.")
    try:
        data = json.loads(payload)
    except ValueError as error:
        raise BadSignature(NOT_AN_EVENT, code="bad_payload") from error
    if not _is_event(data):
        raise BadSignature(NOT_AN_EVENT, code="bad_payload")
    with transaction.atomic():
        event, created = WebhookEvent.objects.get_or_create(
            stripe_event_id=data["id"],
            defaults={
                "type": data["type"][:100],
                "account": data.get("account") or "",
                "livemode": bool(data.get("livemode")),
                "payload": data,
            },
        )
        if not created:
            WebhookEvent.objects.filter(pk=event.pk).update(deliveries=F("deliveries") + 1)
        if created or event.status != WebhookEventStatus.SUCCEEDED:
            transaction.on_commit(lambda: tasks.webhook_event_handle_task.delay(event.pk))
    return event


def _is_event(data: object) -> bool:
    """A Stripe event's shape, as far as storing it needs: an object with a string id, type and (for
    Connect) account that fit their columns."""
    if not isinstance(data, dict):
        return False
    event_id, kind, account = data.get("id"), data.get("type"), data.get("account") or ""
    return (
        isinstance(event_id, str)
        and 0 < len(event_id) <= 255
        and isinstance(kind, str)
        and bool(kind)
        and isinstance(account, str)
        and len(account) <= 64
    )


def webhook_event_process(*, event_id: int) -> str:
    """Handle a stored event once. Returns "done", "busy", "succeeded", "failed" or "retry".

    "busy" while another handler holds it (`started`, its timeout not passed);
    a `started` past its timeout is taken again. "retry" after an error that
    may pass: a transient one of Stripe's, or a crash of our own.
    """
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None or event.status == WebhookEventStatus.SUCCEEDED:
            return "done"
        now = timezone.now()
        if event.status == WebhookEventStatus.STARTED:
            if event.next_attempt_at and event.next_attempt_at > now:
                return "busy"
            log.warning("Stripe event %s: its handler never finished; taking it again", event.stripe_event_id)
        event.status = WebhookEventStatus.STARTED
        event.started_at = now
        event.attempts += 1
        event.next_attempt_at = now + STALE_START * 2 ** min(event.attempts - 1, 5)
        event.save(update_fields=["status", "started_at", "attempts", "next_attempt_at"])
    try:
        outcome = _handle(event)
    except stripe.StripeError as error:
        _finish(event, WebhookEventStatus.FAILED, error=f"{type(error).__name__}: {error}")
        return "retry" if is_transient(error) else "failed"
    except ServiceError as error:
        _finish(event, WebhookEventStatus.FAILED, error=f"{error.code}: {error.detail}")
        return "retry" if isinstance(error, PaymentsUnavailable) else "failed"
    except Exception as error:
        # A bug or a state nobody foresaw. Left to escape, it would leave the event `started` and the
        # task done; kept as the error (traceback in the log), the task tries again with backoff.
        log.exception("Stripe event %s (%s) crashed", event.stripe_event_id, event.type)
        _finish(event, WebhookEventStatus.FAILED, error=f"{type(error).__name__}: {error}")
        return "retry"
    _finish(event, WebhookEventStatus.SUCCEEDED, outcome=outcome)
    return "succeeded"


def webhook_event_retry_scheduled(*, event_id: int, at: datetime) -> None:
    """Note when the task handles a failed event again (staff see it; the sweep leaves it alone until then)."""
    WebhookEvent.objects.filter(pk=event_id, status=WebhookEventStatus.FAILED).update(next_attempt_at=at)


def webhook_events_resume() -> int:
    """The periodic sweep: queue again the events nothing else will handle. Returns how many.

    Those are a `started` whose handler died (past its timeout), a `failed`
    whose task's retry is overdue, and a `received` whose task never ran.
    A dead start with `SWEEP_MAX_ATTEMPTS` spent is marked failed instead.
    """
    now = timezone.now()
    given_up = WebhookEvent.objects.filter(
        status=WebhookEventStatus.STARTED, next_attempt_at__lte=now, attempts__gte=SWEEP_MAX_ATTEMPTS
    )
    for event in given_up:
        # Conditional, so a handler that took it meanwhile (a redelivery) is left alone.
        if WebhookEvent.objects.filter(pk=event.pk, status=event.status, started_at=event.started_at).update(
            status=WebhookEventStatus.FAILED,
            error=f"Its handling started {event.attempts} times and never finished.",
            next_attempt_at=None,
            finished_at=now,
        ):
            log.warning("Stripe event %s: given up after %s attempts", event.stripe_event_id, event.attempts)
    overdue = now - RETRY_LOST_AFTER
    due = list(
        WebhookEvent.objects.filter(
            Q(status=WebhookEventStatus.STARTED, next_attempt_at__lte=now, attempts__lt=SWEEP_MAX_ATTEMPTS)
            | Q(status=WebhookEventStatus.FAILED, next_attempt_at__lte=overdue)
            | Q(status=WebhookEventStatus.RECEIVED, received_at__lte=overdue)
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for event_id in due:
        tasks.webhook_event_handle_task.delay(event_id)
    return len(due)


def _finish(event: WebhookEvent, status: str, *, outcome: str = "", error: str = "") -> None:
    # Only this attempt's own start: a handler so slow that it was taken again leaves the record to the new one.
    WebhookEvent.objects.filter(pk=event.pk, started_at=event.started_at).update(
        status=status, outcome=outcome[:200], error=error[:5000], finished_at=timezone.now(), next_attempt_at=None
    )
    if error:
        log.warning("Stripe event %s (%s) failed: %s", event.stripe_event_id, event.type, error)


def _handle(event: WebhookEvent) -> str:
    obj = (event.payload.get("data") or {}).get("object") or {}
    object_id = obj.get("id")
    if not object_id:
        return "ignored: no object"
    if event.type in ("checkout.session.completed", "checkout.session.expired"):
        return checkout_session_sync(session_id=object_id)
    if event.type == "charge.refunded":
        return charge_refunded_sync(charge_id=object_id)
    if event.type == "account.updated":
        return creator_account_sync(stripe_account_id=object_id)
    return f"ignored: {event.type} is not handled here"


def charge_refunded_sync(*, charge_id: str) -> str:
    """A charge was refunded (by us, or in Stripe's dashboard): ask Stripe, and mark its ticket refunded.

    Works in any order with the checkout's own event: a ticket still held is
    first brought up to date from its session (held → paid), then refunded.
    """
    client = stripe_client()
    charge = client.v1.charges.retrieve(charge_id)
    if not charge.refunded:
        return f"charge {charge_id} partly refunded ({charge.amount_refunded} of {charge.amount}): no change"
    payment_intent_id = charge.payment_intent
    ticket = Ticket.objects.filter(payment_intent_id=payment_intent_id).first() if payment_intent_id else None
    if ticket is None and payment_intent_id:
        reference = metadata_of(client.v1.payment_intents.retrieve(payment_intent_id)).get("ticket_id", "")
        ticket = Ticket.objects.filter(pk=int(reference)).first() if str(reference).isdigit() else None
    if ticket is None:
        return f"ignored: charge {charge_id} is not for a ticket"
    if ticket.state == TicketState.HELD and ticket.checkout_session_id:
        checkout_session_sync(session_id=ticket.checkout_session_id)
    with transaction.atomic():
        ticket = lock_objects.ticket_for_update(ticket.pk)
        if not ticket_mark_refunded(ticket=ticket, source="stripe"):
            return f"ticket {ticket.pk} is {ticket.state}: no change"
        # Keep a record beside our own refunds; a refund of ours in flight finds the charge refunded and stops.
        Refund.objects.get_or_create(
            ticket=ticket,
            defaults={
                "idempotency_key": f"refund-{ticket.pk}",
                "reason": "stripe",
                "state": RefundState.SUCCEEDED,
                "amount_minor": charge.amount_refunded,
                "currency": ticket.currency,
                "finished_at": timezone.now(),
            },
        )
    return f"ticket {ticket.pk} paid → refunded (charge {charge_id})"
