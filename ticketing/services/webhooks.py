"""Stripe's webhooks: verify, store by event id, then handle once in Celery.

The endpoint only checks the signature and stores the event (answering
fast); `webhook_event_process` handles it: it takes the event row's lock to
move it `received → started`, asks Stripe for the object the event is about
(trusting nothing in the payload but ids), moves tickets and accounts only
from allowed states, and records `succeeded` or `failed` with the error.
"""

import json
import logging
from datetime import timedelta

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import F
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
STALE_START = timedelta(minutes=10)


class BadSignature(InvalidRequest):
    code = "bad_signature"


def webhook_event_receive(*, payload: bytes, signature: str | None) -> WebhookEvent:
    """Verify a delivery's signature and store its event (once); queue its handling after commit.

    Raises `BadSignature` (400) and stores nothing when the signature or the
    body is wrong. A repeated delivery of an event that failed is queued again.
    """
    secrets = settings.STRIPE_WEBHOOK_SECRETS
    if not secrets:
        raise PaymentsUnavailable("Stripe webhooks are not set up here (no signing secret).")
    for secret in secrets:
        try:
            stripe.Webhook.construct_event(payload, signature, secret)
            break
        except stripe.SignatureVerificationError:
            continue
        except ValueError as error:
            raise BadSignature("The body is not a Stripe event.", code="bad_payload") from error
    else:
        raise BadSignature("The Stripe-Signature header does not match this body.")
    data = json.loads(payload)
    if not isinstance(data, dict) or not data.get("id") or not data.get("type"):
        raise BadSignature("The body is not a Stripe event.", code="bad_payload")
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
        if created or event.status in (WebhookEventStatus.RECEIVED, WebhookEventStatus.FAILED):
            transaction.on_commit(lambda: tasks.webhook_event_handle_task.delay(event.pk))
    return event


def webhook_event_process(*, event_id: int) -> str:
    """Handle a stored event once. Returns "done", "busy", "succeeded", "failed" or "retry"."""
    with transaction.atomic():
        event = WebhookEvent.objects.select_for_update().filter(pk=event_id).first()
        if event is None or event.status == WebhookEventStatus.SUCCEEDED:
            return "done"
        now = timezone.now()
        if event.status == WebhookEventStatus.STARTED and event.started_at and event.started_at > now - STALE_START:
            return "busy"
        event.status = WebhookEventStatus.STARTED
        event.started_at = now
        event.attempts += 1
        event.save(update_fields=["status", "started_at", "attempts"])
    try:
        outcome = _handle(event)
    except stripe.StripeError as error:
        _finish(event, WebhookEventStatus.FAILED, error=f"{type(error).__name__}: {error}")
        return "retry" if is_transient(error) else "failed"
    except ServiceError as error:
        _finish(event, WebhookEventStatus.FAILED, error=f"{error.code}: {error.detail}")
        return "retry" if isinstance(error, PaymentsUnavailable) else "failed"
    _finish(event, WebhookEventStatus.SUCCEEDED, outcome=outcome)
    return "succeeded"


def _finish(event: WebhookEvent, status: str, *, outcome: str = "", error: str = "") -> None:
    WebhookEvent.objects.filter(pk=event.pk).update(
        status=status, outcome=outcome[:200], error=error[:5000], finished_at=timezone.now()
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
