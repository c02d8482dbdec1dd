"""Two web processes on one Redis layer: a host on one, listeners on the other, and a space run to its end."""

import asyncio

import pytest
from channels.db import database_sync_to_async

from tests.topology.cluster import Socket, until
from tests.topology.scene import live_space

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def about(socket: Socket, username: str) -> list[dict]:
    """The participant of every `participant.updated` this socket got about `username`, in order."""
    updates = [e["participant"] for e in socket.seen("participant.updated")]
    return [p for p in updates if p["user"]["username"] == username]


async def everyone(sockets: dict[str, Socket], check, what: str) -> None:
    for name, socket in sockets.items():
        await until(lambda s=socket: check(s), timeout=5, what=f"{name}: {what}")


async def test_events_cross_web_processes_and_a_raised_hand_reaches_only_the_moderators(cluster):
    # given: the host and a listener on web process A; the asker, another listener and a visitor on B
    scene = await database_sync_to_async(live_space)()
    a, b = cluster.start_web(), cluster.start_web()
    where = {"host": a, "other": a, "ear": b, "fan": b, "anonymous-b": b}
    sockets = {
        name: await Socket([web.ws_url], scene.path, cookie=scene.cookies.get(name)).start()
        for name, web in where.items()
    }
    host, ear = sockets["host"], sockets["ear"]

    # when: `ear` asks to speak from B, and the host approves from A
    await ear.send({"type": "request_speak"})
    await until(lambda: [p for p in about(host, "ear") if p["hand_raised"]], timeout=5, what="the host sees the hand")
    await host.send({"type": "approve", "user": "ear"})
    await everyone(sockets, lambda s: any(p["role"] == "speaker" for p in about(s, "ear")), "sees the approval")
    # and: the new speaker unmutes, then the host mutes them
    await ear.send({"type": "unmute_self"})
    await until(lambda: any(not p["muted"] for p in about(host, "ear")), timeout=5, what="the host sees the unmute")
    await host.send({"type": "mute", "user": "ear"})
    await everyone(sockets, lambda s: about(s, "ear")[-1]["muted"], "sees the mute")
    # and: a listener on B reacts, then the host ends the space
    await sockets["fan"].send({"type": "react", "emoji": "🔥"})
    await everyone(sockets, lambda s: s.seen("reaction", emoji="🔥"), "sees the reaction")
    await host.send({"type": "end"})
    await everyone(sockets, lambda s: s.seen("space.ended", reason="host") and s.closes, "sees the end")

    # then: every socket got each public event once, in order, and was closed normally
    for name, socket in sockets.items():
        public = [(p["role"], p["muted"]) for p in about(socket, "ear") if not p["hand_raised"]]
        assert public == [("speaker", True), ("speaker", False), ("speaker", True)], (name, socket.events)
        assert [e["user"]["username"] for e in socket.seen("reaction")] == ["fan"], name
        assert len(socket.seen("space.ended")) == 1 and socket.closes == [1000], (name, socket.closes)
        assert socket.errors() == [], (name, socket.errors())
    assert {name: s.served_by for name, s in sockets.items()} == {name: web.ws_url for name, web in where.items()}
    # and: the raised hand reached the host on A and the asker on B, and no other listener
    hands = {name: [p for p in about(socket, "ear") if p["hand_raised"]] for name, socket in sockets.items()}
    assert {name for name, seen in hands.items() if seen} == {"host", "ear"}, hands
    assert hands["host"][0]["role"] == "listener"
    await asyncio.gather(*(s.close() for s in sockets.values()))
