"""Scheduling: schedules, reminders and notifications on Celery beat (issue: scheduling)."""
