"""Going live tells the host's followers without holding up the request: the request records one
announcement; a task plans the deliveries in bulk batches and sends them in batches of ids."""

import re
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Block
from accounts.services import follow_create, user_ban, user_block
from rooms import services as rooms_services
from scheduling import services, tasks, ticker
from scheduling.models import Announcement, AnnouncementState, Delivery, Kind, Notification, Occasion
from tests.factories import UserFactory
from tests.rooms.scene import make_host
from tests.scheduling.scene import give_followers, make_scheduled_space

pytestmark = pytest.mark.django_db

FOLLOWERS = 2500


def inserts_into(queries: CaptureQueriesContext, table: str) -> int:
    """INSERT statements into `table` (SQLite spells an insert that ignores conflicts INSERT OR IGNORE)."""
    pattern = re.compile(rf'^INSERT (OR IGNORE )?INTO "{table}"')
    return sum(1 for q in queries.captured_queries if pattern.match(q["sql"]))


def test_going_live_writes_one_announcement_and_leaves_the_fan_out_to_a_task(django_capture_on_commit_callbacks):
    # given: a host with 2,500 followers, and one with none, each with a scheduled space
    host, lonely = make_host(), make_host()
    give_followers(host, FOLLOWERS)
    space, lonely_space = make_scheduled_space(host), make_scheduled_space(lonely)

    # when: each starts theirs (the after-commit work held back to look at it)
    with django_capture_on_commit_callbacks(execute=False), CaptureQueriesContext(connection) as baseline:
        rooms_services.space_start(actor=lonely, space_id=lonely_space.pk)
    with (
        django_capture_on_commit_callbacks(execute=False) as after_commit,
        CaptureQueriesContext(connection) as request_queries,
    ):
        rooms_services.space_start(actor=host, space_id=space.pk)

    # then: the request's own work is the same with 2,500 followers as with none: one announcement more
    announcement = Announcement.objects.get(space=space)
    assert (announcement.occasion, announcement.state) == (Occasion.LIVE, AnnouncementState.PENDING)
    assert not Delivery.objects.exists() and not Notification.objects.exists()
    assert len(request_queries) == len(baseline)
    assert inserts_into(request_queries, "scheduling_announcement") == 1
    assert inserts_into(request_queries, "scheduling_delivery") == 0

    # when: the transaction commits
    with mock.patch.object(tasks.announcement_plan_task, "delay") as plan_later:
        for callback in after_commit:
            callback()

    # then: a Celery task is asked to plan it; the request did no more
    plan_later.assert_called_once_with(announcement.pk)
    assert not Delivery.objects.exists()


def test_the_fan_out_to_2500_followers_inserts_in_bulk_and_sends_in_batches(settings):
    # given: 2,500 followers, a live announcement waiting, chunks of 1,000, batches of 500
    settings.SPACES_FANOUT_CHUNK = 1000
    settings.SPACES_DELIVERY_BATCH = 500
    host = make_host(display_name="Hana")
    followers = give_followers(host, FOLLOWERS)
    space = make_scheduled_space(host)
    rooms_services.space_start(actor=host, space_id=space.pk)
    announcement = Announcement.objects.get(space=space)

    # when: the plan task runs (its send tasks run in-process here)
    with (
        mock.patch.object(tasks.deliveries_send_task, "delay", wraps=tasks.deliveries_send_task.delay) as send,
        CaptureQueriesContext(connection) as queries,
    ):
        result = tasks.announcement_plan_task(announcement.pk)

    # then: every follower is told once, in the app ("someone you follow is live": email is opt-in)
    assert result == {"planned": True, "deliveries": FOLLOWERS, "queued": FOLLOWERS}
    assert Notification.objects.filter(kind=Kind.HOST_LIVE).count() == FOLLOWERS
    assert set(Notification.objects.values_list("user_id", flat=True)) == {f.pk for f in followers}
    assert Notification.objects.first().title == "Hana is live now"
    # in bulk: many rows per INSERT, not one INSERT per follower (PostgreSQL: 3 and 5; SQLite caps
    # parameters per statement, so more, smaller ones)
    delivery_inserts = inserts_into(queries, "scheduling_delivery")
    notification_inserts = inserts_into(queries, "scheduling_notification")
    assert FOLLOWERS / delivery_inserts >= 50 and FOLLOWERS / notification_inserts >= 50
    # sent by tasks of 500 ids each: 1,000 + 1,000 + 500 split at the batch size
    assert [len(call.args[0]) for call in send.call_args_list] == [500, 500, 500, 500, 500]
    # and the whole fan-out took a bounded number of queries, far fewer than followers
    assert len(queries) < 200
    assert Announcement.objects.get(pk=announcement.pk).state == AnnouncementState.PLANNED


def test_a_second_plan_of_the_same_announcement_does_nothing():
    host = make_host()
    give_followers(host, 30)
    space = make_scheduled_space(host)
    rooms_services.space_start(actor=host, space_id=space.pk)
    announcement = Announcement.objects.get(space=space)
    services.announcement_plan(announcement_id=announcement.pk)

    again = services.announcement_plan(announcement_id=announcement.pk)

    assert again == {"planned": False, "deliveries": 0}
    assert Notification.objects.count() == 30


def test_who_hears_of_a_go_live(django_capture_on_commit_callbacks):
    # given: a follower, a holder who also follows, a follower the host blocked (follow ended),
    # a banned follower, and a holder who turned "live" off in the app
    host = make_host()
    space = make_scheduled_space(host)
    follower, both, blocked, banned, quiet = (UserFactory() for _ in range(5))
    for person in (follower, both, blocked, banned):
        follow_create(follower=person, followee=host)
    for person in (both, quiet):
        services.reminder_set(user=person, space_id=space.pk)
    services.preferences_update(user=quiet, changes={"live": {"in_app": False}})
    user_block(blocker=host, blocked=blocked)
    user_ban(actor=UserFactory(is_staff=True), user=banned)

    # when: the host goes live
    with django_capture_on_commit_callbacks(execute=True):
        rooms_services.space_start(actor=host, space_id=space.pk)

    # then: each hears once, the right kind; the blocked, the banned and the host nothing
    heard = dict(Notification.objects.values_list("user_id", "kind"))
    assert heard == {follower.pk: Kind.HOST_LIVE, both.pk: Kind.LIVE}
    assert Block.objects.filter(blocker=host, blocked=blocked).exists()


def test_a_space_created_live_tells_the_followers_too(django_capture_on_commit_callbacks):
    host = make_host(display_name="Nora")
    (follower,) = give_followers(host, 1)

    with django_capture_on_commit_callbacks(execute=True):
        space = rooms_services.space_create(host=host, title="Straight to live")

    notification = Notification.objects.get(user=follower)
    assert (notification.kind, notification.title, notification.url) == (
        Kind.HOST_LIVE,
        "Nora is live now",
        f"/spaces/{space.pk}/",
    )


def test_with_the_in_process_ticker_running_the_request_wakes_it_instead_of_calling_celery(
    django_capture_on_commit_callbacks,
):
    host = make_host()
    space = make_scheduled_space(host)

    with (
        mock.patch.object(ticker, "wake", return_value=True) as wake,
        mock.patch.object(tasks.announcement_plan_task, "delay") as plan_later,
        django_capture_on_commit_callbacks(execute=True),
    ):
        rooms_services.space_start(actor=host, space_id=space.pk)

    wake.assert_called_once_with()
    plan_later.assert_not_called()
    assert Announcement.objects.get(space=space).state == AnnouncementState.PENDING
