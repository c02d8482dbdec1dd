"""Stage limits under real concurrency, on PostgreSQL."""

import pytest
from django.utils import timezone

from rooms import services
from rooms.errors import CohostsFull, StageFull
from rooms.models import Participant, Role
from tests.concurrency import run_together
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_20_simultaneous_approvals_into_3_free_seats_leave_exactly_13_on_stage():
    # given: the host, a co-host and 8 speakers: 10 of 13 seats taken
    host = make_host()
    space = make_space(host=host)
    cohost = UserFactory()
    seat(space, cohost, Role.COHOST)
    for _ in range(8):
        seat(space, UserFactory(), Role.SPEAKER)
    askers = [UserFactory() for _ in range(20)]
    for asker in askers:
        seat(space, asker, hand_raised_at=timezone.now())
    assert Participant.objects.filter(space=space, role__in=["host", "cohost", "speaker"]).count() == 10

    # when: host and co-host approve all twenty at once
    moderators = [host, cohost]
    results = run_together(
        [
            lambda asker=asker, n=n: services.hand_approve(actor=moderators[n % 2], space_id=space.pk, target=asker)
            for n, asker in enumerate(askers)
        ]
    )

    # then
    approved = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(approved) == 3
    assert len(refused) == 17 and all(isinstance(r, StageFull) for r in refused)
    assert Participant.objects.filter(space=space, role__in=["host", "cohost", "speaker"]).count() == 13


def test_5_simultaneous_cohost_grants_leave_2():
    host = make_host()
    space = make_space(host=host)
    candidates = [UserFactory() for _ in range(5)]
    for candidate in candidates:
        seat(space, candidate, Role.SPEAKER)

    results = run_together(
        [lambda c=c: services.cohost_add(actor=host, space_id=space.pk, target=c) for c in candidates]
    )

    assert sum(not isinstance(r, Exception) for r in results) == 2
    assert all(isinstance(r, CohostsFull) for r in results if isinstance(r, Exception))
    assert Participant.objects.filter(space=space, role=Role.COHOST).count() == 2


def test_two_spaces_started_at_once_by_one_host_leave_one_live():
    host = make_host()

    results = run_together([lambda n=n: make_space(host=host, title=f"Space {n}") for n in range(5)])

    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert host.hosted_spaces.filter(state="live").count() == 1
