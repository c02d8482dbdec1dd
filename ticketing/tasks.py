"""Celery tasks for ticketing: thin, idempotent, retry-safe; each calls a service.

Stripe calls that fail for a reason worth retrying (network, Stripe's own
errors, rate limits) are retried with exponential backoff; the services make
a repeat harmless (idempotency keys at Stripe, state guards here).
"""

import logging
import smtplib
from datetime import timedelta

import stripe
from celery import shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.utils import timezone

from ticketing import services
from ticketing.errors import PaymentsUnavailable
from ticketing.models import Ticket
from ticketing.notifications import notify_ticket_refunded

log = logging.getLogger(__name__)

BACKOFF_FACTOR_S = 5
WEBHOOK_MAX_RETRIES = 8


def _retry(task, countdown: int):
    """Run `task` again in `countdown` seconds. In-process (eager) mode has no worker to wait, so it
    tries again at once; Celery's own eager retry would raise instead while errors propagate."""
    if task.request.is_eager:
        request = task.request
        return task.apply(args=request.args, kwargs=request.kwargs, retries=request.retries + 1).result
    raise task.retry(countdown=countdown)


def _backoff(retries: int) -> int:
    return get_exponential_backoff_interval(
        factor=BACKOFF_FACTOR_S, retries=retries, maximum=settings.SPACES_REFUND_BACKOFF_MAX_S, full_jitter=False
    )


@shared_task(bind=True, max_retries=None, acks_late=True)
def refund_request_task(self, refund_id: int) -> str:
    """Ask Stripe for one refund; retried with backoff until Stripe answers (then staff take over)."""
    attempt = services.refund_attempt(refund_id=refund_id)
    if not attempt.retry:
        return attempt.state
    if self.request.retries >= settings.SPACES_REFUND_MAX_RETRIES:
        services.refund_give_up(refund_id=refund_id)
        return "failed"
    countdown = _backoff(self.request.retries)
    services.refund_retry_scheduled(refund_id=refund_id, at=timezone.now() + timedelta(seconds=countdown))
    return _retry(self, countdown)


@shared_task(bind=True, max_retries=None, acks_late=True)
def webhook_event_handle_task(self, event_id: int) -> str:
    """Handle one stored Stripe event; retried with backoff after a Stripe error that may pass, or a crash."""
    result = services.webhook_event_process(event_id=event_id)
    if result == "retry" and self.request.retries < WEBHOOK_MAX_RETRIES:
        countdown = _backoff(self.request.retries)
        services.webhooks.webhook_event_retry_scheduled(
            event_id=event_id, at=timezone.now() + timedelta(seconds=countdown)
        )
        return _retry(self, countdown)
    return result


@shared_task(bind=True, max_retries=WEBHOOK_MAX_RETRIES, acks_late=True)
def hold_settle_task(self, ticket_id: int) -> str:
    """Expire an open checkout at Stripe and settle its hold (a cancelled space's buyers mid-checkout)."""
    try:
        return services.hold_settle(ticket_id=ticket_id)
    except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError, PaymentsUnavailable) as error:
        if self.request.retries >= WEBHOOK_MAX_RETRIES:
            # The periodic sweep settles it once its time is up.
            log.warning("Hold of ticket %s left to the sweep: %s", ticket_id, error)
            return "left to the sweep"
        return _retry(self, _backoff(self.request.retries))


@shared_task(bind=True, max_retries=WEBHOOK_MAX_RETRIES, acks_late=True)
def creator_account_sync_task(self, stripe_account_id: str) -> str:
    """Read a creator's account from Stripe again (the admin's "read again"); retried while Stripe fails."""
    try:
        return services.creator_account_sync(stripe_account_id=stripe_account_id)
    except (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError) as error:
        if self.request.retries >= WEBHOOK_MAX_RETRIES:
            log.warning("Account %s not read again: %s", stripe_account_id, error)
            return "failed"
        return _retry(self, _backoff(self.request.retries))


@shared_task
def holds_sweep_task() -> dict:
    """Celery beat: settle holds whose webhook never came, and queue refunds whose task was lost."""
    outcome = services.holds_sweep()
    outcome["refunds_requeued"] = services.refunds_resume()
    return outcome


@shared_task
def webhook_events_resume_task() -> int:
    """Celery beat: handle again Stripe events whose worker died or whose task was lost."""
    return services.webhooks.webhook_events_resume()


@shared_task(autoretry_for=(smtplib.SMTPException, OSError), retry_backoff=True, max_retries=5)
def ticket_refunded_notify_task(ticket_id: int) -> bool:
    ticket = Ticket.objects.select_related("space", "space__host", "buyer").get(pk=ticket_id)
    return notify_ticket_refunded(ticket=ticket)
