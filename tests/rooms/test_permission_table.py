"""Every row of the permission table (PRODUCT.md §2), for every role, through the websocket and REST.

For each command and each actor: an allowed command changes exactly what it
should; a refused one answers with an error that says why and changes nothing.
"""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from rest_framework.test import APIClient

from rooms.models import Participant, Role, Space
from spaces_site.asgi import application
from tests.rooms.scene import Scene, build_scene, session_headers

# The actor who plays each role in the scene.
ACTORS = {
    "host": "host",
    "cohost": "cohost",
    "speaker": "speaker",
    "listener": "listener3",
    "outsider": "outsider",
    "removed": "removed",
}
MODERATORS = {"host", "cohost"}
STAGE = {"host", "cohost", "speaker"}
EVERYONE_IN = {"host", "cohost", "speaker", "listener"}


def role_of(scene: Scene, name: str) -> str:
    return scene.participant(name).role


def _free_a_cohost_seat(scene: Scene, actor: str) -> None:
    Participant.objects.filter(space=scene.space, user=scene.user("cohost2")).update(role=Role.SPEAKER)


def _raise_actor_hand(scene: Scene, actor: str) -> None:
    Participant.objects.filter(space=scene.space, user=scene.user(actor)).update(hand_raised_at=timezone.now())


def _mute_everyone(scene: Scene, actor: str) -> None:
    Participant.objects.filter(space=scene.space).update(muted=True)


# id, message, roles allowed, what holds after an allowed run, optional set-up
ROWS = [
    ("end", {"type": "end"}, {"host"}, lambda s, a: Space.objects.get(pk=s.space.pk).state == "ended", None),
    (
        "transfer_host",
        {"type": "transfer_host", "user": "cohost2"},
        {"host"},
        lambda s, a: Space.objects.get(pk=s.space.pk).host == s.user("cohost2") and role_of(s, "host") == "cohost",
        None,
    ),
    (
        "add_cohost",
        {"type": "add_cohost", "user": "speaker2"},
        {"host"},
        lambda s, a: role_of(s, "speaker2") == "cohost",
        _free_a_cohost_seat,
    ),
    (
        "remove_cohost",
        {"type": "remove_cohost", "user": "cohost2"},
        {"host"},
        lambda s, a: role_of(s, "cohost2") == "speaker",
        None,
    ),
    (
        "edit",
        {"type": "edit", "title": "A new title", "topics": ["Jazz"]},
        MODERATORS,
        lambda s, a: Space.objects.get(pk=s.space.pk).topics == "jazz",
        None,
    ),
    (
        "approve",
        {"type": "approve", "user": "listener"},
        MODERATORS,
        lambda s, a: role_of(s, "listener") == "speaker",
        None,
    ),
    (
        "deny",
        {"type": "deny", "user": "listener"},
        MODERATORS,
        lambda s, a: s.participant("listener").hand_raised_at is None,
        None,
    ),
    (
        "invite",
        {"type": "invite", "user": "listener2"},
        MODERATORS,
        lambda s, a: s.participant("listener2").invited_at is not None,
        None,
    ),
    (
        "move_speaker_to_audience",
        {"type": "move_to_audience", "user": "speaker2"},
        MODERATORS,
        lambda s, a: role_of(s, "speaker2") == "listener",
        None,
    ),
    (
        "move_cohost_to_audience",
        {"type": "move_to_audience", "user": "cohost2"},
        {"host"},
        lambda s, a: role_of(s, "cohost2") == "listener",
        None,
    ),
    ("move_host_to_audience", {"type": "move_to_audience", "user": "host"}, set(), None, None),
    (
        "mute_speaker",
        {"type": "mute", "user": "speaker2"},
        MODERATORS,
        lambda s, a: s.participant("speaker2").muted,
        None,
    ),
    ("mute_cohost", {"type": "mute", "user": "cohost2"}, MODERATORS, lambda s, a: s.participant("cohost2").muted, None),
    ("mute_host", {"type": "mute", "user": "host"}, {"host"}, lambda s, a: s.participant("host").muted, None),
    (
        "remove_listener",
        {"type": "remove", "user": "listener2"},
        MODERATORS,
        lambda s, a: (
            s.participant("listener2").left_at is not None
            and s.space.blocks.filter(user__username="listener2").exists()
        ),
        None,
    ),
    (
        "remove_cohost_from_space",
        {"type": "remove", "user": "cohost2"},
        {"host"},
        lambda s, a: s.participant("cohost2").left_at is not None,
        None,
    ),
    ("remove_host", {"type": "remove", "user": "host"}, set(), None, None),
    (
        "request_speak",
        {"type": "request_speak"},
        {"listener"},
        lambda s, a: s.participant(a).hand_raised_at is not None,
        None,
    ),
    (
        "lower_hand",
        {"type": "lower_hand"},
        {"listener"},
        lambda s, a: s.participant(a).hand_raised_at is None,
        _raise_actor_hand,
    ),
    ("mute_self", {"type": "mute_self"}, STAGE, lambda s, a: s.participant(a).muted, None),
    ("unmute_self", {"type": "unmute_self"}, STAGE, lambda s, a: not s.participant(a).muted, _mute_everyone),
    ("leave_stage", {"type": "leave_stage"}, STAGE, lambda s, a: role_of(s, a) == "listener", None),
    ("react", {"type": "react", "emoji": "👏"}, EVERYONE_IN, None, None),
]


def _cases(roles):
    for row_id, message, allowed, check, prepare in ROWS:
        for role in roles:
            yield pytest.param(message, role, role in allowed, check, prepare, id=f"{row_id}-{role}")


@pytest.mark.django_db
@pytest.mark.parametrize(("message", "role", "allowed", "check", "prepare"), list(_cases(ACTORS)))
def test_rest(message, role, allowed, check, prepare):
    # given
    scene = build_scene()
    actor = ACTORS[role]
    if prepare:
        prepare(scene, actor)
    before = scene.fingerprint()
    api = APIClient()
    api.force_authenticate(scene.user(actor))

    # when
    response = api.post(f"/api/spaces/{scene.space.pk}/commands/", message, format="json")

    # then
    if allowed:
        assert response.status_code == 200, response.json()
        assert check is None or check(scene, actor)
    else:
        assert response.status_code in (403, 409), response.json()
        assert response.json()["detail"]
        assert scene.fingerprint() == before


async def _ws_command(communicator, message) -> dict:
    """Send a command and return the server's `ok` or `error` answer to it."""
    await communicator.send_json_to({**message, "ref": "walk"})
    while True:
        answer = await communicator.receive_json_from(timeout=5)
        if answer.get("ref") == "walk":
            return answer


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("message", "role", "allowed", "check", "prepare"), list(_cases(["host", "cohost", "speaker", "listener"]))
)
async def test_websocket(message, role, allowed, check, prepare):
    # given
    scene = await database_sync_to_async(build_scene)()
    actor = ACTORS[role]
    if prepare:
        await database_sync_to_async(prepare)(scene, actor)
    headers = await database_sync_to_async(session_headers)(scene.user(actor))
    socket = WebsocketCommunicator(application, f"/ws/spaces/{scene.space.pk}/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    snapshot = await socket.receive_json_from()
    assert snapshot["type"] == "snapshot" and snapshot["you"]["role"] == role
    before = await database_sync_to_async(scene.fingerprint)()

    # when
    answer = await _ws_command(socket, message)

    # then
    if allowed:
        assert answer["type"] == "ok", answer
        if check is not None:
            assert await database_sync_to_async(check)(scene, actor)
    else:
        assert answer["type"] == "error"
        assert answer["code"] and answer["detail"]
        assert await database_sync_to_async(scene.fingerprint)() == before
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_websocket_refuses_someone_removed_from_the_space():
    scene = await database_sync_to_async(build_scene)()
    headers = await database_sync_to_async(session_headers)(scene.user("removed"))
    socket = WebsocketCommunicator(application, f"/ws/spaces/{scene.space.pk}/", headers=headers)

    connected, _ = await socket.connect()
    refusal = await socket.receive_json_from()
    closed = await socket.receive_output()

    assert connected  # accepted so the refusal can say why
    assert refusal == {"type": "error", "code": "removed", "detail": "You were removed from this space."}
    assert closed == {"type": "websocket.close", "code": 4403}
