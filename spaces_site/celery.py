"""The Celery app. Without a broker configured, tasks run in-process (eager)."""

import os

from celery import Celery
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_site.settings")

app = Celery("spaces_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The static part of the beat schedule; django-celery-beat's database scheduler
# picks these up and staff can add or pause entries in the admin.
app.conf.beat_schedule = {
    "rooms-presence-sweep": {"task": "rooms.tasks.presence_sweep_task", "schedule": 15.0},
    "rooms-transcripts-expire": {"task": "rooms.tasks.transcripts_expire_task", "schedule": 3600.0},
    # Recordings and clips past their retention; recordings a dead media worker left in its spool.
    "media-recordings-expire": {"task": "media.tasks.recordings_expire_task", "schedule": 3600.0},
    "media-recordings-recover": {"task": "media.tasks.recordings_recover_task", "schedule": 300.0},
    # Ticket holds whose Stripe webhook never came, and refunds whose task was lost.
    "ticketing-holds-sweep": {"task": "ticketing.tasks.holds_sweep_task", "schedule": 60.0},
    # Stripe events whose worker died mid-handling, or whose task (or its retry) was lost.
    "ticketing-webhooks-resume": {"task": "ticketing.tasks.webhook_events_resume_task", "schedule": 60.0},
    # Reminders and notifications: lead reminders, stale claims, lost tasks, spaces that never started.
    # A tick that waited longer than its period in the queue is dropped; the next one does the same work.
    "scheduling-due-work": {
        "task": "scheduling.tasks.due_work_task",
        "schedule": float(settings.SPACES_DUE_WORK_S),
        "options": {"expires": float(settings.SPACES_DUE_WORK_S)},
    },
}
