"""Each reminder reaches each person exactly once: under a doubled beat tick, two workers on the same
batch, a retried task, and a worker killed after claiming (the sweep completes its work)."""

from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.core import mail

from scheduling import services
from scheduling.models import Announcement, AnnouncementState, Delivery, DeliveryState, Kind, Notification
from scheduling.services import deliveries as delivery_service
from tests.concurrency import run_together
from tests.scheduling.scene import due, give_reminders, lead_time, make_scheduled_space

HOLDERS = 1000


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_due_work_passes_at_once_over_1000_holders_send_1000_notifications_and_1000_emails():
    # given: 1,000 people with reminders for a space whose lead time has come
    space = make_scheduled_space(minutes_ahead=60)
    holders = give_reminders(space, HOLDERS)

    # when: the due-work task runs twice at the same instant (a doubled beat tick), on two connections
    with time_machine.travel(lead_time(space, seconds=5), tick=True):
        results = run_together([due, due])

    # then: neither failed, and every holder got exactly one notification and one email
    assert not [r for r in results if isinstance(r, BaseException)], results
    reminders = Notification.objects.filter(kind=Kind.REMINDER)
    assert reminders.count() == HOLDERS
    assert set(reminders.values_list("user_id", flat=True)) == {h.pk for h in holders}
    to_holders = [m.to[0] for m in mail.outbox if m.to[0] != space.host.email]
    assert len(to_holders) == len(set(to_holders)) == HOLDERS
    # and the host had their own reminder, once each way
    assert Notification.objects.filter(kind=Kind.HOST_REMINDER, user=space.host).count() == 1
    assert [m.to[0] for m in mail.outbox].count(space.host.email) == 1
    # and the books agree: one lead announcement, every delivery sent, none twice
    assert Announcement.objects.get(space=space).state == AnnouncementState.PLANNED
    assert Delivery.objects.count() == 2 * HOLDERS + 2
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_given_the_same_batch_at_once_send_each_delivery_once():
    # given: 1,000 holders whose deliveries are planned but not yet sent
    space = make_scheduled_space(minutes_ahead=60)
    give_reminders(space, HOLDERS)
    at_lead = lead_time(space, seconds=5)
    with (
        time_machine.travel(at_lead, tick=True),
        mock.patch.object(delivery_service, "queue_for_sending"),
        mock.patch("scheduling.services.announcements.queue_for_sending"),
    ):
        due()
    ids = list(Delivery.objects.order_by("pk").values_list("pk", flat=True))
    assert len(ids) == 2 * HOLDERS + 2 and not Notification.objects.exists()

    # when: two workers get the very same ids at the same instant, and a third retries afterwards
    with time_machine.travel(at_lead + timedelta(seconds=10), tick=True):
        results = run_together([lambda: services.deliveries_send(delivery_ids=ids)] * 2)
        retried = services.deliveries_send(delivery_ids=ids)

    # then: between them they claimed and sent each delivery once; the retry found nothing to do
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sum(r["claimed"] for r in results) == sum(r["sent"] for r in results) == 2 * HOLDERS + 2
    assert retried["claimed"] == retried["sent"] == 0
    assert Notification.objects.count() == HOLDERS + 1
    assert len(mail.outbox) == HOLDERS + 1
    assert len({m.to[0] for m in mail.outbox}) == HOLDERS + 1


class Killed(BaseException):
    """The worker process dies (not an error the task could handle)."""


@pytest.mark.django_db(transaction=True)
def test_a_task_killed_after_claiming_is_completed_by_the_sweep_and_nothing_goes_twice(settings):
    # given: 50 holders at the lead time, and a worker that dies right after claiming its batch
    settings.SPACES_DELIVERY_CLAIM_STALE_S = 300
    space = make_scheduled_space(minutes_ahead=60)
    holders = give_reminders(space, 50)
    at_lead = lead_time(space, seconds=5)
    with (
        time_machine.travel(at_lead, tick=False),
        mock.patch.object(delivery_service, "_send_in_app", side_effect=Killed),
        pytest.raises(Killed),
    ):
        due()

    # then: its first batch (the 50 in-app reminders) is claimed, nothing went out, planning stopped there
    claimed = Delivery.objects.filter(state=DeliveryState.CLAIMED)
    assert claimed.count() == 50 and set(claimed.values_list("channel", flat=True)) == {"in_app"}
    assert Notification.objects.count() == 0 and mail.outbox == []
    assert Announcement.objects.get(space=space).state == AnnouncementState.PLANNING

    # when: due work runs while the claims are fresh (the worker might still be alive)
    with time_machine.travel(at_lead + timedelta(seconds=299), tick=False):
        fresh = due()

    # then: they are left alone
    assert (fresh["claims_returned"], fresh["announcements_queued"]) == (0, 0)
    assert claimed.count() == 50

    # when: due work runs once they're stale
    with time_machine.travel(at_lead + timedelta(seconds=301), tick=False):
        swept = due()

    # then: the sweep returned the claims and finished the planning; everything went out, each once
    assert (swept["claims_returned"], swept["announcements_queued"]) == (50, 1)
    assert Announcement.objects.get(space=space).state == AnnouncementState.PLANNED
    assert Notification.objects.filter(kind=Kind.REMINDER).count() == 50
    assert sorted(m.to[0] for m in mail.outbox if m.to[0] != space.host.email) == sorted(h.email for h in holders)
    assert Notification.objects.count() == len(mail.outbox) == 51
    # and the record shows the swept ones took a second attempt
    assert sorted(Delivery.objects.values_list("channel", "attempts", "state").distinct()) == [
        ("email", 1, DeliveryState.SENT),
        ("in_app", 1, DeliveryState.SENT),  # the host's
        ("in_app", 2, DeliveryState.SENT),
    ]

    # when: the dead worker's task is retried by the broker (acks_late), with the same ids
    ids = list(Delivery.objects.values_list("pk", flat=True))
    retried = services.deliveries_send(delivery_ids=ids)

    # then: nothing more
    assert retried == {"claimed": 0, "sent": 0, "skipped": 0, "retry": 0, "failed": 0, "released": 0}
    assert Notification.objects.count() == 51 and len(mail.outbox) == 51


@pytest.mark.django_db
def test_a_failing_mail_server_is_retried_with_a_growing_wait_then_given_up_with_the_error_kept(settings):
    # given: a holder whose email keeps failing at the mail server
    settings.SPACES_DELIVERY_MAX_ATTEMPTS = 3
    settings.SPACES_DELIVERY_RETRY_S = 60
    space = make_scheduled_space(minutes_ahead=60)
    (holder,) = give_reminders(space, 1)
    start = lead_time(space, seconds=5)
    failing = mock.patch(
        "django.core.mail.backends.locmem.EmailBackend.send_messages",
        side_effect=ConnectionRefusedError("mail server down"),
    )

    # when: the lead time comes, and due work runs at 30 s, 61 s and 3 min after the first failure
    with failing, time_machine.travel(start, tick=False):
        due()
        email = Delivery.objects.get(user=holder, channel="email")
        first = (email.state, email.attempts, email.next_attempt_at)
        with time_machine.travel(start + timedelta(seconds=30), tick=False):
            due()
        too_early = Delivery.objects.get(pk=email.pk).attempts
        with time_machine.travel(start + timedelta(seconds=61), tick=False):
            due()
        second = Delivery.objects.get(pk=email.pk)
        with time_machine.travel(start + timedelta(seconds=61 + 121), tick=False):
            due()

    # then: pending with a 60 s wait, not tried before it, then a 120 s wait, then failed with the error
    assert first == (DeliveryState.PENDING, 1, start + timedelta(seconds=60))
    assert too_early == 1
    assert (second.state, second.attempts, second.next_attempt_at) == (
        DeliveryState.PENDING,
        2,
        start + timedelta(seconds=61 + 120),
    )
    email.refresh_from_db()
    assert (email.state, email.attempts) == (DeliveryState.FAILED, 3)
    assert email.error == "ConnectionRefusedError: mail server down"
    # the in-app notification went out the first time, once
    assert Notification.objects.filter(user=holder).count() == 1
