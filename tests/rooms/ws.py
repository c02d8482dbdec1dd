"""Websocket helpers for tests: connect as someone, wait for an event."""

import asyncio
import json

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from spaces_site.asgi import application
from tests.rooms.scene import session_headers


async def connect(space_id: int, user=None) -> tuple[WebsocketCommunicator, dict]:
    """Open the space's socket as `user` (anonymous when None); return it and its first message."""
    headers = [(b"origin", b"http://127.0.0.1")]
    if user is not None:
        headers = await database_sync_to_async(session_headers)(user)
    socket = WebsocketCommunicator(application, f"/ws/spaces/{space_id}/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    return socket, await socket.receive_json_from(timeout=5)


async def next_event(socket: WebsocketCommunicator, kind: str, timeout: float = 5, **fields) -> dict:
    """The next event of type `kind` (with these field values), skipping others; fails after `timeout` s."""
    async with asyncio.timeout(timeout):
        while True:
            event = await socket.receive_json_from(timeout=timeout)
            if event["type"] == kind and all(event.get(k) == v for k, v in fields.items()):
                return event


async def events_for(socket: WebsocketCommunicator, seconds: float) -> list[dict]:
    """Everything the socket receives in the next `seconds`; a close shows as `{"type": "websocket.close"}`.

    Reads the communicator's queue directly: its own receive cancels the
    application when it times out, and this wait is meant to time out.
    """
    received = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            message = await asyncio.wait_for(socket.output_queue.get(), timeout=left)
        except TimeoutError:
            break
        if message["type"] == "websocket.send":
            received.append(json.loads(message["text"]))
        elif message["type"] == "websocket.close":
            received.append(message)
            break
    return received
