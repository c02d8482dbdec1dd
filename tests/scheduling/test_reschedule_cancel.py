"""Rescheduling moves the reminders (and tells their holders); cancelling tells them, and a ticketed
space is refunded through the ticketing service, whether the host cancels or the space never starts."""

from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from accounts.services import follow_create
from rooms import services as rooms_services
from rooms.errors import InvalidSpace
from rooms.models import Space, SpaceState
from scheduling import services
from scheduling.models import Announcement, Delivery, DeliveryState, Kind, Notification, Occasion
from tests.factories import UserFactory
from tests.scheduling.scene import due, kinds_of, lead_time, make_scheduled_space
from tests.ticketing.scene import buy_and_pay, make_ticketed_space
from ticketing.models import Refund, RefundState, Ticket, TicketState


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_rescheduling_moves_the_reminders_to_the_new_time(django_capture_on_commit_callbacks):
    # given: a space an hour ahead with a reminder holder
    space = make_scheduled_space(minutes_ahead=60, title="Moving talk")
    holder = UserFactory()
    services.reminder_set(user=holder, space_id=space.pk)
    old_time, new_time = space.scheduled_for, space.scheduled_for + timedelta(hours=2)

    # when: the host moves it two hours later through the API
    with django_capture_on_commit_callbacks(execute=True):
        answer = as_user(space.host).post(
            f"/api/spaces/{space.pk}/reschedule/", {"scheduled_for": new_time.isoformat()}, format="json"
        )

    # then: the new time is saved, audited, and the holder is told, in the app and by email
    assert answer.status_code == 200, answer.json()
    assert answer.json()["scheduled_for"] == new_time.isoformat()
    assert Space.objects.get(pk=space.pk).scheduled_for == new_time
    audit = AuditEntry.objects.get(action="rooms.space.rescheduled")
    assert (audit.actor, audit.details["previous"]) == (space.host, old_time.isoformat())
    notice = Notification.objects.get(user=holder)
    assert (notice.kind, notice.title) == (Kind.RESCHEDULED, "New time: Moving talk")
    assert new_time.strftime("%H:%M UTC") in notice.body
    assert [m.subject for m in mail.outbox] == ["New time: Moving talk"]

    # when: the old lead time comes
    with time_machine.travel(old_time - timedelta(minutes=15), tick=False):
        due()

    # then: no reminder (the space isn't starting then)
    assert kinds_of(holder) == [Kind.RESCHEDULED]

    # when: the new lead time comes
    with time_machine.travel(new_time - timedelta(minutes=15), tick=False):
        due()

    # then: the reminder goes out, for the new time
    assert kinds_of(holder) == [Kind.RESCHEDULED, Kind.REMINDER]
    assert new_time.strftime("%H:%M UTC") in Notification.objects.get(user=holder, kind=Kind.REMINDER).body


@pytest.mark.django_db
def test_a_space_moved_after_its_reminder_went_out_reminds_again_before_the_new_time(
    django_capture_on_commit_callbacks,
):
    # given: the lead reminder already went out
    space = make_scheduled_space(minutes_ahead=60)
    holder = UserFactory()
    services.reminder_set(user=holder, space_id=space.pk)
    with time_machine.travel(lead_time(space), tick=False):
        due()
    new_time = space.scheduled_for + timedelta(hours=1)

    # when: five minutes later the host pushes the start back an hour, and the new lead time comes
    with (
        time_machine.travel(lead_time(space, seconds=300), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        rooms_services.space_reschedule(actor=space.host, space_id=space.pk, scheduled_for=new_time)
    with time_machine.travel(new_time - timedelta(minutes=15), tick=False):
        due()

    # then: reminded for each time (the delivery key includes the schedule's round), told of the move between
    assert kinds_of(holder) == [Kind.REMINDER, Kind.RESCHEDULED, Kind.REMINDER]
    rounds = Delivery.objects.filter(user=holder, kind=Kind.REMINDER, channel="in_app").values_list("round", flat=True)
    assert sorted(rounds) == [0, 1]
    assert kinds_of(space.host) == [Kind.HOST_REMINDER, Kind.HOST_REMINDER]


@pytest.mark.django_db
def test_lead_reminders_planned_but_not_sent_are_dropped_when_the_space_moves():
    # given: lead reminders planned for 3 holders, waiting in the queue (the workers are busy)
    space = make_scheduled_space(minutes_ahead=60)
    holders = [UserFactory() for _ in range(3)]
    for holder in holders:
        services.reminder_set(user=holder, space_id=space.pk)
    with (
        time_machine.travel(lead_time(space), tick=False),
        mock.patch("scheduling.services.announcements.queue_for_sending"),
    ):
        due()
    waiting = list(Delivery.objects.filter(state=DeliveryState.PENDING).values_list("pk", flat=True))
    assert len(waiting) == 8  # 3 holders and the host, in the app and by email

    # when: the host moves the space, then a worker gets to the old batch
    with time_machine.travel(lead_time(space, seconds=60), tick=False):
        rooms_services.space_reschedule(
            actor=space.host, space_id=space.pk, scheduled_for=space.scheduled_for + timedelta(days=1)
        )
        result = services.deliveries_send(delivery_ids=waiting)

    # then: they were dropped with the reason, and nobody was told the old time
    assert result["claimed"] == 0
    assert set(Delivery.objects.filter(pk__in=waiting).values_list("state", "error")) == {
        (DeliveryState.SKIPPED, "The space was rescheduled.")
    }
    assert not Notification.objects.filter(kind=Kind.REMINDER).exists()


@pytest.mark.django_db
def test_a_reminder_a_busy_worker_reaches_after_the_space_went_live_is_skipped_not_sent():
    # given: a lead reminder planned and claimed... by a worker that only gets to it after the start
    space = make_scheduled_space(minutes_ahead=60)
    holder = UserFactory()
    services.reminder_set(user=holder, space_id=space.pk)
    with (
        time_machine.travel(lead_time(space), tick=False),
        mock.patch("scheduling.services.announcements.queue_for_sending"),
    ):
        due()
    waiting = list(Delivery.objects.filter(state=DeliveryState.PENDING).values_list("pk", flat=True))
    rooms_services.space_start(actor=space.host, space_id=space.pk)

    # when: the worker sends the batch
    result = services.deliveries_send(delivery_ids=waiting)

    # then: "starting in 15 min" is no longer true: skipped, with why
    assert (result["claimed"], result["skipped"], result["sent"]) == (4, 4, 0)
    assert set(Delivery.objects.filter(pk__in=waiting).values_list("error", flat=True)) == {"The space is live."}
    assert not Notification.objects.filter(kind=Kind.REMINDER).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("shift", "detail"),
    [
        (timedelta(minutes=-5), "That time has passed"),
        (timedelta(minutes=10), "That's too soon"),
        (timedelta(days=31), "That's too far ahead"),
    ],
)
def test_a_time_outside_the_window_is_refused_with_the_window_in_the_message(shift, detail):
    # given: a scheduled space
    space = make_scheduled_space(minutes_ahead=60)
    before = space.scheduled_for

    # when: the host asks for a time in the past, too soon, or too far ahead
    answer = as_user(space.host).post(
        f"/api/spaces/{space.pk}/reschedule/", {"scheduled_for": (timezone.now() + shift).isoformat()}, format="json"
    )

    # then: 400 with the rule and the window's ends, and nothing changed
    body = answer.json()
    assert answer.status_code == 400
    assert body["code"] == "bad_schedule"
    assert body["detail"] == f"{detail}: a space can be scheduled from 15 minutes to 30 days ahead."
    assert {"earliest", "latest"} <= set(body)
    assert Space.objects.get(pk=space.pk).scheduled_for == before
    assert not Announcement.objects.filter(occasion=Occasion.RESCHEDULED).exists()


@pytest.mark.django_db
def test_only_the_host_or_staff_reschedule_and_only_a_scheduled_space():
    space = make_scheduled_space(minutes_ahead=60)
    later = (space.scheduled_for + timedelta(hours=1)).isoformat()
    url = f"/api/spaces/{space.pk}/reschedule/"

    stranger = as_user(UserFactory()).post(url, {"scheduled_for": later}, format="json")
    anonymous = APIClient().post(url, {"scheduled_for": later}, format="json")
    missing = as_user(space.host).post(url, {}, format="json")
    garbled = as_user(space.host).post(url, {"scheduled_for": "next tuesday"}, format="json")
    unknown = as_user(space.host).post("/api/spaces/999999/reschedule/", {"scheduled_for": later}, format="json")
    by_staff = as_user(UserFactory(is_staff=True)).post(url, {"scheduled_for": later}, format="json")
    rooms_services.space_start(actor=space.host, space_id=space.pk)
    live = as_user(space.host).post(url, {"scheduled_for": later}, format="json")

    assert (stranger.status_code, stranger.json()) == (
        403,
        {"code": "not_allowed", "detail": "Only the host can reschedule this space."},
    )
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    assert missing.status_code == 400 and missing.json()["detail"] == "scheduled_for: This field is required."
    assert garbled.status_code == 400 and garbled.json()["code"] == "invalid"
    assert unknown.status_code == 404 and unknown.json()["code"] == "space_not_found"
    assert by_staff.status_code == 200
    assert (live.status_code, live.json()["code"]) == (409, "wrong_state")
    assert live.json()["detail"] == "This space is live; only a scheduled space can be rescheduled."


@pytest.mark.django_db
def test_a_naive_time_is_refused_by_the_service():
    space = make_scheduled_space(minutes_ahead=60)
    naive = (timezone.now() + timedelta(hours=3)).replace(tzinfo=None)

    with pytest.raises(InvalidSpace) as refused:
        rooms_services.space_reschedule(actor=space.host, space_id=space.pk, scheduled_for=naive)

    assert refused.value.as_dict() == {"code": "bad_schedule", "detail": "Give the start time with its time zone."}


@pytest.mark.django_db
def test_cancelling_tells_every_reminder_holder_once_and_nobody_else(django_capture_on_commit_callbacks):
    # given: two holders and a follower of the host
    space = make_scheduled_space(minutes_ahead=60, title="Called off")
    holders = [UserFactory(), UserFactory()]
    for holder in holders:
        services.reminder_set(user=holder, space_id=space.pk)
    follower = UserFactory()
    follow_create(follower=follower, followee=space.host)

    # when: the host cancels through the API, and due work runs afterwards
    with django_capture_on_commit_callbacks(execute=True):
        answer = as_user(space.host).post(f"/api/spaces/{space.pk}/cancel/")
    due()

    # then: the holders are told in the app and by email, once; nobody else
    assert answer.status_code == 200 and answer.json()["state"] == SpaceState.CANCELLED
    for holder in holders:
        assert kinds_of(holder) == [Kind.CANCELLED]
    assert kinds_of(follower) == kinds_of(space.host) == []
    assert sorted(m.to[0] for m in mail.outbox) == sorted(h.email for h in holders)
    assert mail.outbox[0].subject == "Cancelled: Called off"
    assert "won't take place" in mail.outbox[0].body


@pytest.mark.django_db(transaction=True)
def test_the_host_cancelling_a_ticketed_space_refunds_the_buyers_and_tells_the_holders(stripe_standin):
    # given: a ticketed space with a paid buyer and a reminder holder who didn't buy
    space = make_ticketed_space(stripe_standin, price_minor=800)
    buyer = UserFactory(email="buyer@example.com")
    ticket = buy_and_pay(stripe_standin, buyer, space)
    holder = UserFactory(email="holder@example.com")
    services.reminder_set(user=holder, space_id=space.pk)

    # when: the host cancels
    as_user(space.host).post(f"/api/spaces/{space.pk}/cancel/")

    # then: the ticket is refunded through Stripe, the buyer emailed by ticketing, the holder told by us
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.REFUNDED
    assert Refund.objects.get(ticket=ticket).state == RefundState.SUCCEEDED
    assert [r["amount"] for r in stripe_standin.refunds()] == [800]
    assert kinds_of(holder) == [Kind.CANCELLED]
    assert "Paid tickets are refunded." in Notification.objects.get(user=holder).body
    assert sorted(m.to[0] for m in mail.outbox) == ["buyer@example.com", "holder@example.com"]


@pytest.mark.django_db(transaction=True)
def test_a_ticketed_space_that_never_starts_is_cancelled_and_refunded_by_due_work(stripe_standin):
    # given: a ticketed space with a paid ticket, whose host never shows up
    space = make_ticketed_space(stripe_standin, price_minor=1200)
    ticket = buy_and_pay(stripe_standin, UserFactory(), space)

    # when: due work runs after the grace period
    with time_machine.travel(space.scheduled_for + timedelta(hours=2, minutes=1), tick=True):
        result = due()

    # then: cancelled by the system, through the same path: the ticket is refunded through Stripe
    assert result["spaces_cancelled"] == 1
    assert Space.objects.get(pk=space.pk).state == SpaceState.CANCELLED
    assert Ticket.objects.get(pk=ticket.pk).state == TicketState.REFUNDED
    refund = Refund.objects.get(ticket=ticket)
    assert (refund.state, refund.reason, refund.requested_by) == (RefundState.SUCCEEDED, "space_cancelled", None)
    assert [r["amount"] for r in stripe_standin.refunds()] == [1200]
