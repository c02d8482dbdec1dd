"""The space websocket: snapshots, events, who sees what, and who gets in."""

import pytest
from channels.db import database_sync_to_async

from accounts import services as accounts_services
from rooms import services
from rooms.models import Participant, Role, Space
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat
from tests.rooms.ws import connect, events_for, next_event

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async


async def test_snapshot_gives_space_stage_role_and_count():
    host = await db(make_host)(username="host")
    space = await db(make_space)(host=host, title="Morning show", topics=["news"])
    listener = await db(UserFactory)(username="lis")

    host_socket, host_snapshot = await connect(space.pk, host)
    socket, snapshot = await connect(space.pk, listener)

    assert snapshot["type"] == "snapshot"
    assert snapshot["space"]["title"] == "Morning show"
    assert snapshot["space"]["topics"] == ["news"]
    assert [p["user"]["username"] for p in snapshot["stage"]] == ["host"]
    assert snapshot["you"]["role"] == "listener"
    assert snapshot["listener_count"] == 2
    assert "hands" not in snapshot
    assert host_snapshot["hands"] == []
    await socket.disconnect()
    await host_socket.disconnect()


async def test_hand_is_seen_by_moderators_and_the_asker_only_then_approval_by_all():
    host = await db(make_host)(username="host")
    space = await db(make_space)(host=host)
    asker, other = await db(UserFactory)(username="asker"), await db(UserFactory)(username="other")
    host_socket, _ = await connect(space.pk, host)
    asker_socket, _ = await connect(space.pk, asker)
    other_socket, _ = await connect(space.pk, other)

    await asker_socket.send_json_to({"type": "request_speak"})
    seen_by_host = await next_event(host_socket, "participant.updated")
    seen_by_asker = await next_event(asker_socket, "participant.updated")
    await host_socket.send_json_to({"type": "approve", "user": "asker"})
    approved = await next_event(other_socket, "participant.updated")

    assert seen_by_host["participant"]["user"]["username"] == "asker"
    assert seen_by_host["participant"]["hand_raised"] is True
    assert seen_by_asker["participant"]["hand_raised"] is True
    assert approved["participant"] == {**approved["participant"], "role": "speaker", "muted": True}
    # the other listener saw the approval but never the raised hand
    assert (await next_event(asker_socket, "participant.updated"))["participant"]["role"] == "speaker"
    for socket in (host_socket, asker_socket, other_socket):
        await socket.disconnect()


async def test_a_listener_made_cohost_gets_a_fresh_snapshot_with_the_hand_queue():
    host = await db(make_host)(username="host")
    space = await db(make_space)(host=host)
    helper, asker = await db(UserFactory)(username="helper"), await db(UserFactory)(username="asker")
    helper_socket, _ = await connect(space.pk, helper)
    asker_socket, _ = await connect(space.pk, asker)
    await asker_socket.send_json_to({"type": "request_speak"})
    await next_event(asker_socket, "participant.updated")

    await db(services.cohost_add)(actor=host, space_id=space.pk, target=helper)
    snapshot = await next_event(helper_socket, "snapshot")

    assert snapshot["you"]["role"] == "cohost"
    assert [p["user"]["username"] for p in snapshot["hands"]] == ["asker"]
    await helper_socket.disconnect()
    await asker_socket.disconnect()


async def test_visitor_listens_to_a_public_space_but_cannot_act():
    space = await db(make_space)()

    socket, snapshot = await connect(space.pk)
    await socket.send_json_to({"type": "request_speak"})
    refusal = await next_event(socket, "error")

    assert snapshot["you"] is None
    assert snapshot["listener_count"] == 1
    assert refusal["code"] == "login_required"
    await socket.disconnect()


@pytest.mark.parametrize(
    ("setup", "code", "close"),
    [
        ("ticketed_visitor", "login_required", 4403),
        ("blocked_by_host", "blocked", 4403),
        ("scheduled", "not_started", 4403),
        ("ended", "space_over", 4403),
        ("missing", "space_not_found", 4404),
    ],
)
async def test_who_may_not_enter_is_told_why_and_closed(setup, code, close):
    host = await db(make_host)()
    space = await db(make_space)(host=host)
    user = await db(UserFactory)()
    if setup == "ticketed_visitor":
        await db(Space.objects.filter(pk=space.pk).update)(is_ticketed=True)
        user = None
    elif setup == "blocked_by_host":
        await db(accounts_services.user_block)(blocker=host, blocked=user)
    elif setup == "scheduled":
        await db(Space.objects.filter(pk=space.pk).update)(state="scheduled")
    elif setup == "ended":
        await db(services.space_end)(actor=host, space_id=space.pk)
    space_id = 10_000 if setup == "missing" else space.pk

    socket, refusal = await connect(space_id, user)
    closed = await socket.receive_output(timeout=5)

    assert (refusal["type"], refusal["code"]) == ("error", code)
    assert closed == {"type": "websocket.close", "code": close}
    assert not await db(Participant.objects.filter(space=space, user=user).exists)() if user else True


async def test_ending_the_space_tells_everyone_and_closes_their_sockets():
    host = await db(make_host)()
    space = await db(make_space)(host=host)
    listener_socket, _ = await connect(space.pk, await db(UserFactory)())
    host_socket, _ = await connect(space.pk, host)

    await host_socket.send_json_to({"type": "end"})
    ended = await next_event(listener_socket, "space.ended")

    assert ended["space"]["state"] == "ended"
    assert await listener_socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 1000}


async def test_removed_person_is_closed_and_kept_out():
    host = await db(make_host)()
    space = await db(make_space)(host=host)
    troll = await db(UserFactory)(username="troll")
    troll_socket, _ = await connect(space.pk, troll)

    await db(services.participant_remove)(actor=host, space_id=space.pk, target=troll)
    told = await next_event(troll_socket, "error")
    closed = await troll_socket.receive_output(timeout=5)
    _, refusal = await connect(space.pk, troll)

    assert told["code"] == "removed"
    assert closed["code"] == 4403
    assert refusal["code"] == "removed"


async def test_ban_closes_space_sockets_too():
    space = await db(make_space)()
    user = await db(UserFactory)()
    socket, _ = await connect(space.pk, user)

    await db(accounts_services.user_ban)(actor=await db(UserFactory)(is_staff=True), user=user)

    assert (await next_event(socket, "error"))["code"] == "account_banned"
    assert (await socket.receive_output(timeout=5))["code"] == 4403


async def test_listener_count_is_coalesced():
    space = await db(make_space)()
    watcher, _ = await connect(space.pk, await db(UserFactory)())
    users = [await db(UserFactory)() for _ in range(12)]

    sockets = [(await connect(space.pk, user))[0] for user in users]
    counts = [e["count"] for e in await events_for(watcher, 3) if e["type"] == "listeners.count"]

    assert 1 <= len(counts) <= 3
    assert counts[-1] == 13
    for socket in [watcher, *sockets]:
        await socket.disconnect()


async def test_reactions_reach_everyone_and_bad_emoji_is_refused():
    space = await db(make_space)()
    a, b = await db(UserFactory)(username="a"), await db(UserFactory)()
    a_socket, _ = await connect(space.pk, a)
    b_socket, _ = await connect(space.pk, b)

    await a_socket.send_json_to({"type": "react", "emoji": "🔥"})
    seen = await next_event(b_socket, "reaction")
    await a_socket.send_json_to({"type": "react", "emoji": "💩"})
    refused = await next_event(a_socket, "error")

    assert (seen["user"]["username"], seen["emoji"]) == ("a", "🔥")
    assert refused["code"] == "bad_reaction"
    await a_socket.disconnect()
    await b_socket.disconnect()


async def test_reconnecting_speaker_keeps_their_seat():
    host = await db(make_host)()
    space = await db(make_space)(host=host)
    speaker = await db(UserFactory)(username="spk")
    await db(seat)(space, speaker, Role.SPEAKER)
    socket, _ = await connect(space.pk, speaker)

    await socket.disconnect()
    absent = await db(Participant.objects.get)(space=space, user=speaker)
    socket, snapshot = await connect(space.pk, speaker)
    back = await db(Participant.objects.get)(space=space, user=speaker)

    assert absent.absent_since is not None
    assert snapshot["you"]["role"] == "speaker"
    assert back.absent_since is None
    await socket.disconnect()
