"""A web process killed with `kill -9`: its sockets leave presence, the count and the groups within the window."""

import asyncio
import time

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from rooms.models import Connection, Role
from rooms.selectors import listener_count
from tests.topology.cluster import TIMINGS, Socket, until
from tests.topology.scene import live_space

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]
SWEEP_S = float(TIMINGS["SPACES_PRESENCE_SWEEP_S"])
TIMEOUT_S = float(TIMINGS["SPACES_PRESENCE_TIMEOUT_S"])
GRACE_S = float(TIMINGS["SPACES_RECONNECT_GRACE_S"])
# A dead process's sockets are gone this long after it died, at the latest: not vouched for
# within the timeout, found by the next sweep of a live process.
WINDOW_S = TIMEOUT_S + SWEEP_S


@database_sync_to_async
def presence_of(space_id: int) -> tuple[int, int]:
    return Connection.objects.filter(space_id=space_id).count(), listener_count(space_id=space_id)


async def test_a_killed_web_process_leaves_no_ghosts_and_its_speaker_keeps_the_grace(cluster):
    # given: sockets on two web processes; the speaker's is on the one that will die
    scene = await database_sync_to_async(live_space)()
    a, b = cluster.start_web(), cluster.start_web()
    speaker = await Socket([a.ws_url], scene.path, cookie=scene.cookies["speaker"], reconnect=False).start()
    fan = await Socket([a.ws_url, b.ws_url], scene.path, cookie=scene.cookies["fan"]).start()
    visitor = await Socket([a.ws_url, b.ws_url], scene.path).start()
    host = await Socket([b.ws_url], scene.path, cookie=scene.cookies["host"]).start()
    ear = await Socket([b.ws_url], scene.path, cookie=scene.cookies["ear"]).start()
    await until(lambda: presence_of(scene.space.pk), timeout=5, what="sockets recorded")
    assert await presence_of(scene.space.pk) == (5, 5)

    # when: web process A dies without closing anything; its clients (but the speaker) reconnect to B
    a.kill()
    killed = time.monotonic()

    # then: within the window, presence holds exactly the live sockets: host, ear, fan and the visitor
    async def exact() -> bool:
        return await presence_of(scene.space.pk) == (4, 4)

    await until(exact, timeout=WINDOW_S + 2, what="the dead process's sockets are dropped")
    dropped_after = time.monotonic() - killed
    assert fan.served_by == visitor.served_by == b.ws_url
    # and dead channels left the space's group (its members: the 4 live sockets)
    group = f"{settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}:group:space.{scene.space.pk}"
    await until(lambda: cluster.redis.command("ZCARD", group).strip() == "4", timeout=2, what="group holds 4")
    await until(lambda: host.seen("listeners.count", count=4), timeout=3, what="the host sees the right count")

    # and the speaker who doesn't come back keeps the stage for the whole grace, counted from their last word
    speaker_row = await database_sync_to_async(scene.participant)("speaker")
    assert speaker_row.role == Role.SPEAKER and speaker_row.absent_since is not None

    async def moved() -> bool:
        return (await database_sync_to_async(scene.participant)("speaker")).role == Role.LISTENER

    await until(moved, timeout=GRACE_S + WINDOW_S, what="the absent speaker moves to the audience")
    moved_after = time.monotonic() - killed
    assert GRACE_S - SWEEP_S - 0.5 <= moved_after <= GRACE_S + 2 * SWEEP_S + 1, moved_after
    print(f"kill -9: ghosts gone after {dropped_after:.1f} s (window {WINDOW_S:.0f} s)")
    print(f"kill -9: the speaker moved after {moved_after:.1f} s (grace {GRACE_S:.0f} s)")
    await asyncio.gather(*(s.close() for s in (speaker, fan, visitor, host, ear)))
