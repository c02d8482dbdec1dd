"""Celery tasks for scheduling: thin, idempotent, retry-safe; each takes ids and calls a service.

`due_work_task` is on the beat schedule (spaces_site/celery.py). Running any
of them twice, or two at once, sends nothing twice: announcements and
deliveries are claimed with a conditional UPDATE before anything is done.
"""

from celery import shared_task

from scheduling import services


@shared_task(acks_late=True)
def due_work_task() -> dict:
    return services.due_work()


@shared_task(acks_late=True)
def announcement_plan_task(announcement_id: int) -> dict:
    return services.announcement_plan(announcement_id=announcement_id)


@shared_task(acks_late=True)
def deliveries_send_task(delivery_ids: list[int]) -> dict:
    return services.deliveries_send(delivery_ids=delivery_ids)
