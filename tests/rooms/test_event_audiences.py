"""Who receives a space event is decided where it is made: counted at the sockets themselves."""

import asyncio
from collections import Counter

import pytest
from channels.db import database_sync_to_async

from rooms.consumers import SpaceConsumer
from rooms.models import Role
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat
from tests.rooms.ws import connect, events_for, next_event

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async

LISTENERS = 50
QUIET_S = 1.0


def _listeners_and_cohost(space, count: int):
    cohost = UserFactory(username="cohost")
    seat(space, cohost, Role.COHOST)
    return cohost, [UserFactory(username=f"listener{n}") for n in range(count)]


async def _open(space_id: int, users) -> dict:
    sockets = {}
    for user in users:
        sockets[user.username], _ = await connect(space_id, user)
    await asyncio.gather(*(events_for(socket, 0.3) for socket in sockets.values()))  # counts and greetings
    return sockets


async def _received(sockets: dict, kind: str) -> dict[str, list[dict]]:
    """What each socket receives of `kind` until nothing more comes."""
    seen = await asyncio.gather(*(events_for(socket, QUIET_S) for socket in sockets.values()))
    return {name: [e for e in got if e.get("type") == kind] for name, got in zip(sockets, seen, strict=True)}


@pytest.fixture
def handed_over(monkeypatch) -> Counter:
    """How many sockets' consumers the channel layer handed each kind of space event to."""
    counts = Counter()
    handle = SpaceConsumer.space_event

    async def counted(consumer, message):
        counts[message.get("kind") or message.get("event", {}).get("type")] += 1
        await handle(consumer, message)

    monkeypatch.setattr(SpaceConsumer, "space_event", counted)
    return counts


async def test_a_raised_hand_reaches_three_of_52_sockets_and_a_reaction_all_of_them(handed_over):
    # given: a host, a co-host and 50 listeners connected to one live space
    host = await db(make_host)(username="host")
    space = await db(make_space)(host=host)
    cohost, listeners = await db(_listeners_and_cohost)(space, LISTENERS)
    sockets = await _open(space.pk, [host, cohost, *listeners])
    asker = listeners[7].username

    # when: one listener raises a hand
    await sockets[asker].send_json_to({"type": "request_speak", "ref": 1})
    hands = await _received(sockets, "participant.updated")

    # then: exactly the host, the co-host and the asker got it, once each; no other socket was even handed it
    assert handed_over["participant.updated"] == 3
    assert sorted(name for name, got in hands.items() if got) == sorted(["host", "cohost", asker])
    assert all(len(got) == 1 and got[0]["participant"]["hand_raised"] for got in hands.values() if got)
    assert hands["host"][0]["space_id"] == space.pk

    # when: another listener reacts
    await sockets["listener3"].send_json_to({"type": "react", "emoji": "🔥"})
    reactions = await _received(sockets, "reaction")

    # then: all 52 sockets got it, once each
    assert len(reactions) == LISTENERS + 2
    assert handed_over["reaction"] == LISTENERS + 2
    assert all(len(got) == 1 and got[0]["emoji"] == "🔥" for got in reactions.values())
    for socket in sockets.values():
        await socket.disconnect()


async def test_a_new_cohost_starts_seeing_hands_and_a_former_one_stops():
    # given: a host, a listener about to be a co-host, and two listeners
    host = await db(make_host)(username="host")
    space = await db(make_space)(host=host)
    rising, asker, other = [await db(UserFactory)(username=name) for name in ("rising", "asker", "other")]
    sockets = await _open(space.pk, [host, rising, asker, other])

    # when: the host makes `rising` a co-host and `asker` raises a hand
    await sockets["host"].send_json_to({"type": "add_cohost", "user": "rising"})
    await next_event(sockets["rising"], "snapshot")  # a moderator's view: hands and invites
    await sockets["asker"].send_json_to({"type": "request_speak"})
    first = await _received(sockets, "participant.updated")

    # then: the new co-host saw the hand; the other listener didn't
    assert any(e["participant"]["hand_raised"] for e in first["rising"])
    assert not any(e["participant"]["hand_raised"] for e in first["other"])

    # when: the host takes co-hosting back and the hand comes down and goes up again
    await sockets["host"].send_json_to({"type": "remove_cohost", "user": "rising"})
    await _received(sockets, "participant.updated")
    await sockets["asker"].send_json_to({"type": "lower_hand"})
    await sockets["asker"].send_json_to({"type": "request_speak"})
    second = await _received(sockets, "participant.updated")

    # then: the former co-host no longer sees hands; the host still does
    assert second["rising"] == []
    assert [e["participant"]["hand_raised"] for e in second["host"]] == [False, True]
    for socket in sockets.values():
        await socket.disconnect()
