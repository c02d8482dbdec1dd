"""A socket still open whose presence was swept away while its process missed its window comes back."""

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from rooms import services
from rooms.models import Connection, Participant, Role
from rooms.presence_loop import PresenceLoop
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat
from tests.rooms.ws import connect, events_for, next_event

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async


def miss_the_window(settings) -> dict:
    """The web process stalls (or loses its database) past the timeout: another process's sweep
    drops its sockets' rows, as it would a dead process's."""
    Connection.objects.update(last_seen_at=timezone.now() - timedelta(seconds=settings.SPACES_PRESENCE_TIMEOUT_S + 5))
    return services.presence_sweep()


async def test_a_host_swept_away_while_connected_is_present_again_at_the_next_pass(settings):
    # given: a host and a listener connected, then swept away while their process stalled
    host = await db(make_host)()
    space = await db(make_space)(host=host)
    listener = await db(UserFactory)()
    host_socket, _ = await connect(space.pk, host)
    listener_socket, _ = await connect(space.pk, listener)
    report = await db(miss_the_window)(settings)
    assert report["stale_connections"] == 2
    assert await db(Participant.objects.get)(space=space, user=host, absent_since__isnull=False)

    # when: the process, running again, makes its next pass
    loop = PresenceLoop()
    await loop.pass_and_restore()

    # then: both sockets are vouched for again, the host is present, each socket has a fresh snapshot
    snapshot = await next_event(host_socket, "snapshot")
    await next_event(listener_socket, "snapshot")
    assert snapshot["you"]["role"] == Role.HOST
    assert await db(Connection.objects.count)() == 2
    host_row = await db(Participant.objects.get)(space=space, user=host)
    assert host_row.absent_since is None
    # and they are in their groups again: a listener's reaction reaches the host
    await listener_socket.send_json_to({"type": "react", "emoji": "👏"})
    assert (await next_event(host_socket, "reaction"))["emoji"] == "👏"
    # and the host's presence now holds: five minutes on, the space is still live
    later = timezone.now() + timedelta(seconds=settings.SPACES_HOST_ABSENCE_END_S + 1)
    await db(services.connections_seen)(
        channel_names=[c.channel_name for c in await db(list)(Connection.objects.all())], now=later
    )
    assert (await db(services.presence_sweep)(now=later))["spaces_ended"] == 0
    await listener_socket.disconnect()
    await host_socket.disconnect()


async def test_someone_removed_meanwhile_is_not_let_back_in(settings):
    host = await db(make_host)()
    space = await db(make_space)(host=host)
    speaker = await db(UserFactory)()
    await db(seat)(space, speaker, Role.SPEAKER)
    socket, _ = await connect(space.pk, speaker)
    await db(miss_the_window)(settings)
    # the host removes them while their socket had no presence (the event never reached it)
    await db(services.participant_remove)(actor=host, space_id=space.pk, target=speaker)

    await PresenceLoop().pass_and_restore()

    received = await events_for(socket, 2)
    assert [e["code"] for e in received if e["type"] == "error"] == ["removed"]
    assert received[-1]["type"] == "websocket.close"
    assert not await db(Connection.objects.exists)()
