"""Reminders fire at the lead time and at go-live, and not before; a space that never starts is
cancelled after the grace period, and not before. Time is moved with time-machine."""

from datetime import timedelta
from html import unescape
from unittest import mock

import pytest
import time_machine
from django.core import mail

from accounts.models import AuditEntry
from accounts.services import follow_create
from rooms import services as rooms_services
from rooms.models import Space, SpaceState
from scheduling import services
from scheduling.models import Delivery, DeliveryState, Kind, Notification
from tests.factories import UserFactory
from tests.rooms.scene import make_host
from tests.scheduling.scene import due, kinds_of, lead_time, make_scheduled_space

pytestmark = pytest.mark.django_db


def test_reminders_fire_at_the_lead_time_and_at_go_live_and_not_before(django_capture_on_commit_callbacks):
    # given: a space an hour ahead; ada and lee set reminders, lee and bo follow the host
    host = make_host(username="hana", display_name="Hana")
    space = make_scheduled_space(host, minutes_ahead=60, title="Night owls")
    ada, lee, bo = (UserFactory(username=name) for name in ("ada", "lee", "bo"))
    for person in (ada, lee):
        services.reminder_set(user=person, space_id=space.pk)
    for person in (lee, bo):
        follow_create(follower=person, followee=host)

    # when: due work runs a second before the lead time
    with time_machine.travel(lead_time(space, seconds=-1), tick=False):
        due()

    # then: nothing is sent, nothing is even planned
    assert Notification.objects.count() == 0
    assert mail.outbox == []
    assert Delivery.objects.count() == 0

    # when: due work runs at the lead time (15 minutes before the start)
    with time_machine.travel(lead_time(space), tick=False):
        due()

    # then: both holders get "starting soon" in the app and by email, the host their own reminder
    assert kinds_of(ada) == kinds_of(lee) == [Kind.REMINDER]
    assert kinds_of(host) == [Kind.HOST_REMINDER]
    assert kinds_of(bo) == []
    reminder = Notification.objects.get(user=ada)
    assert reminder.title == "Starting in 15 min: Night owls"
    assert reminder.url == f"/spaces/{space.pk}/"
    assert sorted(m.to[0] for m in mail.outbox) == sorted(p.email for p in (ada, lee, host))
    email = next(m for m in mail.outbox if m.to == [ada.email])
    assert email.subject == "Starting in 15 min: Night owls"
    assert f"http://127.0.0.1:8000/spaces/{space.pk}/" in email.body
    assert f"/spaces/{space.pk}/calendar.ics" in email.body
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html" and "Hana's space “Night owls” starts at" in unescape(html)

    # when: due work runs again and again until just before the start
    for minutes in (5, 10, 14):
        with time_machine.travel(lead_time(space, seconds=minutes * 60), tick=False):
            due()

    # then: nobody hears twice
    assert Notification.objects.count() == 3
    assert len(mail.outbox) == 3

    # when: the host starts the space three minutes early
    with (
        time_machine.travel(space.scheduled_for - timedelta(minutes=3), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        rooms_services.space_start(actor=host, space_id=space.pk)

    # then: the holders hear it's live (lee once, though lee follows the host too), bo that Hana is live
    assert kinds_of(ada) == kinds_of(lee) == [Kind.REMINDER, Kind.LIVE]
    assert kinds_of(bo) == [Kind.HOST_LIVE]
    assert kinds_of(host) == [Kind.HOST_REMINDER]
    assert Notification.objects.get(user=bo).title == "Hana is live now"
    # live notices go by email to holders; "someone you follow is live" is in-app only by default
    assert sorted(m.to[0] for m in mail.outbox[3:]) == sorted([ada.email, lee.email])
    assert mail.outbox[3].subject == "Live now: Night owls"
    assert set(Delivery.objects.values_list("state", flat=True)) == {DeliveryState.SENT}


def test_a_space_scheduled_inside_the_lead_time_reminds_at_the_next_pass():
    # given: a space 15 minutes and 10 seconds ahead (about the soonest allowed, and inside the lead time soon)
    space = make_scheduled_space(minutes_ahead=15 + 10 / 60)
    holder = UserFactory()
    services.reminder_set(user=holder, space_id=space.pk)

    # when: the next pass runs 20 seconds later
    with time_machine.travel(space.scheduled_for - timedelta(minutes=14, seconds=40), tick=False):
        due()

    # then: the reminder is out
    assert kinds_of(holder) == [Kind.REMINDER]
    assert Notification.objects.get(user=holder).title == "Starting in 15 min: Scheduled talk"


def test_no_starting_soon_reminder_once_the_start_time_has_passed():
    # given: a reminder, and due work that didn't run during the lead time (a long outage)
    space = make_scheduled_space(minutes_ahead=60)
    holder = UserFactory()
    services.reminder_set(user=holder, space_id=space.pk)

    # when: due work runs a minute after the start time (the host hasn't started yet)
    with time_machine.travel(space.scheduled_for + timedelta(minutes=1), tick=False):
        due()

    # then: "starts in 15 minutes" would be wrong now, so nothing is sent
    assert Notification.objects.count() == 0
    assert mail.outbox == []


def test_turned_off_kinds_and_channels_are_not_sent():
    # given: three holders: one turned reminder emails off, one turned reminders off in the app
    space = make_scheduled_space(minutes_ahead=60)
    quiet_inbox, quiet_app, everything = UserFactory(), UserFactory(), UserFactory()
    services.preferences_update(user=quiet_inbox, changes={"reminder": {"email": False}})
    services.preferences_update(user=quiet_app, changes={"reminder": {"in_app": False}})
    for person in (quiet_inbox, quiet_app, everything):
        services.reminder_set(user=person, space_id=space.pk)
    # and someone without an email address
    no_address = UserFactory(email="")
    services.reminder_set(user=no_address, space_id=space.pk)

    # when: the lead time comes
    with time_machine.travel(lead_time(space), tick=False):
        due()

    # then: each gets what they asked for, and nothing is planned for what they turned off
    assert kinds_of(quiet_inbox) == kinds_of(everything) == kinds_of(no_address) == [Kind.REMINDER]
    assert kinds_of(quiet_app) == []
    host_email = space.host.email
    assert sorted(m.to[0] for m in mail.outbox) == sorted([quiet_app.email, everything.email, host_email])
    assert not Delivery.objects.filter(user=quiet_inbox, channel="email").exists()
    assert not Delivery.objects.filter(user=no_address, channel="email").exists()


def test_a_space_not_started_within_the_grace_period_is_cancelled_then_and_not_before(
    django_capture_on_commit_callbacks,
):
    # given: a scheduled space with a reminder holder
    space = make_scheduled_space(minutes_ahead=30, title="Never happened")
    holder = UserFactory()
    services.reminder_set(user=holder, space_id=space.pk)
    grace_end = space.scheduled_for + timedelta(hours=2)

    # when: due work runs a second before the grace period ends
    with time_machine.travel(grace_end - timedelta(seconds=1), tick=False):
        due()

    # then: the space is still scheduled (the host may still start it)
    assert Space.objects.get(pk=space.pk).state == SpaceState.SCHEDULED

    # when: due work runs a second after
    with (
        time_machine.travel(grace_end + timedelta(seconds=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = due()

    # then: the system cancelled it (no actor in the audit trail) and the holder is told
    space.refresh_from_db()
    assert (space.state, space.end_reason) == (SpaceState.CANCELLED, "cancelled")
    assert result["spaces_cancelled"] == 1
    entry = AuditEntry.objects.get(action="rooms.space.cancelled", subject_id=str(space.pk))
    assert entry.actor is None
    assert kinds_of(holder) == [Kind.CANCELLED]
    assert Notification.objects.get(user=holder).title == "Cancelled: Never happened"
    assert [m.subject for m in mail.outbox if m.to == [holder.email]] == ["Cancelled: Never happened"]

    # when: due work runs again
    with time_machine.travel(grace_end + timedelta(minutes=1), tick=False):
        again = due()

    # then: nothing more
    assert again["spaces_cancelled"] == 0
    assert Notification.objects.filter(user=holder).count() == 1


def test_a_space_that_cannot_be_cancelled_does_not_hold_up_the_others_or_the_reminders(caplog):
    # given: two spaces past their grace period, and one whose cancellation fails
    stuck, overdue = make_scheduled_space(minutes_ahead=20), make_scheduled_space(minutes_ahead=25)
    upcoming = make_scheduled_space(minutes_ahead=60 * 3)
    holder = UserFactory()
    services.reminder_set(user=holder, space_id=upcoming.pk)
    cancel = rooms_services.space_cancel

    def failing_for_stuck(*, actor, space_id):
        if space_id == stuck.pk:
            raise RuntimeError("disk full")
        return cancel(actor=actor, space_id=space_id)

    # when: due work runs when both are past their grace period and the third space's lead time has come
    with (
        time_machine.travel(lead_time(upcoming), tick=False),
        mock.patch("scheduling.services.due.space_cancel", side_effect=failing_for_stuck),
    ):
        result = due()

    # then: the other overdue space is cancelled, the reminder went out, and the failure is logged
    assert result["spaces_cancelled"] == 1
    assert Space.objects.get(pk=overdue.pk).state == SpaceState.CANCELLED
    assert Space.objects.get(pk=stuck.pk).state == SpaceState.SCHEDULED
    assert kinds_of(holder) == [Kind.REMINDER]
    assert f"Cancelling space {stuck.pk}, which never started, failed" in caplog.text
