"""New notifications reach the person's open pages over `/ws/me/`; their space sockets, which join
the same per-user group, ignore them and stay open."""

import asyncio

import pytest
import time_machine
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from scheduling import services
from scheduling.models import Kind, Notification
from spaces_site.asgi import application
from tests.factories import UserFactory
from tests.rooms import ws
from tests.rooms.scene import make_space, session_headers
from tests.scheduling.scene import due, lead_time, make_scheduled_space

pytestmark = pytest.mark.django_db(transaction=True)


async def open_me(user) -> WebsocketCommunicator:
    headers = await database_sync_to_async(session_headers)(user)
    socket = WebsocketCommunicator(application, "/ws/me/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    assert (await socket.receive_json_from(timeout=5))["type"] == "hello"
    return socket


async def test_a_delivered_reminder_reaches_the_open_page_and_a_space_socket_stays_open():
    # given: lee has a reminder, a page open (/ws/me/), and is listening to another, live space
    lee = await database_sync_to_async(UserFactory)(username="lee")
    scheduled = await database_sync_to_async(make_scheduled_space)(minutes_ahead=60, title="Soon")
    await database_sync_to_async(services.reminder_set)(user=lee, space_id=scheduled.pk)
    live = await database_sync_to_async(make_space)(title="Meanwhile")
    me = await open_me(lee)
    space_socket, snapshot = await ws.connect(live.pk, lee)
    assert snapshot["type"] == "snapshot"

    # when: the lead time comes and due work delivers the reminder
    def deliver():
        with time_machine.travel(lead_time(scheduled), tick=False):
            due()

    await database_sync_to_async(deliver)()

    # then: the open page gets it as a `notification` event, as stored
    event = await ws.next_event(me, "notification")
    stored = await database_sync_to_async(Notification.objects.get)(user=lee)
    assert event["notification"] == {
        "id": stored.pk,
        "kind": Kind.REMINDER,
        "title": "Starting in 15 min: Soon",
        "body": stored.body,
        "url": f"/spaces/{scheduled.pk}/",
        "space": scheduled.pk,
        "created_at": stored.created_at.isoformat(),
        "read": False,
    }
    # and the space socket got nothing of it and still answers
    assert [e for e in await ws.events_for(space_socket, 0.3) if e.get("type") == "notification"] == []
    await space_socket.send_json_to({"type": "ping"})
    assert (await ws.next_event(space_socket, "pong"))["type"] == "pong"
    await asyncio.gather(me.disconnect(), space_socket.disconnect())


async def test_someone_elses_notification_does_not_reach_my_page():
    # given: two people with pages open; only ada holds a reminder
    ada, bo = await asyncio.gather(
        database_sync_to_async(UserFactory)(username="ada"), database_sync_to_async(UserFactory)(username="bo")
    )
    scheduled = await database_sync_to_async(make_scheduled_space)(minutes_ahead=60)
    await database_sync_to_async(services.reminder_set)(user=ada, space_id=scheduled.pk)
    ada_page, bo_page = await open_me(ada), await open_me(bo)

    # when: the reminder is delivered
    def deliver():
        with time_machine.travel(lead_time(scheduled), tick=False):
            due()

    await database_sync_to_async(deliver)()

    # then: ada's page has it, bo's doesn't
    assert (await ws.next_event(ada_page, "notification"))["notification"]["kind"] == Kind.REMINDER
    assert await ws.events_for(bo_page, 0.3) == []
    await asyncio.gather(ada_page.disconnect(), bo_page.disconnect())
