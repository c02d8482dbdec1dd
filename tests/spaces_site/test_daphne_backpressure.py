"""A client flooding its websocket under daphne is read no faster than the site handles it: the flood
is refused and closed within a second or two, and others are served meanwhile."""

import asyncio
import json
import time

import pytest
from channels.db import database_sync_to_async
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.factories import UserFactory
from tests.rooms.scene import make_space, session_headers

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async
FLOOD_S = 6  # longest the flooder goes on if nothing stops it


async def open_socket(server, space_id: int, user):
    headers = dict(await db(session_headers)(user))
    socket = await connect(
        f"{server.ws_url}/ws/spaces/{space_id}/",
        origin=server.url,
        additional_headers={"Cookie": headers[b"cookie"].decode()},
        proxy=None,
        ping_interval=None,
        max_queue=None,
    )
    assert json.loads(await socket.recv())["type"] == "snapshot"
    return socket


async def test_a_ping_flood_is_closed_quickly_and_a_bystander_is_answered_meanwhile(asgi_live_server):
    space = await db(make_space)()
    flooder_socket = await open_socket(asgi_live_server, space.pk, await db(UserFactory)())
    bystander_socket = await open_socket(asgi_live_server, space.pk, await db(UserFactory)())

    async def flood() -> tuple[float, int | None]:
        started = time.monotonic()
        try:
            while time.monotonic() - started < FLOOD_S:
                for _ in range(100):
                    await flooder_socket.send('{"type": "ping"}')
                await asyncio.sleep(0)
        except ConnectionClosed:
            pass
        with pytest.raises(ConnectionClosed):
            while True:  # read what was sent back until the close
                await asyncio.wait_for(flooder_socket.recv(), FLOOD_S)
        return time.monotonic() - started, flooder_socket.close_code

    flooding = asyncio.create_task(flood())
    await asyncio.sleep(0.5)  # the flood is under way
    asked = time.monotonic()
    await bystander_socket.send(json.dumps({"type": "ping", "ref": "still here?"}))
    while (answer := json.loads(await asyncio.wait_for(bystander_socket.recv(), 5)))["type"] != "pong":
        pass
    answered_in = time.monotonic() - asked
    flood_s, close_code = await flooding

    assert answer["ref"] == "still here?"
    assert answered_in < 1.0
    assert close_code == 4429
    assert flood_s < 3.0
    await bystander_socket.close()
