"""Stripe events whose handling crashed or whose worker died are handled again, still exactly once."""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from accounts.models import AuditEntry
from spaces_site.celery import app
from tests.factories import UserFactory
from tests.ticketing.scene import buy, deliver, make_ticketed_space
from ticketing import services, tasks
from ticketing.models import Ticket, TicketState, WebhookEvent
from ticketing.services import webhooks

pytestmark = pytest.mark.django_db(transaction=True)


class WorkerKilled(BaseException):
    """What a worker killed mid-handling looks like from the inside: nothing of ours gets to finish."""


def paid_checkout(standin) -> tuple[Ticket, dict]:
    """A held ticket whose buyer has paid at Stripe; returns it and Stripe's `checkout.session.completed`."""
    ticket = buy(UserFactory(), make_ticketed_space(standin)).ticket
    return ticket, standin.pay(ticket.checkout_session_id)


def handler_that(monkeypatch, *failures: BaseException) -> list[str]:
    """Make the checkout handler raise `failures` one per call, then work; returns the calls' outcomes."""
    real, pending, calls = webhooks.checkout_session_sync, list(failures), []

    def sync(*, session_id: str) -> str:
        if pending:
            calls.append("raised")
            raise pending.pop(0)
        calls.append("handled")
        return real(session_id=session_id)

    monkeypatch.setattr(webhooks, "checkout_session_sync", sync)
    return calls


def paid_audit_rows(ticket: Ticket) -> int:
    return AuditEntry.objects.filter(action="ticketing.ticket.paid", subject_id=str(ticket.pk)).count()


def test_a_handler_that_crashes_is_retried_with_backoff_and_pays_the_ticket_once(stripe_standin, monkeypatch, caplog):
    # given: the handler crashes with an error nobody foresaw, twice, then works
    ticket, event = paid_checkout(stripe_standin)
    calls = handler_that(monkeypatch, RuntimeError("boom"), KeyError("session"))
    countdowns = []
    real_retry = tasks._retry
    monkeypatch.setattr(tasks, "_retry", lambda task, countdown: countdowns.append(countdown) or real_retry(task, 0))

    # when
    with caplog.at_level(logging.ERROR, logger="ticketing.services.webhooks"):
        answer = deliver(stripe_standin, event)

    # then: Stripe is told 200; the task tried again after 5 s, then 10 s, and the third attempt paid the ticket
    assert answer.status_code == 200
    assert calls == ["raised", "raised", "handled"]
    assert countdowns == [5, 10]
    stored = WebhookEvent.objects.get()
    assert (stored.status, stored.attempts, stored.error, stored.next_attempt_at) == ("succeeded", 3, "", None)
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.PAID
    assert paid_audit_rows(ticket) == 1
    # the crashes were logged with their traceback
    crashes = [r for r in caplog.records if r.exc_info]
    assert [type(r.exc_info[1]).__name__ for r in crashes] == ["RuntimeError", "KeyError"]

    # when: Stripe delivers it again
    deliver(stripe_standin, event)

    # then: nothing runs twice
    stored.refresh_from_db()
    assert (stored.status, stored.attempts, stored.deliveries) == ("succeeded", 3, 2)
    assert calls == ["raised", "raised", "handled"]
    assert paid_audit_rows(ticket) == 1


def test_a_crash_leaves_the_event_failed_with_its_error_not_started(stripe_standin, monkeypatch):
    # given: an event stored while its worker died, taken again by hand (as staff do) while the handler crashes
    ticket, event = paid_checkout(stripe_standin)
    handler_that(monkeypatch, WorkerKilled(), RuntimeError("boom"))
    with pytest.raises(WorkerKilled):
        deliver(stripe_standin, event)
    stored = WebhookEvent.objects.get()

    # when
    with time_machine.travel(timezone.now() + webhooks.STALE_START, tick=False):
        result = services.webhook_event_process(event_id=stored.pk)

    # then: failed with the error kept, for the task to try again
    stored.refresh_from_db()
    assert result == "retry"
    assert (stored.status, stored.attempts, stored.error) == ("failed", 2, "RuntimeError: boom")
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.HELD


def test_a_redelivery_of_an_event_stuck_started_past_the_timeout_is_handled(stripe_standin, monkeypatch):
    # given: the worker handling the event died, leaving it `started`
    ticket, event = paid_checkout(stripe_standin)
    calls = handler_that(monkeypatch, WorkerKilled())
    with pytest.raises(WorkerKilled):
        deliver(stripe_standin, event)
    assert WebhookEvent.objects.get().status == "started"

    # when: Stripe delivers it again after the timeout
    with time_machine.travel(timezone.now() + webhooks.STALE_START + timedelta(seconds=1), tick=False):
        answer = deliver(stripe_standin, event)

    # then: handled, once
    stored = WebhookEvent.objects.get()
    assert answer.status_code == 200
    assert (stored.status, stored.attempts, stored.deliveries) == ("succeeded", 2, 2)
    assert calls == ["raised", "handled"]
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.PAID
    assert paid_audit_rows(ticket) == 1


def test_a_redelivery_while_the_event_is_freshly_started_does_not_run_it_twice(stripe_standin, monkeypatch):
    # given: Stripe delivers the event again while its first handling is still running
    ticket, event = paid_checkout(stripe_standin)
    real = webhooks.checkout_session_sync
    redeliveries, calls = [], []

    def sync(*, session_id: str) -> str:
        calls.append(session_id)
        redeliveries.append(deliver(stripe_standin, event).status_code)
        return real(session_id=session_id)

    monkeypatch.setattr(webhooks, "checkout_session_sync", sync)

    # when
    deliver(stripe_standin, event)

    # then: the redelivery was answered 200 and found it busy; the handler ran once
    stored = WebhookEvent.objects.get()
    assert redeliveries == [200]
    assert calls == [ticket.checkout_session_id]
    assert (stored.status, stored.attempts, stored.deliveries) == ("succeeded", 1, 2)
    assert paid_audit_rows(ticket) == 1


def test_a_handler_so_slow_it_was_taken_over_does_not_overwrite_the_new_record(stripe_standin, monkeypatch):
    # given: the first handler stalls past its timeout; meanwhile Stripe delivers again and that one pays the ticket
    ticket, event = paid_checkout(stripe_standin)
    real = webhooks.checkout_session_sync
    calls = []

    def sync(*, session_id: str) -> str:
        calls.append(session_id)
        if len(calls) == 1:
            with time_machine.travel(timezone.now() + webhooks.STALE_START * 2, tick=False):
                deliver(stripe_standin, event)
            raise RuntimeError("woke up to a closed connection")
        return real(session_id=session_id)

    monkeypatch.setattr(webhooks, "checkout_session_sync", sync)

    # when
    deliver(stripe_standin, event)

    # then: the slow one's crash is not recorded over the success (its retry finds the event done)
    stored = WebhookEvent.objects.get()
    assert len(calls) == 2
    assert (stored.status, stored.attempts, stored.error) == ("succeeded", 2, "")
    assert paid_audit_rows(ticket) == 1


def test_the_sweep_takes_a_stale_start_again_after_a_timeout_that_doubles(stripe_standin, monkeypatch):
    # given: the worker died handling the event
    ticket, event = paid_checkout(stripe_standin)
    calls = handler_that(monkeypatch, WorkerKilled(), WorkerKilled())
    with pytest.raises(WorkerKilled):
        deliver(stripe_standin, event)
    died_at = timezone.now()

    def sweep_at(after: timedelta) -> int:
        with time_machine.travel(died_at + after, tick=False):
            return tasks.webhook_events_resume_task.delay().result

    # when/then: not before the timeout; after it, taken again (and the worker dies again)
    assert sweep_at(timedelta(minutes=9)) == 0
    with pytest.raises(WorkerKilled):
        sweep_at(timedelta(minutes=11))
    assert WebhookEvent.objects.get().attempts == 2
    # the second timeout is twice the first: 20 minutes after the second start
    assert sweep_at(timedelta(minutes=11 + 19)) == 0
    assert sweep_at(timedelta(minutes=11 + 21)) == 1

    stored = WebhookEvent.objects.get()
    assert (stored.status, stored.attempts) == ("succeeded", 3)
    assert calls == ["raised", "raised", "handled"]
    assert paid_audit_rows(ticket) == 1
    assert sweep_at(timedelta(hours=3)) == 0


def test_the_sweep_takes_again_a_failed_event_whose_retry_was_lost_and_one_never_queued(stripe_standin, monkeypatch):
    # given: one event failed, and the task's retry was lost; another was stored, and its task was lost
    ticket, event = paid_checkout(stripe_standin)
    other_ticket, other_event = paid_checkout(stripe_standin)
    stripe_standin.fail_next("GET", "/v1/checkout/sessions/")
    with monkeypatch.context() as lost:
        lost.setattr(tasks, "_retry", lambda task, countdown: "lost")
        deliver(stripe_standin, event)
    with monkeypatch.context() as lost:
        lost.setattr(tasks.webhook_event_handle_task, "apply_async", lambda *args, **kwargs: None)
        deliver(stripe_standin, other_event)
    failed = WebhookEvent.objects.get(stripe_event_id=event["id"])
    never_queued = WebhookEvent.objects.get(stripe_event_id=other_event["id"])
    assert (failed.status, failed.attempts, never_queued.status) == ("failed", 1, "received")

    # when: the sweep runs at once, and again once the retry is clearly overdue
    early = tasks.webhook_events_resume_task.delay().result
    with time_machine.travel(failed.next_attempt_at + webhooks.RETRY_LOST_AFTER + timedelta(seconds=1), tick=False):
        late = tasks.webhook_events_resume_task.delay().result

    # then: both handled, each once
    assert (early, late) == (0, 2)
    stored = dict(WebhookEvent.objects.values_list("stripe_event_id", "attempts"))
    assert stored == {event["id"]: 2, other_event["id"]: 1}
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"succeeded"}
    assert {Ticket.objects.get(pk=t.pk).state for t in (ticket, other_ticket)} == {TicketState.PAID}


def test_a_start_that_never_finishes_is_given_up_after_the_last_attempt(stripe_standin, monkeypatch):
    # given: the worker dies every time
    ticket, event = paid_checkout(stripe_standin)
    handler_that(monkeypatch, *(WorkerKilled() for _ in range(webhooks.SWEEP_MAX_ATTEMPTS)))
    with pytest.raises(WorkerKilled):
        deliver(stripe_standin, event)
    at = timezone.now()
    for _ in range(webhooks.SWEEP_MAX_ATTEMPTS - 1):
        at += webhooks.STALE_START * 64
        with time_machine.travel(at, tick=False), pytest.raises(WorkerKilled):
            tasks.webhook_events_resume_task.delay()

    # when: the last start times out
    with time_machine.travel(at + webhooks.STALE_START * 64, tick=False):
        swept = tasks.webhook_events_resume_task.delay().result

    # then: it is marked failed for staff (or Stripe's next delivery), not taken again
    stored = WebhookEvent.objects.get()
    assert swept == 0
    assert (stored.status, stored.attempts, stored.next_attempt_at) == ("failed", webhooks.SWEEP_MAX_ATTEMPTS, None)
    assert stored.error == f"Its handling started {webhooks.SWEEP_MAX_ATTEMPTS} times and never finished."
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.HELD


def test_celery_beat_sweeps_webhook_events_every_minute():
    entry = app.conf.beat_schedule["ticketing-webhooks-resume"]

    assert entry == {"task": "ticketing.tasks.webhook_events_resume_task", "schedule": 60.0}
    assert entry["task"] in app.tasks


@pytest.mark.postgres
def test_racing_redeliveries_of_a_stale_start_run_the_handler_once(stripe_standin, monkeypatch):
    # given: an event stuck `started` past its timeout
    ticket, event = paid_checkout(stripe_standin)
    calls = handler_that(monkeypatch, WorkerKilled())
    with pytest.raises(WorkerKilled):
        deliver(stripe_standin, event)
    event_id = WebhookEvent.objects.get().pk
    go = threading.Event()

    def handle() -> str:
        go.wait(timeout=30)
        try:
            return services.webhook_event_process(event_id=event_id)
        finally:
            connection.close()

    # when: eight workers take it at once
    with time_machine.travel(timezone.now() + webhooks.STALE_START * 2, tick=True), ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(handle) for _ in range(8)]
        go.set()
        results = sorted(f.result(timeout=60) for f in futures)

    # then: one ran it; the others found it busy or done
    assert results.count("succeeded") == 1
    assert set(results) <= {"succeeded", "busy", "done"}
    assert calls == ["raised", "handled"]
    assert WebhookEvent.objects.get().attempts == 2
    assert paid_audit_rows(ticket) == 1
