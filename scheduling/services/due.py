"""The periodic pass that finds due work: Celery beat runs it in production, the in-process ticker
in the one-command default. Every step is safe to run twice at once."""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from rooms.errors import WrongState
from rooms.models import Space, SpaceState
from rooms.services import space_cancel
from scheduling import tasks
from scheduling.services.announcements import announcements_to_plan, lead_announcements_create
from scheduling.services.deliveries import claims_sweep, deliveries_requeue

log = logging.getLogger(__name__)

# Spaces cancelled for not starting, per pass; the next pass takes the rest.
GRACE_CANCELS_PER_PASS = 100


def due_work() -> dict:
    """One pass: sweep stale claims, plan announcements, requeue lost deliveries, cancel spaces that never started.

    Returns what it did, for the task's result and the logs.
    """
    now = timezone.now()
    swept = claims_sweep(now=now)
    leads = lead_announcements_create(now=now)
    to_plan = announcements_to_plan(now=now)
    for announcement_id in to_plan:
        try:
            tasks.announcement_plan_task.delay(announcement_id)
        except Exception:
            # In-process (eager) the plan runs here; one that fails must not hold up the others.
            log.exception("Planning announcement %s failed; the next pass tries again", announcement_id)
    requeued = deliveries_requeue(now=now)
    cancelled = spaces_grace_cancel(now=now)
    return {
        "claims_returned": swept["returned"],
        "claims_failed": swept["failed"],
        "spaces_cancelled": cancelled,
        "lead_announcements": leads,
        "announcements_queued": len(to_plan),
        "deliveries_requeued": requeued,
    }


def spaces_grace_cancel(*, now: datetime) -> int:
    """Cancel scheduled spaces not started SPACES_SCHEDULE_GRACE_H hours after their time.

    Through `rooms.services.space_cancel` with no actor (the system), so the
    refunds and the notices follow the same path as a host's cancellation (`workflows.spaces`).
    """
    cutoff = now - timedelta(hours=settings.SPACES_SCHEDULE_GRACE_H)
    overdue = list(
        Space.objects.filter(state=SpaceState.SCHEDULED, scheduled_for__lt=cutoff)
        .order_by("scheduled_for", "pk")
        .values_list("pk", flat=True)[:GRACE_CANCELS_PER_PASS]
    )
    cancelled = 0
    for space_id in overdue:
        try:
            space_cancel(actor=None, space_id=space_id)
        except WrongState:
            continue  # started or cancelled since we looked
        except Exception:
            # One space that can't be cancelled must not keep the others (or the next pass) waiting.
            log.exception("Cancelling space %s, which never started, failed; the next pass tries again", space_id)
            continue
        cancelled += 1
        log.info("Space %s cancelled: not started %s h after its time", space_id, settings.SPACES_SCHEDULE_GRACE_H)
    return cancelled
