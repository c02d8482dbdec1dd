"""Every write to scheduling. Functions take keyword-only arguments, raise the
typed errors of `scheduling.errors`, and queue Celery tasks only after commit.
The three `space_*` hooks are called by `rooms.services.lifecycle` inside the
transaction that changes the space."""

from scheduling.services.announcements import (
    announcement_plan,
    announcements_to_plan,
    lead_announcements_create,
    space_cancelled,
    space_rescheduled,
    space_went_live,
)
from scheduling.services.deliveries import (
    claims_sweep,
    deliveries_requeue,
    deliveries_send,
    delivery_retry,
    queue_for_sending,
)
from scheduling.services.due import due_work, spaces_grace_cancel
from scheduling.services.reminders import (
    notifications_mark_read,
    preferences_update,
    reminder_set,
    reminder_unset,
)

__all__ = [
    "announcement_plan",
    "announcements_to_plan",
    "claims_sweep",
    "deliveries_requeue",
    "deliveries_send",
    "delivery_retry",
    "due_work",
    "lead_announcements_create",
    "notifications_mark_read",
    "preferences_update",
    "queue_for_sending",
    "reminder_set",
    "reminder_unset",
    "space_cancelled",
    "space_rescheduled",
    "space_went_live",
    "spaces_grace_cancel",
]
