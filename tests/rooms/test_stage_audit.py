"""Every change a moderator (or the presence sweep) makes to someone's place on stage leaves an audit row."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from rooms import services
from rooms.models import Role
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat

pytestmark = pytest.mark.django_db


def trail(space) -> list[tuple]:
    return [
        (entry.actor.username if entry.actor else None, entry.action, entry.details.get("user"))
        for entry in AuditEntry.objects.filter(subject_id=str(space.pk), action__startswith="rooms.").order_by("pk")
        if entry.action not in ("rooms.space.started",)
    ]


def test_approve_deny_mute_and_move_to_audience_are_audited_with_who_did_them():
    # given: a host, two listeners with hands up
    host = make_host(username="host")
    space = make_space(host=host)
    ann, bob = UserFactory(username="ann"), UserFactory(username="bob")
    seat(space, ann, hand_raised_at=timezone.now())
    seat(space, bob, hand_raised_at=timezone.now())

    # when: the host approves ann, denies bob, then ann unmutes, is muted and sent back to the audience
    services.hand_approve(actor=host, space_id=space.pk, target=ann)
    services.hand_deny(actor=host, space_id=space.pk, target=bob)
    services.self_unmute(actor=ann, space_id=space.pk)
    services.speaker_mute(actor=host, space_id=space.pk, target=ann)
    services.speaker_move_to_audience(actor=host, space_id=space.pk, target=ann)

    # then: one row each, in order, naming the moderator and the person
    assert trail(space) == [
        ("host", "rooms.hand.approved", "ann"),
        ("host", "rooms.hand.denied", "bob"),
        ("host", "rooms.speaker.muted", "ann"),
        ("host", "rooms.speaker.moved_to_audience", "ann"),
    ]


def test_the_sweep_moving_an_absent_speaker_to_the_audience_is_audited(settings):
    # given: a speaker gone for longer than the reconnect grace
    space = make_space(host=make_host(username="host"))
    gone = UserFactory(username="gone")
    seat(space, gone, Role.SPEAKER, absent_since=timezone.now())
    after = timezone.now() + timedelta(seconds=settings.SPACES_RECONNECT_GRACE_S + 1)

    # when: the presence sweep runs
    services.presence_sweep(now=after)

    # then: the system (no actor) moved them, and said from which role
    assert trail(space) == [(None, "rooms.stage.absent_moved", "gone")]
    assert AuditEntry.objects.get(action="rooms.stage.absent_moved").details["role"] == "speaker"
