"""A real Celery worker on the Redis broker delivers a reminder end to end: the due-work task that
beat sends, then the plan task and the send tasks it queues, each through the broker to the worker."""

import threading
import time

import pytest
from celery import signals
from celery.contrib.testing.worker import start_worker
from django.core import mail
from django.db import connection

from scheduling import services, tasks
from scheduling.models import DeliveryState, Kind, Notification
from spaces_site.celery import app
from tests.factories import UserFactory
from tests.scheduling.scene import make_scheduled_space

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]

WAIT_S = 30


@pytest.fixture
def worker(settings):
    """The project's Celery app sending to the Redis broker (not eager) and a worker thread consuming it.

    The broker is the one the settings name (CELERY_BROKER_URL, from REDIS_URL); eager mode and the
    app's configuration are restored afterwards, whatever happens.
    """
    saved = {key: app.conf[key] for key in ("task_always_eager", "broker_url")}
    ran: list[tuple[str, str]] = []

    def record(sender=None, **kwargs):
        ran.append((sender.name, threading.current_thread().name))

    def close_connection(**kwargs):
        connection.close()  # the worker thread's own database connection

    app.conf.update(task_always_eager=False, broker_url=settings.CELERY_BROKER_URL)
    signals.task_prerun.connect(record, weak=False)
    signals.task_postrun.connect(close_connection, weak=False)
    try:
        app.control.purge()  # nothing left over from an earlier run
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            yield ran
    finally:
        signals.task_prerun.disconnect(record)
        signals.task_postrun.disconnect(close_connection)
        app.conf.update(saved)


def test_a_worker_on_the_redis_broker_delivers_a_reminder_end_to_end(settings, worker):
    # given: a space an hour ahead, a lead time of 90 minutes (so it is due now), and a holder
    settings.SPACES_REMINDER_LEAD_MIN = 90
    space = make_scheduled_space(minutes_ahead=60, title="Through the broker")
    holder = UserFactory(email="holder@example.com")
    services.reminder_set(user=holder, space_id=space.pk)

    # when: the due-work task is sent as beat sends it
    tasks.due_work_task.delay()
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and not (
        Notification.objects.filter(user=holder).exists() and len(mail.outbox) == 2
    ):
        time.sleep(0.1)

    # then: the worker ran each task, from the broker, on its own thread
    names = [name for name, _ in worker]
    assert names[:2] == ["scheduling.tasks.due_work_task", "scheduling.tasks.announcement_plan_task"]
    assert set(names[2:]) == {"scheduling.tasks.deliveries_send_task"}
    assert all(thread != threading.main_thread().name for _, thread in worker)
    # and the holder got the reminder in the app and by email, the host theirs, once each
    notification = Notification.objects.get(user=holder)
    assert (notification.kind, notification.title) == (Kind.REMINDER, "Starting in 60 min: Through the broker")
    assert sorted(m.to[0] for m in mail.outbox) == sorted(["holder@example.com", space.host.email])
    assert set(holder.deliveries.values_list("state", flat=True)) == {DeliveryState.SENT}
