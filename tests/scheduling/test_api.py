"""The REST API: reminders, notifications and marking them read, notification settings; bad input
gets a {"code", "detail"} answer and changes nothing."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import user_block
from rooms import services as rooms_services
from scheduling import services
from scheduling.models import (
    Announcement,
    Delivery,
    DeliveryState,
    Kind,
    Notification,
    NotificationPreference,
    Occasion,
    Reminder,
)
from tests.factories import UserFactory
from tests.rooms.scene import make_space
from tests.scheduling.scene import make_scheduled_space

pytestmark = pytest.mark.django_db


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def notify(user, count: int, **fields) -> list[Notification]:
    return Notification.objects.bulk_create(
        Notification(user=user, kind=Kind.HOST_LIVE, title=f"Note {n}", url="/", created_at=timezone.now(), **fields)
        for n in range(count)
    )


def test_set_and_unset_a_reminder_idempotently():
    space = make_scheduled_space()
    ada = UserFactory()
    client = as_user(ada)
    url = f"/api/spaces/{space.pk}/reminder/"

    first, again = client.post(url), client.post(url)
    state = client.get(url)
    removed, removed_again = client.delete(url), client.delete(url)

    assert (first.status_code, first.json()) == (201, {"space": space.pk, "reminded": True, "reminders_count": 1})
    assert (again.status_code, again.json()["reminded"]) == (200, True)
    assert state.json() == {"space": space.pk, "reminded": True, "reminders_count": 1}
    assert (removed.status_code, removed.json()) == (200, {"space": space.pk, "reminded": False, "reminders_count": 0})
    assert removed_again.status_code == 200
    assert not Reminder.objects.exists()


def test_reminders_are_refused_with_a_reason_and_change_nothing():
    host_space = make_scheduled_space()
    live = make_space()
    cancelled = make_scheduled_space()
    rooms_services.space_cancel(actor=cancelled.host, space_id=cancelled.pk)
    blocked = UserFactory()
    user_block(blocker=host_space.host, blocked=blocked)
    ada = as_user(UserFactory())

    own = as_user(host_space.host).post(f"/api/spaces/{host_space.pk}/reminder/")
    on_live = ada.post(f"/api/spaces/{live.pk}/reminder/")
    on_cancelled = ada.post(f"/api/spaces/{cancelled.pk}/reminder/")
    by_blocked = as_user(blocked).post(f"/api/spaces/{host_space.pk}/reminder/")
    unknown = ada.post("/api/spaces/999999/reminder/")
    anonymous = APIClient().post(f"/api/spaces/{host_space.pk}/reminder/")

    assert (own.status_code, own.json()) == (
        400,
        {"code": "own_space", "detail": "You host this space: you'll be reminded before it starts anyway."},
    )
    assert (on_live.status_code, on_live.json()) == (
        409,
        {"code": "wrong_state", "detail": "This space is live now: join it instead."},
    )
    assert on_cancelled.json() == {
        "code": "wrong_state",
        "detail": "This space has cancelled; reminders are for spaces that haven't started.",
    }
    assert (by_blocked.status_code, by_blocked.json()) == (
        403,
        {"code": "reminder_not_allowed", "detail": "You can't set a reminder for this space."},
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "space_not_found")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "not_authenticated")
    assert not Reminder.objects.exists()


def test_unsetting_a_reminder_drops_what_was_planned_for_it_and_not_sent():
    space = make_scheduled_space()
    ada = UserFactory()
    services.reminder_set(user=ada, space_id=space.pk)
    announcement = Announcement.objects.create(space=space, occasion=Occasion.LEAD)
    pending = Delivery.objects.create(
        announcement=announcement, user=ada, space=space, kind=Kind.REMINDER, channel="email"
    )

    as_user(ada).delete(f"/api/spaces/{space.pk}/reminder/")

    pending.refresh_from_db()
    assert (pending.state, pending.error) == (DeliveryState.SKIPPED, "The reminder was removed.")


def test_notifications_are_listed_newest_first_and_only_ones_own():
    ada, bo = UserFactory(), UserFactory()
    notify(ada, 3)
    notify(bo, 2)

    page = as_user(ada).get("/api/notifications/").json()
    unread = as_user(ada).get("/api/notifications/?unread=true").json()
    count = as_user(ada).get("/api/notifications/unread-count/").json()

    assert page["next"] is None  # all on one page; no count of them all (the bell's is unread-count/)
    assert [n["title"] for n in page["results"]] == ["Note 2", "Note 1", "Note 0"]
    assert set(page["results"][0]) == {"id", "kind", "title", "body", "url", "space", "created_at", "read"}
    assert len(unread["results"]) == 3 and count == {"unread": 3}
    assert APIClient().get("/api/notifications/").status_code == 401


def test_mark_some_or_all_read():
    ada = UserFactory()
    first, second, _third = notify(ada, 3)
    client = as_user(ada)

    some = client.post("/api/notifications/read/", {"ids": [first.pk, second.pk]}, format="json")
    same_again = client.post("/api/notifications/read/", {"ids": [first.pk]}, format="json")
    everything = client.post("/api/notifications/read/", {"all": True}, format="json")

    assert some.json() == {"marked": 2, "unread": 1}
    assert same_again.json() == {"marked": 0, "unread": 1}
    assert everything.json() == {"marked": 1, "unread": 0}
    assert not Notification.objects.filter(read_at__isnull=True).exists()


def test_marking_read_refuses_bad_input_and_changes_nothing():
    ada, bo = UserFactory(), UserFactory()
    (mine,) = notify(ada, 1)
    (theirs,) = notify(bo, 1)
    client = as_user(ada)

    someone_elses = client.post("/api/notifications/read/", {"ids": [mine.pk, theirs.pk]}, format="json")
    nothing = client.post("/api/notifications/read/", {}, format="json")
    both = client.post("/api/notifications/read/", {"ids": [mine.pk], "all": True}, format="json")
    not_ids = client.post("/api/notifications/read/", {"ids": ["x"]}, format="json")

    assert (someone_elses.status_code, someone_elses.json()) == (
        404,
        {
            "code": "notification_not_found",
            "detail": f"You have no notification with id {theirs.pk}.",
            "ids": [theirs.pk],
        },
    )
    assert nothing.json() == {
        "code": "invalid",
        "detail": 'Send the ids to mark read, or {"all": true}.',
        "errors": {"non_field_errors": ['Send the ids to mark read, or {"all": true}.']},
    }
    assert both.status_code == 400 and both.json()["detail"] == "Send either ids or all, not both."
    assert not_ids.status_code == 400 and not_ids.json()["code"] == "invalid"
    assert Notification.objects.filter(read_at__isnull=True).count() == 2


def test_preferences_start_with_the_defaults_and_patch_changes_only_what_is_sent():
    ada = UserFactory()
    client = as_user(ada)

    defaults = client.get("/api/me/notification-preferences/").json()
    patched = client.patch(
        "/api/me/notification-preferences/", {"live": {"email": False}, "host_live": {"email": True}}, format="json"
    )

    assert defaults == {
        "reminder": {"in_app": True, "email": True},
        "live": {"in_app": True, "email": True},
        "cancelled": {"in_app": True, "email": True},
        "rescheduled": {"in_app": True, "email": True},
        "host_live": {"in_app": True, "email": False},
        "host_reminder": {"in_app": True, "email": True},
    }
    assert patched.status_code == 200
    assert patched.json() == {
        **defaults,
        "live": {"in_app": True, "email": False},
        "host_live": {"in_app": True, "email": True},
    }
    row = NotificationPreference.objects.get(user=ada)
    assert (row.email_live, row.email_host_live, row.in_app_live) == (False, True, True)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, 'Send at least one kind with the channels to change, e.g. {"live": {"email": false}}.'),
        ({"birthday": {"email": False}}, "Unknown kind 'birthday'; kinds are: reminder, live, cancelled, "
         "rescheduled, host_live, host_reminder."),
        ({"live": {"pigeon": False}}, "Unknown channel 'pigeon' for live; channels are: in_app, email."),
        ({"live": {"email": "maybe"}}, "live: email: Must be a valid boolean."),
        ({"live": "off"}, "live: Invalid data. Expected a dictionary, but got str."),
    ],
)  # fmt: skip
def test_bad_preferences_are_refused_with_a_reason(body, detail):
    ada = UserFactory()

    answer = as_user(ada).patch("/api/me/notification-preferences/", body, format="json")

    assert answer.status_code == 400
    assert answer.json()["detail"] == detail
    assert not NotificationPreference.objects.exists()


def test_marking_read_an_id_beyond_any_id_is_a_clear_400(signed_in):
    # schemathesis found it: SQLite raised OverflowError on a 2**64 id, a 500
    answer = signed_in.post("/api/notifications/read/", {"ids": [2**64]}, format="json")
    assert answer.status_code == 400
    assert "ids" in str(answer.json())
