"""Presence: dead sockets, the reconnect grace, and a host who does not come back."""

import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from rooms import presence_loop, services
from rooms.models import Connection, Participant, Role, Space
from rooms.presence_loop import PresenceLoop
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat

pytestmark = pytest.mark.django_db


def open_socket(space, user, name):
    participant = services.space_join(user=user, space=space)
    return services.connection_open(space=space, participant=participant, channel_name=name)


def test_a_socket_that_stops_beating_is_dropped_and_its_owner_marked_absent(settings):
    space = make_space()
    user = UserFactory()
    open_socket(space, user, "sock-1")
    later = timezone.now() + timedelta(seconds=settings.SPACES_PRESENCE_TIMEOUT_S + 1)

    report = services.presence_sweep(now=later)

    assert report["stale_connections"] == 1
    assert not Connection.objects.exists()
    assert Participant.objects.get(space=space, user=user).absent_since is not None


def test_a_socket_its_process_vouches_for_is_kept(settings):
    space = make_space()
    open_socket(space, UserFactory(), "sock-1")
    open_socket(space, UserFactory(), "sock-2")
    Connection.objects.update(last_seen_at=timezone.now() - timedelta(seconds=settings.SPACES_PRESENCE_TIMEOUT_S))

    missing = services.connections_seen(channel_names=["sock-1"])
    report = services.presence_sweep()

    assert (missing, report["stale_connections"]) == ([], 1)
    assert list(Connection.objects.values_list("channel_name", flat=True)) == ["sock-1"]


def test_a_dead_socket_is_absent_since_its_last_word_so_the_grace_counts_from_then(settings):
    # given: a speaker whose web process last vouched for their socket 20 s ago, then died
    space = make_space()
    speaker = UserFactory()
    seat(space, speaker, Role.SPEAKER)
    open_socket(space, speaker, "sock-1")
    last_word = timezone.now() - timedelta(seconds=20)
    Connection.objects.update(last_seen_at=last_word)

    # when: a sweep finds the socket dead
    report = services.presence_sweep()

    # then: absent since the last word, still on stage until the grace runs out from then
    participant = Participant.objects.get(space=space, user=speaker)
    assert report["stale_connections"] == 1
    assert participant.absent_since == last_word
    assert participant.role == Role.SPEAKER
    early = services.presence_sweep(now=last_word + timedelta(seconds=settings.SPACES_RECONNECT_GRACE_S - 1))
    late = services.presence_sweep(now=last_word + timedelta(seconds=settings.SPACES_RECONNECT_GRACE_S + 1))
    assert (early["moved_to_audience"], late["moved_to_audience"]) == (0, 1)


def test_a_sweeper_that_was_cut_off_does_not_judge_others_sockets(settings):
    # given: every socket looks old, as after a database outage
    space = make_space()
    open_socket(space, UserFactory(), "sock-1")
    Connection.objects.update(last_seen_at=timezone.now() - timedelta(seconds=settings.SPACES_PRESENCE_TIMEOUT_S + 5))
    loop = PresenceLoop()

    # when: a process that has just reached the database again sweeps
    report = loop.pass_once()

    # then: it drops nothing yet; once it has been connected for a whole timeout, it does
    assert report["stale_connections"] == 0 and Connection.objects.count() == 1
    loop.healthy_since -= settings.SPACES_PRESENCE_TIMEOUT_S
    assert loop.pass_once()["stale_connections"] == 1


def test_a_restarted_process_drops_at_once_what_its_previous_life_left_under_its_name():
    # given: web-1 held a speaker's socket and a visitor's, then died and started again; web-2 holds one
    space = make_space()
    speaker, fan = UserFactory(), UserFactory()
    seat(space, speaker, Role.SPEAKER)
    open_socket(space, speaker, "web-1-a")
    open_socket(space, AnonymousUser(), "web-1-b")
    open_socket(space, fan, "web-2-a")
    Connection.objects.filter(channel_name__startswith="web-1").update(process="web-1")
    Connection.objects.filter(channel_name__startswith="web-2").update(process="web-2")
    last_word = timezone.now()
    Connection.objects.update(last_seen_at=last_word)
    booted_at = timezone.now()
    open_socket(space, UserFactory(), "web-1-c")  # opened by the new life
    Connection.objects.filter(channel_name="web-1-c").update(process="web-1")

    # when
    dropped = services.presence_restart_sweep(booted_at=booted_at, process="web-1")

    # then: only the old life's sockets go, at once, and the speaker is absent since their last word
    assert dropped == 2
    assert sorted(Connection.objects.values_list("channel_name", flat=True)) == ["web-1-c", "web-2-a"]
    assert Participant.objects.get(space=space, user=speaker).absent_since == last_word


def sockets_left_by_a_killed_server() -> None:
    """Sockets opened before this process started (one by web-1, one by web-2), and one opened since."""
    space = make_space()
    open_socket(space, UserFactory(), "old-1")
    open_socket(space, AnonymousUser(), "old-2")
    Connection.objects.filter(channel_name="old-1").update(process="web-1")
    Connection.objects.filter(channel_name="old-2").update(process="web-2")
    Connection.objects.update(opened_at=presence_loop.STARTED_AT - timedelta(seconds=1))
    open_socket(space, UserFactory(), "new-1")


def first_and_second_pass() -> tuple[list[str], list[str]]:
    loop, left = PresenceLoop(), []
    for _ in range(2):
        loop.pass_once()
        left.append(sorted(Connection.objects.values_list("channel_name", flat=True)))
    return left[0], left[1]


def test_the_only_process_drops_every_socket_opened_before_it_started_on_its_first_pass(settings):
    # given: the in-process channel layer (`make run`'s), and sockets a killed server left
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "spaces_site.channel_layer.LocalChannelLayer"}}
    sockets_left_by_a_killed_server()

    # when / then: the old ones go at the first pass, though no timeout passed; the new one stays
    assert first_and_second_pass() == (["new-1"], ["new-1"])


@pytest.mark.parametrize(("name", "left"), [("web-1", ["new-1", "old-2"]), ("", ["new-1", "old-1", "old-2"])])
def test_with_a_shared_channel_layer_a_process_drops_at_once_only_what_it_left_under_its_name(
    settings, monkeypatch, name, left
):
    # given: a channel layer other processes share, and sockets left before this process started
    monkeypatch.setattr(presence_loop, "only_process", lambda: False)
    settings.SPACES_PROCESS_NAME = name
    sockets_left_by_a_killed_server()

    # when / then: its own (by name) go at the first pass; an unnamed process leaves them to the timeout
    assert first_and_second_pass() == (left, left)


def test_speaker_gone_past_the_grace_goes_back_to_the_audience(settings):
    space = make_space()
    speaker = UserFactory()
    seat(space, speaker, Role.SPEAKER, absent_since=timezone.now())
    within = timezone.now() + timedelta(seconds=settings.SPACES_RECONNECT_GRACE_S - 5)
    after = timezone.now() + timedelta(seconds=settings.SPACES_RECONNECT_GRACE_S + 1)

    kept = services.presence_sweep(now=within)
    moved = services.presence_sweep(now=after)

    assert (kept["moved_to_audience"], moved["moved_to_audience"]) == (0, 1)
    participant = Participant.objects.get(space=space, user=speaker)
    assert (participant.role, participant.muted) == (Role.LISTENER, True)


def test_absent_host_with_a_cohost_there_hands_over(settings):
    host = make_host()
    space = make_space(host=host)
    cohost = UserFactory()
    seat(space, cohost, Role.COHOST)
    Participant.objects.filter(space=space, user=host).update(absent_since=timezone.now())

    early = services.presence_sweep(now=timezone.now() + timedelta(seconds=settings.SPACES_HOST_ABSENCE_END_S - 10))
    late = services.presence_sweep(now=timezone.now() + timedelta(seconds=settings.SPACES_HOST_ABSENCE_END_S + 1))

    assert (early["hosts_replaced"], late["hosts_replaced"]) == (0, 1)
    space.refresh_from_db()
    assert (space.state, space.host) == ("live", cohost)


def test_absent_host_with_no_cohost_ends_the_space(settings):
    host = make_host()
    space = make_space(host=host)
    Participant.objects.filter(space=space, user=host).update(absent_since=timezone.now())

    report = services.presence_sweep(now=timezone.now() + timedelta(seconds=settings.SPACES_HOST_ABSENCE_END_S + 1))

    assert report["spaces_ended"] == 1
    space.refresh_from_db()
    assert (space.state, space.end_reason) == ("ended", "host_absent")


def test_host_who_comes_back_in_time_keeps_the_space(settings):
    host = make_host()
    space = make_space(host=host)
    Participant.objects.filter(space=space, user=host).update(absent_since=timezone.now())
    open_socket(space, host, "host-sock")
    later = timezone.now() + timedelta(seconds=settings.SPACES_HOST_ABSENCE_END_S + 1)
    services.connections_seen(channel_names=["host-sock"], now=later)  # their web process keeps vouching

    report = services.presence_sweep(now=later)

    assert report["spaces_ended"] == 0
    assert Space.objects.get(pk=space.pk).state == "live"


def test_several_tabs_count_once_and_leave_only_with_the_last():
    space = make_space()
    user = UserFactory()
    open_socket(space, user, "tab-1")
    open_socket(space, user, "tab-2")

    services.connection_close(channel_name="tab-1")
    still_here = Participant.objects.get(space=space, user=user).absent_since
    services.connection_close(channel_name="tab-2")

    assert still_here is None
    assert Participant.objects.get(space=space, user=user).absent_since is not None


def test_listener_count_counts_people_once_and_each_visitor(django_assert_num_queries):
    from rooms.selectors import listener_count

    space = make_space()
    user = UserFactory()
    open_socket(space, user, "a")
    open_socket(space, user, "b")
    services.connection_open(space=space, participant=None, channel_name="visitor-1")
    services.connection_open(space=space, participant=None, channel_name="visitor-2")

    with django_assert_num_queries(1):
        assert listener_count(space_id=space.pk) == 3


def test_presence_sweep_task_runs_the_sweep(settings):
    from rooms import tasks

    tasks._loop.healthy_since = time.monotonic() - settings.SPACES_PRESENCE_TIMEOUT_S
    space = make_space()
    open_socket(space, UserFactory(), "sock-1")
    Connection.objects.update(last_seen_at=timezone.now() - timedelta(seconds=settings.SPACES_PRESENCE_TIMEOUT_S + 5))

    report = tasks.presence_sweep_task.delay().get()

    assert report["stale_connections"] == 1
