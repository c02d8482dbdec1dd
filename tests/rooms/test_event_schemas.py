"""Every space event, made by the code that really makes it, against its one schema (rooms.events.SCHEMAS)."""

import asyncio

import jsonschema
import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache

from media import signalling
from media.room import Speaker
from media.worker import MediaWorker
from rooms import events, services
from rooms.models import Role
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_event_type_is_made_somewhere_and_matches_its_schema(sent):
    # given: a live space with a co-host and two listeners
    host = make_host(username="host")
    space = make_space(host=host)
    cohost, ann, bob = (UserFactory(username=name) for name in ("cohost", "ann", "bob"))
    seat(space, cohost, Role.COHOST)
    seat(space, ann)
    seat(space, bob)

    # when: the rooms' own actions run ...
    services.space_edit(actor=host, space_id=space.pk, title="Renamed")
    services.hand_raise(actor=ann, space_id=space.pk)
    services.hand_approve(actor=cohost, space_id=space.pk, target=ann)
    services.speaker_mute(actor=host, space_id=space.pk, target=ann)
    services.react(actor=bob, space_id=space.pk, emoji="🎉")
    services.presence.send_listener_count(space.pk)
    services.participant_remove(actor=host, space_id=space.pk, target=bob)
    # ... and the media worker's (speaking, captions, the reset after a restart)
    async_to_sync(_worker_events)(space.pk, ann)
    services.space_end(actor=host, space_id=space.pk)

    # then: every type the events module knows was sent, each matching its schema and naming its space
    assert {m["kind"] for m in sent} == set(events.SCHEMAS)
    for message in sent:
        event = events.event_of(message)
        jsonschema.validate(event, events.SCHEMAS[message["kind"]])
        assert event["space_id"] == message["space_id"] == space.pk


def test_each_event_goes_to_its_audience_only(sent):
    # given: a live space with a listener
    host = make_host(username="host")
    space = make_space(host=host)
    ann = UserFactory(username="ann")
    seat(space, ann)

    # when: she raises a hand, is approved, and reacts
    services.hand_raise(actor=ann, space_id=space.pk)
    services.hand_approve(actor=host, space_id=space.pk, target=ann)
    services.react(actor=ann, space_id=space.pk, emoji="👏")

    # then: the hand goes to the moderators and to her; the approval to everyone and the media worker
    hand, approval, reaction = sent
    assert hand["groups"] == [events.moderators_group(space.pk), events.person_group(space.pk, ann.pk)]
    assert hand["user_id"] == ann.pk
    assert approval["groups"] == [events.space_group(space.pk), events.media_group(space.pk)]
    assert reaction["groups"] == [events.space_group(space.pk)]


async def _worker_events(space_id: int, speaker) -> None:
    worker = MediaWorker("schema-test", index=signalling.worker_index(space_id))
    room = await worker._room(space_id)
    room.captions_on = True
    room._speaking_event(Speaker(user_id=speaker.pk, username=speaker.username, pc=None, slots=[], muted=False), True)
    worker.caption_speakers[f"{space_id}:{speaker.pk}"] = {"username": speaker.username, "name": speaker.name}
    for final in (False, True):
        line = {"t": "line", "key": f"{space_id}:{speaker.pk}", "line": 1, "final": final, "text": "It was the best"}
        worker._on_caption_message({**line, "start_ms": 0, "end_ms": 900})
    worker._on_caption_message({"t": "status", "behind": True})
    # a previous life of this worker held the space's stage: the restarted worker tells it to offer again
    await cache.aset(signalling.origin_key(space_id), {"index": worker.index, "boot": "a-previous-life"})
    await worker._announce_reset()
    await asyncio.gather(*list(worker.background), return_exceptions=True)
    await worker.close()
