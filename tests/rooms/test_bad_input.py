"""Nonsense on the websocket gets an error or a clean close, and changes nothing for anyone."""

import json
import time

import pytest
from channels.db import database_sync_to_async

from tests.rooms.scene import Scene, build_scene
from tests.rooms.ws import connect, events_for, next_event

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async


async def _scene_with_bystander() -> tuple[Scene, object, object]:
    scene = await db(build_scene)()
    bystander, _ = await connect(scene.space.pk, scene.user("listener2"))
    sender, _ = await connect(scene.space.pk, scene.user("speaker"))
    return scene, sender, bystander


async def _bystander_still_served(scene: Scene, bystander) -> None:
    """The bystander's socket still answers and still gets the room's events."""
    await bystander.send_json_to({"type": "ping", "ref": 1})
    assert await next_event(bystander, "pong") == {"type": "pong", "ref": 1}
    other, _ = await connect(scene.space.pk, scene.user("listener3"))
    await other.send_json_to({"type": "react", "emoji": "👍"})
    assert (await next_event(bystander, "reaction", emoji="👍"))["user"]["username"] == "listener3"
    await other.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("this is not json", "bad_json"),
        ("[1, 2, 3]", "bad_command"),
        ('"hello"', "bad_command"),
        ("{}", "missing_field"),
        ('{"type": 42}', "missing_field"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "approve"}', "missing_field"),
        ('{"type": "approve", "user": 7}', "bad_field"),
        ('{"type": "approve", "user": ["a"]}', "bad_field"),
        ('{"type": "edit"}', "missing_field"),
        ('{"type": "edit", "topics": "jazz"}', "bad_field"),
        ('{"type": "edit", "topics": [1, 2]}', "bad_field"),
        ('{"type": "edit", "title": true}', "bad_field"),
        ('{"type": "approve", "user": "nobody_here"}', "user_not_found"),
        ('{"type": "react", "emoji": "x"}', "bad_reaction"),
        ('{"type": "edit", "title": ""}', "not_allowed"),
    ],
)
async def test_malformed_commands_get_error_events_and_change_nothing(frame, code):
    # given
    scene, sender, bystander = await _scene_with_bystander()
    before = await db(scene.fingerprint)()

    # when
    await sender.send_to(text_data=frame)
    error = await next_event(sender, "error")

    # then
    assert error["code"] == code and error["detail"]
    assert await db(scene.fingerprint)() == before
    await sender.send_json_to({"type": "ping"})
    assert (await next_event(sender, "pong"))["type"] == "pong"
    await _bystander_still_served(scene, bystander)


async def test_binary_frame_is_refused():
    scene, sender, bystander = await _scene_with_bystander()

    await sender.send_to(bytes_data=b"\x00\x01")

    assert (await next_event(sender, "error"))["code"] == "bad_frame"
    await _bystander_still_served(scene, bystander)


async def test_a_one_mebibyte_frame_closes_only_that_socket():
    scene, sender, bystander = await _scene_with_bystander()
    before = await db(scene.fingerprint)()

    await sender.send_to(text_data=json.dumps({"type": "edit", "title": "x" * (1 << 20)}))

    assert (await next_event(sender, "error"))["code"] == "frame_too_big"
    assert await sender.receive_output(timeout=5) == {"type": "websocket.close", "code": 1009}
    assert await db(scene.fingerprint)() == before
    await _bystander_still_served(scene, bystander)


async def test_200_commands_in_a_second_are_rate_limited_then_closed(settings):
    scene, sender, bystander = await _scene_with_bystander()
    before = await db(scene.fingerprint)()

    started = time.monotonic()
    for _ in range(200):
        await sender.send_json_to({"type": "react", "emoji": "🔥"})
    received = await events_for(sender, 5)
    elapsed = time.monotonic() - started

    refused = [e for e in received if e["type"] == "error"]
    reactions = [e for e in received if e["type"] == "reaction"]
    assert refused and all(e["code"] == "rate_limited" for e in refused)
    # at most the burst, plus what the bucket refilled while the server worked through them
    assert len(reactions) <= settings.SPACES_COMMAND_BURST + settings.SPACES_COMMAND_BURST * (1 + elapsed // 2)
    assert received[-1] == {"type": "websocket.close", "code": 4429}
    assert await db(scene.fingerprint)() == before
    await _bystander_still_served(scene, bystander)
