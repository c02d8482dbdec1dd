"""A block acts in the blocker's live spaces at once: the blocked person is removed as a moderator
would remove them (socket closed, microphone cut, seat freed, kept out), where the blocker hosts or
co-hosts and the permission table lets them remove that person."""

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEntry, Block
from rooms import events, services
from rooms.errors import StageFull
from rooms.models import Participant, Role, SpaceBlock
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat
from tests.rooms.ws import connect, events_for, next_event

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async
QUIET_S = 0.5


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def block(blocker, username: str):
    return as_user(blocker).post(f"/api/users/{username}/block/")


def command(user, space_id: int, message: dict):
    return as_user(user).post(f"/api/spaces/{space_id}/commands/", message, format="json")


def participant(space, user) -> Participant:
    return Participant.objects.get(space=space, user=user)


async def test_a_listener_blocked_by_the_host_is_closed_kept_out_and_can_no_longer_act():
    # given: leo hosts a live space; ivy listens in it over a socket
    leo = await db(make_host)(username="leo")
    space = await db(make_space)(host=leo)
    ivy = await db(UserFactory)(username="ivy")
    leo_socket, _ = await connect(space.pk, leo)
    ivy_socket, _ = await connect(space.pk, ivy)

    # when: leo blocks ivy through the API
    answer = await db(block)(leo, "ivy")

    # then: ivy is told she was removed, her socket closes, and she can't come back
    told = await next_event(ivy_socket, "error")
    closed = await ivy_socket.receive_output(timeout=5)
    seen = await next_event(leo_socket, "participant.removed")
    _, refusal = await connect(space.pk, ivy)
    assert answer.json() == {"blocking": True, "changed": True}
    assert (told["code"], closed) == ("removed", {"type": "websocket.close", "code": 4403})
    assert seen["user"]["username"] == "ivy"
    assert refusal["code"] == "removed"
    # and she is no longer a participant: no reaction, no request to speak, nothing to approve
    gone = await db(participant)(space, ivy)
    assert gone.left_at is not None
    assert await db(SpaceBlock.objects.filter(space=space, user=ivy, blocked_by=leo).exists)()
    reacted = await db(command)(ivy, space.pk, {"type": "react", "emoji": "🔥"})
    asked = await db(command)(ivy, space.pk, {"type": "request_speak"})
    approved = await db(command)(leo, space.pk, {"type": "approve", "user": "ivy"})
    assert (reacted.status_code, reacted.json()["code"]) == (403, "not_allowed")
    assert (asked.status_code, asked.json()["code"]) == (403, "not_allowed")
    assert (approved.status_code, approved.json()["code"]) == (404, "participant_not_found")
    # and the removal's audit row says it came from the block
    removal = await db(AuditEntry.objects.get)(action="rooms.participant.removed", subject_id=str(space.pk))
    assert (removal.actor_id, removal.details) == (leo.pk, {"user": "ivy", "reason": "blocked"})
    await leo_socket.disconnect()


async def test_a_speaker_blocked_by_the_host_loses_the_microphone_and_the_seat(settings):
    # given: a stage of two (leo hosting, ivy speaking) that is full, bob waiting with his hand up,
    # and the media worker of the space listening for what concerns microphones
    settings.SPACES_STAGE_MAX = 2
    leo = await db(make_host)(username="leo")
    space = await db(make_space)(host=leo)
    ivy, bob = await db(UserFactory)(username="ivy"), await db(UserFactory)(username="bob")
    await db(seat)(space, ivy, Role.SPEAKER, muted=False)
    await db(seat)(space, bob, hand_raised_at=timezone.now())
    ivy_socket, _ = await connect(space.pk, ivy)
    layer = get_channel_layer()
    media_worker = await layer.new_channel()
    await layer.group_add(events.media_group(space.pk), media_worker)
    with pytest.raises(StageFull):
        await db(services.hand_approve)(actor=leo, space_id=space.pk, target=bob)

    # when: leo blocks ivy
    await db(block)(leo, "ivy")

    # then: ivy's socket closes, the media worker is told to drop her microphone, her seat is free
    assert (await next_event(ivy_socket, "error"))["code"] == "removed"
    assert (await ivy_socket.receive_output(timeout=5))["code"] == 4403
    told = await layer.receive(media_worker)
    assert (told["kind"], told["user_id"]) == ("participant.removed", ivy.pk)
    removed = await db(participant)(space, ivy)
    assert (removed.role, removed.muted, removed.left_at is not None) == (Role.LISTENER, True, True)
    approved = await db(services.hand_approve)(actor=leo, space_id=space.pk, target=bob)
    assert approved.role == Role.SPEAKER


async def test_a_block_by_a_listener_of_the_space_removes_nobody():
    # given: ann and ivy both listen in leo's live space
    leo = await db(make_host)(username="leo")
    space = await db(make_space)(host=leo)
    ann, ivy = await db(UserFactory)(username="ann"), await db(UserFactory)(username="ivy")
    ivy_socket, _ = await connect(space.pk, ivy)
    ann_socket, _ = await connect(space.pk, ann)
    await events_for(ivy_socket, QUIET_S)  # ann's arrival

    # when: ann blocks ivy
    answer = await db(block)(ann, "ivy")

    # then: the block stands, but ivy stays in leo's space, unharmed
    assert answer.json() == {"blocking": True, "changed": True}
    received = await events_for(ivy_socket, QUIET_S)
    assert [e["type"] for e in received if e["type"] in ("error", "participant.removed", "websocket.close")] == []
    stays = await db(participant)(space, ivy)
    assert (stays.role, stays.left_at) == (Role.LISTENER, None)
    assert not await db(SpaceBlock.objects.filter(space=space).exists)()
    await ivy_socket.disconnect()
    await ann_socket.disconnect()


async def test_a_block_by_a_cohost_removes_the_blocked_person_from_the_space_they_cohost():
    # given: maya co-hosts leo's live space, where ivy listens
    leo = await db(make_host)(username="leo")
    space = await db(make_space)(host=leo)
    maya, ivy = await db(UserFactory)(username="maya"), await db(UserFactory)(username="ivy")
    await db(seat)(space, maya, Role.COHOST)
    ivy_socket, _ = await connect(space.pk, ivy)

    # when: maya blocks ivy
    await db(block)(maya, "ivy")

    # then: ivy is removed from the space maya co-hosts and kept out of it
    assert (await next_event(ivy_socket, "error"))["code"] == "removed"
    assert (await ivy_socket.receive_output(timeout=5))["code"] == 4403
    _, refusal = await connect(space.pk, ivy)
    assert refusal["code"] == "removed"
    assert await db(SpaceBlock.objects.filter(space=space, user=ivy, blocked_by=maya).exists)()


async def test_a_cohost_blocking_the_host_blocks_them_but_cannot_remove_them():
    # given: maya co-hosts leo's live space; leo is connected
    leo = await db(make_host)(username="leo")
    space = await db(make_space)(host=leo)
    maya = await db(UserFactory)(username="maya")
    await db(seat)(space, maya, Role.COHOST)
    leo_socket, _ = await connect(space.pk, leo)

    # when: maya blocks leo (the permission table lets no co-host remove the host)
    answer = await db(block)(maya, "leo")

    # then: the block is made and kept, and leo still hosts his space
    assert answer.json() == {"blocking": True, "changed": True}
    assert await db(Block.objects.filter(blocker=maya, blocked=leo).exists)()
    received = await events_for(leo_socket, QUIET_S)
    assert [e["type"] for e in received if e["type"] in ("error", "participant.removed", "websocket.close")] == []
    host = await db(participant)(space, leo)
    assert (host.role, host.left_at) == (Role.HOST, None)
    assert not await db(SpaceBlock.objects.filter(space=space).exists)()
    await leo_socket.disconnect()
