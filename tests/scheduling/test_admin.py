"""Staff see scheduled spaces, reminders, announcements, deliveries with their state and
notifications in the admin; they can cancel a scheduled space and send failed deliveries again."""

from unittest import mock

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core import mail
from django.test import Client

from accounts.models import AuditEntry
from rooms.models import Space, SpaceState
from scheduling import services
from scheduling.models import Announcement, Delivery, DeliveryState, Kind, Notification, Occasion
from tests.factories import UserFactory
from tests.rooms.scene import make_space
from tests.scheduling.scene import give_reminders, make_scheduled_space

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_scheduled_spaces_are_listed_soonest_first_with_their_reminder_counts(staff):
    later = make_scheduled_space(minutes_ahead=300, title="Later talk")
    sooner = make_scheduled_space(minutes_ahead=60, title="Sooner talk")
    give_reminders(sooner, 3)
    make_space(title="Already live")

    page = staff.get("/admin/scheduling/scheduledspace/").content.decode()

    assert page.index("Sooner talk") < page.index("Later talk")
    assert "Already live" not in page
    assert '<td class="field-reminders_count">3</td>' in page
    assert staff.get(f"/admin/scheduling/scheduledspace/{later.pk}/change/").status_code == 200


def test_staff_cancel_a_scheduled_space_from_the_list(staff):
    space = make_scheduled_space(title="Staff call")

    staff.post("/admin/scheduling/scheduledspace/", {"action": "cancel", ACTION_CHECKBOX_NAME: [space.pk]}, follow=True)

    assert Space.objects.get(pk=space.pk).state == SpaceState.CANCELLED


def test_every_scheduling_list_and_record_opens(staff):
    space = make_scheduled_space()
    holder = UserFactory()
    services.reminder_set(user=holder, space_id=space.pk)
    announcement = Announcement.objects.create(space=space, occasion=Occasion.LEAD)
    delivery = Delivery.objects.create(
        announcement=announcement, user=holder, space=space, kind=Kind.REMINDER, channel="email"
    )
    Notification.objects.create(user=holder, kind=Kind.REMINDER, space=space, title="Hi")
    services.preferences_update(user=holder, changes={"live": {"email": False}})

    for model in ("reminder", "announcement", "delivery", "notification", "notificationpreference"):
        assert staff.get(f"/admin/scheduling/{model}/").status_code == 200, model
    assert staff.get("/admin/scheduling/delivery/?state__exact=pending").status_code == 200
    assert staff.get(f"/admin/scheduling/delivery/{delivery.pk}/change/").status_code == 200


def test_staff_send_failed_deliveries_again(staff, django_capture_on_commit_callbacks):
    space = make_scheduled_space()
    (holder,) = give_reminders(space, 1)
    announcement = Announcement.objects.create(space=space, occasion=Occasion.LEAD)
    failed = Delivery.objects.create(
        announcement=announcement,
        user=holder,
        space=space,
        kind=Kind.REMINDER,
        channel="email",
        state=DeliveryState.FAILED,
        attempts=5,
        error="SMTPServerDisconnected: gone",
    )
    sent = Delivery.objects.create(
        announcement=announcement, user=holder, space=space, kind=Kind.REMINDER, channel="in_app", state="skipped"
    )

    with django_capture_on_commit_callbacks(execute=True):
        page = staff.post(
            "/admin/scheduling/delivery/",
            {"action": "retry", ACTION_CHECKBOX_NAME: [failed.pk, sent.pk]},
            follow=True,
        ).content.decode()

    failed.refresh_from_db()
    assert (failed.state, failed.attempts) == (DeliveryState.SENT, 1)
    assert [m.to for m in mail.outbox] == [[holder.email]]
    assert Delivery.objects.get(pk=sent.pk).state == "skipped"
    assert "1 failed deliveries queued again." in page
    assert "1 selected deliveries had not failed; left alone." in page
    audit = AuditEntry.objects.get(action="scheduling.delivery.retried")
    assert audit.details == {"error": "SMTPServerDisconnected: gone"}


def test_with_the_in_process_ticker_a_delivery_sent_again_goes_from_its_pass_not_the_request(
    staff, django_capture_on_commit_callbacks
):
    # given: the one-command default, where a send task would run inside the admin's request
    space = make_scheduled_space()
    (holder,) = give_reminders(space, 1)
    announcement = Announcement.objects.create(space=space, occasion=Occasion.LEAD)
    failed = Delivery.objects.create(
        announcement=announcement,
        user=holder,
        space=space,
        kind=Kind.REMINDER,
        channel="email",
        state=DeliveryState.FAILED,
        attempts=5,
    )

    # when
    with (
        mock.patch("scheduling.ticker.wake", return_value=True) as wake,
        django_capture_on_commit_callbacks(execute=True),
    ):
        staff.post("/admin/scheduling/delivery/", {"action": "retry", ACTION_CHECKBOX_NAME: [failed.pk]})
    failed.refresh_from_db()
    after_request = (failed.state, failed.queued_at, list(mail.outbox))
    services.due_work()  # the pass the ticker was woken for

    # then
    wake.assert_called_once_with()
    assert after_request == (DeliveryState.PENDING, None, [])
    failed.refresh_from_db()
    assert failed.state == DeliveryState.SENT
    assert [m.to for m in mail.outbox].count([holder.email]) == 1  # the pass may remind the host too
