"""The single-process server, as `make run` serves it (daphne, the in-process channel layer), killed
with `kill -9` and started again: the new process drops at once every socket the old one left
(`rooms.presence_loop`), instead of showing ghosts for the presence timeout or, with nobody
connecting, for ever; the clients coming back are then counted once each."""

import asyncio
import json
import time
import urllib.request

import pytest
from channels.db import database_sync_to_async
from django.db import connections

from rooms.models import Connection
from tests.live_server_asgi import AsgiLiveServer
from tests.topology.cluster import Socket, until
from tests.topology.scene import LiveSpace, live_space

pytestmark = pytest.mark.django_db(transaction=True)

# The one-command default: no Redis, so the channel layer and the cache are the process's own.
SINGLE_PROCESS = {"REDIS_URL": "", "CELERY_BROKER_URL": ""}
PEOPLE = ("host", "speaker", "fan", "ear", "other")
ANONYMOUS = 2
# The acceptance: no ghost this long after the restarted server answers.
NO_GHOST_WITHIN_S = 5


def seen_by_the_api(server: AsgiLiveServer, space_id: int) -> tuple[int, dict[str, bool]]:
    """What the space's API says of presence: the listener count, and who on stage is there."""
    with urllib.request.urlopen(f"{server.url}/api/spaces/{space_id}/", timeout=5) as answer:
        body = json.loads(answer.read())
    return body["listener_count"], {entry["user"]["username"]: entry["present"] for entry in body["stage"]}


async def api_shows(server: AsgiLiveServer, space_id: int, expected: tuple, *, within: float, what: str) -> None:
    async def shown() -> bool:
        return await asyncio.to_thread(seen_by_the_api, server, space_id) == expected

    await until(shown, timeout=within, what=what)


@database_sync_to_async
def rows(space_id: int) -> int:
    return Connection.objects.filter(space_id=space_id).count()


async def connect_everyone(server: AsgiLiveServer, scene: LiveSpace) -> list[Socket]:
    sockets = [Socket([server.ws_url], scene.path, cookie=scene.cookies[name], reconnect=False) for name in PEOPLE]
    sockets += [Socket([server.ws_url], scene.path, reconnect=False) for _ in range(ANONYMOUS)]
    return list(await asyncio.gather(*(socket.start() for socket in sockets)))


async def test_a_restarted_single_process_server_shows_no_ghost_5_s_after_it_answers():
    # given: 7 sockets (5 people, 2 visitors) on the one web process
    scene = await database_sync_to_async(live_space)()
    space_id = scene.space.pk
    databases = {alias: connections[alias].settings_dict for alias in connections}
    first = AsgiLiveServer(databases, env=SINGLE_PROCESS)
    try:
        before = await connect_everyone(first, scene)
        everyone = (7, {"host": True, "speaker": True})
        await api_shows(first, space_id, everyone, within=5, what="7 sockets present")

        # when: the process is killed and started again; nobody has reconnected yet
        first.kill()
    finally:
        first.stop()
    await asyncio.gather(*(socket.close() for socket in before))
    second = AsgiLiveServer(databases, env=SINGLE_PROCESS)
    try:
        answered = time.monotonic()

        # then: within 5 s of answering, the API shows nobody there, and no row is left
        nobody = (0, {"host": False, "speaker": False})
        await api_shows(second, space_id, nobody, within=NO_GHOST_WITHIN_S, what="the old process's sockets dropped")
        gone_after = time.monotonic() - answered
        assert await rows(space_id) == 0

        # and when everyone comes back, each is counted once: 7 sockets, 7 rows
        after = await connect_everyone(second, scene)
        await api_shows(second, space_id, everyone, within=5, what="the 7 sockets back")
        assert await rows(space_id) == 7
        print(f"restart: ghosts gone {gone_after:.2f} s after the new process answered")
        await asyncio.gather(*(socket.close() for socket in after))
    finally:
        second.stop()
