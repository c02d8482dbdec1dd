"""The Celery app. Without a broker configured, tasks run in-process (eager)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_site.settings")

app = Celery("spaces_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
