"""The database unreachable (a TCP proxy the test cuts): 503s and `unavailable`, idle sockets kept, back at once."""

import asyncio
import json
import time
import urllib.error
import urllib.request

import pytest
from channels.db import database_sync_to_async
from django.db import connection

from spaces_site.sockets import CLOSE_TRY_AGAIN_LATER
from tests.topology.cluster import Socket, TcpProxy, until
from tests.topology.scene import live_space

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


async def test_database_outage_answers_503_and_unavailable_and_recovers_within_2_s(cluster):
    # given: a web process reaching PostgreSQL through a proxy, with sockets open
    scene = await database_sync_to_async(live_space)()
    proxy = TcpProxy(connection.settings_dict["HOST"] or "127.0.0.1", int(connection.settings_dict["PORT"] or 5432))
    web = cluster.start_web(database_port=proxy.port)
    host = await Socket([web.ws_url], scene.path, cookie=scene.cookies["host"]).start()
    idle = await Socket([web.ws_url], scene.path, cookie=scene.cookies["fan"]).start()

    # when: the database becomes unreachable
    proxy.cut()

    # then: the API answers 503 with Retry-After and the usual error body; pages a short 503 page
    status, headers, body = await asyncio.to_thread(get, f"{web.url}/api/spaces/")
    assert (status, headers.get("Retry-After"), json.loads(body)["code"]) == (503, "1", "unavailable")
    status, headers, body = await asyncio.to_thread(get, f"{web.url}/")
    assert status == 503 and b"Back in a moment" in body and headers.get("Retry-After") == "1"
    assert (await asyncio.to_thread(get, f"{web.url}/readyz"))[0] == 503
    assert (await asyncio.to_thread(get, f"{web.url}/healthz"))[0] == 200
    # a websocket command is answered `unavailable`, with its ref
    await host.send({"type": "react", "emoji": "🔥", "ref": "r1"})
    await until(lambda: host.seen("error", code="unavailable", ref="r1"), timeout=5, what="command refused")
    # a new socket is accepted, told, and closed with 4503 (the page reconnects), not refused with HTTP 500
    newcomer = Socket([web.ws_url], scene.path, cookie=scene.cookies["ear"], reconnect=False)
    newcomer.task = asyncio.get_running_loop().create_task(newcomer._run())
    await until(lambda: newcomer.closes, timeout=10, what="the newcomer is closed")
    assert newcomer.closes == [CLOSE_TRY_AGAIN_LATER] and newcomer.seen("error", code="unavailable")
    # idle sockets stay open through more than a presence timeout
    await asyncio.sleep(5)
    assert host.closes == [] and idle.closes == []

    # when: the database is back
    proxy.restore()
    back = time.monotonic()

    # then: within 2 s the API and the socket's commands work again
    await until(lambda: get(f"{web.url}/api/spaces/")[0] == 200, timeout=2, what="the API answers again")
    await host.send({"type": "react", "emoji": "👏", "ref": "r2"})
    await until(lambda: host.seen("ok", ref="r2"), timeout=2 - (time.monotonic() - back) + 0.5, what="command ok")
    await until(lambda: idle.seen("reaction", emoji="👏"), timeout=2, what="the idle socket receives it")
    assert host.closes == [] and idle.closes == []
    await host.close()
    await idle.close()
