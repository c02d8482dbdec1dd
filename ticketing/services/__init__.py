"""Every write to ticketing. Functions take keyword-only arguments, run in short
transactions under the locks of `ticketing.lock_objects`, call Stripe outside
those transactions, raise the typed errors of `ticketing.errors`, leave an
audit entry for every state change and queue Celery tasks after commit."""

from ticketing.services.checkout import (
    CheckoutHold,
    CheckoutStart,
    checkout_begin,
    checkout_finish,
    checkout_session_apply,
    checkout_session_fetch,
    checkout_session_open,
    checkout_session_sync,
    checkout_start,
    hold_release,
    hold_settle,
    holds_sweep,
)
from ticketing.services.offers import space_ticketing_set
from ticketing.services.onboarding import (
    OnboardingStart,
    creator_account_apply,
    creator_account_fetch,
    creator_account_refreshed,
    creator_account_sync,
    creator_onboarding_begin,
    creator_onboarding_finish,
    creator_onboarding_link,
    creator_onboarding_open,
)
from ticketing.services.refunds import (
    RefundAttempt,
    refund_attempt,
    refund_give_up,
    refund_request,
    refund_retry_scheduled,
    refunds_resume,
    space_tickets_close,
    ticket_mark_refunded,
    ticket_refund,
)
from ticketing.services.webhooks import (
    BadSignature,
    charge_refunded_sync,
    webhook_event_process,
    webhook_event_receive,
)

__all__ = [
    "BadSignature",
    "CheckoutHold",
    "CheckoutStart",
    "OnboardingStart",
    "RefundAttempt",
    "charge_refunded_sync",
    "checkout_begin",
    "checkout_finish",
    "checkout_session_apply",
    "checkout_session_fetch",
    "checkout_session_open",
    "checkout_session_sync",
    "checkout_start",
    "creator_account_apply",
    "creator_account_fetch",
    "creator_account_refreshed",
    "creator_account_sync",
    "creator_onboarding_begin",
    "creator_onboarding_finish",
    "creator_onboarding_link",
    "creator_onboarding_open",
    "hold_release",
    "hold_settle",
    "holds_sweep",
    "refund_attempt",
    "refund_give_up",
    "refund_request",
    "refund_retry_scheduled",
    "refunds_resume",
    "space_ticketing_set",
    "space_tickets_close",
    "ticket_mark_refunded",
    "ticket_refund",
    "webhook_event_process",
    "webhook_event_receive",
]
