"""A co-host handed the host role carries the live space on whatever their followers, every way the
hand-over happens; it is audited with what the new host's own eligibility is; and it doesn't make
them eligible to start or schedule a space of their own (PRODUCT.md §1)."""

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from rooms import services
from rooms.models import Participant, Role, Space
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat
from tests.rooms.ws import connect, next_event

db = database_sync_to_async


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def a_live_space_with_a_newcomer_cohost():
    host = make_host()
    space = make_space(host=host)
    newcomer = UserFactory()  # no followers, no grant: not eligible to host
    seat(space, newcomer, Role.COHOST)
    return space, host, newcomer


def handed_over(space: Space, newcomer) -> AuditEntry:
    space.refresh_from_db()
    assert space.host == newcomer
    assert Participant.objects.get(space=space, user=newcomer).role == Role.HOST
    entry = AuditEntry.objects.filter(action="rooms.host.transferred", subject_id=str(space.pk)).get()
    assert entry.details["to"] == newcomer.username
    assert (entry.details["to_eligible"], entry.details["to_followers_counted"]) == (False, 0)
    return entry


@pytest.mark.django_db
def test_over_rest_the_host_hands_over_to_a_newcomer_who_then_runs_the_space():
    space, host, newcomer = a_live_space_with_a_newcomer_cohost()

    answer = as_user(host).post(
        f"/api/spaces/{space.pk}/commands/", {"type": "transfer_host", "user": newcomer.username}, format="json"
    )

    assert answer.status_code == 200, answer.content
    entry = handed_over(space, newcomer)
    assert (entry.actor, entry.details["automatic"], entry.details["from_host"]) == (host, False, host.username)
    # the new host carries the space on: edits it, and ends it
    assert (
        as_user(newcomer).patch(f"/api/spaces/{space.pk}/", {"title": "Still going"}, format="json").status_code == 200
    )
    assert as_user(newcomer).post(f"/api/spaces/{space.pk}/end/").status_code == 200


@pytest.mark.django_db
def test_a_handed_over_host_may_not_start_or_schedule_a_space_of_their_own():
    space, host, newcomer = a_live_space_with_a_newcomer_cohost()
    services.host_transfer(actor=host, space_id=space.pk, target=newcomer)
    services.space_end(actor=newcomer, space_id=space.pk)
    soon = (timezone.now() + timedelta(days=1)).isoformat()

    started = as_user(newcomer).post("/api/spaces/", {"title": "My own"}, format="json")
    scheduled = as_user(newcomer).post("/api/spaces/", {"title": "Later", "scheduled_for": soon}, format="json")
    page = as_user(newcomer).get("/api/me/hosting-eligibility/")

    for answer in (started, scheduled):
        assert answer.status_code == 403
        detail = answer.json()["detail"]
        assert "600 followers" in detail and "you have 0 followers" in detail
        assert "handed to you" in detail  # the rule says the hand-over doesn't count
    assert page.json()["eligible"] is False


@pytest.mark.django_db
def test_the_new_space_form_refuses_a_handed_over_host_with_the_rule(client):
    space, host, newcomer = a_live_space_with_a_newcomer_cohost()
    services.host_transfer(actor=host, space_id=space.pk, target=newcomer)
    client.force_login(newcomer)

    response = client.post("/spaces/new/", {"title": "My own"})

    assert response.status_code == 403
    assert b"handed to you" in response.content
    assert Space.objects.filter(host=newcomer).count() == 1  # only the one handed over


@pytest.mark.django_db(transaction=True)
async def test_over_the_websocket_the_host_hands_over_and_everyone_sees_it():
    space, host, newcomer = await db(a_live_space_with_a_newcomer_cohost)()
    host_socket, _ = await connect(space.pk, host)
    newcomer_socket, _ = await connect(space.pk, newcomer)

    await host_socket.send_json_to({"type": "transfer_host", "user": newcomer.username, "ref": 1})

    assert (await next_event(host_socket, "ok"))["ref"] == 1
    assert (await next_event(newcomer_socket, "space.updated"))["space"]["host"]["username"] == newcomer.username
    await db(handed_over)(space, newcomer)
    await host_socket.disconnect()
    await newcomer_socket.disconnect()


@pytest.mark.django_db
def test_the_host_leaving_the_stage_hands_over_to_the_newcomer_cohost():
    space, host, newcomer = a_live_space_with_a_newcomer_cohost()

    services.stage_leave(actor=host, space_id=space.pk)

    entry = handed_over(space, newcomer)
    assert entry.actor == host


@pytest.mark.django_db
def test_the_absent_host_sweep_hands_over_to_the_newcomer_cohost(settings):
    space, host, newcomer = a_live_space_with_a_newcomer_cohost()
    Participant.objects.filter(space=space, user=host).update(absent_since=timezone.now())

    later = timezone.now() + timedelta(seconds=settings.SPACES_HOST_ABSENCE_END_S + 1)
    report = services.presence_sweep(now=later)

    assert report["hosts_replaced"] == 1
    entry = handed_over(space, newcomer)
    assert (entry.actor, entry.details["automatic"]) == (None, True)


@pytest.mark.django_db
def test_staff_cannot_hand_a_space_over_in_the_admin(client):
    space, host, newcomer = a_live_space_with_a_newcomer_cohost()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    client.post(f"/admin/rooms/space/{space.pk}/change/", {"host": newcomer.pk, "title": space.title})

    space.refresh_from_db()
    assert space.host == host
    assert not AuditEntry.objects.filter(action="rooms.host.transferred").exists()
