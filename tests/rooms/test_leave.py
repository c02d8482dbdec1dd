"""Pressing Leave: out of the space at once, every page told; a lost socket waits for the sweep."""

import pytest

from accounts.models import AuditEntry
from rooms import events
from rooms.models import Connection, Participant, Role
from rooms.services import presence
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat

pytestmark = pytest.mark.django_db


def connect(space, user, channel: str) -> None:
    participant = Participant.objects.get(space=space, user=user)
    presence.connection_open(space=space, participant=participant, channel_name=channel)


def removals(sent) -> list[tuple[str, str]]:
    return [
        (event["user"]["username"], event["reason"])
        for event in map(events.event_of, sent)
        if event["type"] == "participant.removed"
    ]


def test_a_speaker_who_leaves_is_out_at_once_and_every_page_is_told(sent, django_capture_on_commit_callbacks):
    # given: a live space with a speaker on its page
    space = make_space(make_host(username="hana"))
    lee = UserFactory(username="lee")
    seat(space, lee, Role.SPEAKER, muted=False)
    connect(space, lee, "ws.lee")

    # when: they press Leave
    with django_capture_on_commit_callbacks(execute=True):
        presence.space_leave(user=lee, space_id=space.pk, channel_name="ws.lee")

    # then: off the stage and out of the space, the socket's row gone, and every page told why
    participant = Participant.objects.get(space=space, user=lee)
    assert (participant.role, participant.muted, participant.left_at is not None) == (Role.LISTENER, True, True)
    assert not Connection.objects.filter(channel_name="ws.lee").exists()
    assert removals(sent) == [("lee", "left")]
    assert AuditEntry.objects.filter(action="rooms.stage.left", details__user="lee").count() == 1


def test_a_host_who_leaves_hands_hosting_to_a_co_host_who_is_there():
    host = make_host(username="hana")
    space = make_space(host)
    cole = UserFactory(username="cole")
    seat(space, cole, Role.COHOST)
    connect(space, host, "ws.hana")
    connect(space, cole, "ws.cole")

    presence.space_leave(user=host, space_id=space.pk, channel_name="ws.hana")

    assert Participant.objects.get(space=space, user=cole).role == Role.HOST
    assert Participant.objects.get(space=space, user=host).left_at is not None


def test_a_host_alone_stays_host_absent_so_the_space_is_not_ended_by_a_leave(sent, django_capture_on_commit_callbacks):
    host = make_host(username="hana")
    space = make_space(host)
    connect(space, host, "ws.hana")

    with django_capture_on_commit_callbacks(execute=True):
        presence.space_leave(user=host, space_id=space.pk, channel_name="ws.hana")

    participant = Participant.objects.get(space=space, user=host)
    assert (participant.role, participant.left_at, participant.absent_since is not None) == (Role.HOST, None, True)
    space.refresh_from_db()
    assert space.state == "live"
    assert removals(sent) == []


def test_leaving_from_one_tab_keeps_someone_whose_other_tab_is_still_open(sent, django_capture_on_commit_callbacks):
    space = make_space(make_host())
    lee = UserFactory(username="lee")
    seat(space, lee, Role.SPEAKER)
    connect(space, lee, "ws.lee.1")
    connect(space, lee, "ws.lee.2")

    with django_capture_on_commit_callbacks(execute=True):
        presence.space_leave(user=lee, space_id=space.pk, channel_name="ws.lee.1")

    participant = Participant.objects.get(space=space, user=lee)
    assert (participant.role, participant.left_at) == (Role.SPEAKER, None)
    assert removals(sent) == []
