"""The media worker follows each space's events in that space's room only, and each person by id."""

import asyncio

import pytest
from channels.db import database_sync_to_async as db
from channels.layers import get_channel_layer

from media.room import Room, Speaker
from media.worker import MediaWorker
from rooms import events, services
from rooms.models import Role
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat


class FakePeer:
    """A speaker's connection, as far as leaving a room needs it."""

    closed = False

    async def close(self) -> None:
        self.closed = True


def speaker_in(room: Room, key: str) -> FakePeer:
    peer = FakePeer()
    room.add_speaker(key, Speaker(user_id=7, username="sam", pc=peer, slots=[], muted=False))
    return peer


async def test_a_speaker_in_one_space_keeps_their_microphone_when_they_become_a_listener_in_another():
    # given: one worker serving spaces 1 and 2, the same person on stage in both
    worker = MediaWorker("events-test")
    worker.rooms[1] = Room(1, ssrc=1, emit=lambda event: None)
    worker.rooms[2] = Room(2, ssrc=2, emit=lambda event: None)
    in_one, in_two = speaker_in(worker.rooms[1], "one.sam"), speaker_in(worker.rooms[2], "two.sam")
    participant = {"user": {"username": "sam"}, "role": "listener", "muted": True}

    # when: space 1 says they are a listener there now
    moved = events.Event({"type": "participant.updated", "space_id": 1, "participant": participant}, about=7)
    await worker.handle(events.envelope(moved))

    # then: their microphone in space 1 is closed, the one in space 2 is untouched and unmuted
    assert in_one.closed and "one.sam" not in worker.rooms[1].speakers
    assert not in_two.closed and not worker.rooms[2].speakers["two.sam"].muted


@pytest.mark.django_db(transaction=True)
async def test_raising_a_hand_and_leaving_the_stage_in_one_space_leave_the_microphone_in_another_alone():
    # given: one worker serving spaces A and B through the channel layer; sam speaks in B and listens in A
    host_a, host_b = await db(make_host)(username="host_a"), await db(make_host)(username="host_b")
    space_a, space_b = await db(make_space)(host=host_a), await db(make_space)(host=host_b)
    sam = await db(UserFactory)(username="sam")
    await db(seat)(space_a, sam)
    await db(seat)(space_b, sam, Role.SPEAKER)
    layer = get_channel_layer()
    worker = MediaWorker(await layer.new_channel(), layer)
    for space in (space_a, space_b):
        worker.rooms[space.pk] = Room(space.pk, ssrc=space.pk, emit=lambda event: None)
        await layer.group_add(events.media_group(space.pk), worker.channel)
    peer = FakePeer()
    worker.rooms[space_b.pk].add_speaker(
        "b.sam", Speaker(user_id=sam.pk, username="sam", pc=peer, slots=[], muted=False)
    )

    # when: in A he raises a hand, is brought on stage, and sent back to the audience
    await db(services.hand_raise)(actor=sam, space_id=space_a.pk)
    await db(services.hand_approve)(actor=host_a, space_id=space_a.pk, target=sam)
    await db(services.speaker_move_to_audience)(actor=host_a, space_id=space_a.pk, target=sam)
    heard = []
    while True:
        try:
            message = await asyncio.wait_for(layer.receive(worker.channel), timeout=0.5)
        except TimeoutError:
            break
        heard.append((message["space_id"], message["kind"]))
        await worker.handle(message)

    # then: the worker heard A's stage changes (not the hand), and B's microphone is open and unmuted
    assert heard == [(space_a.pk, "participant.updated"), (space_a.pk, "participant.updated")]
    assert not peer.closed and not worker.rooms[space_b.pk].speakers["b.sam"].muted
