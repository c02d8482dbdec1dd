"""The host's numbers, counted as a space runs: through the space's real websockets, then the replay page."""

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.utils import timezone

from rooms import services
from rooms.models import Connection, SpaceNumbers
from tests.factories import UserFactory
from tests.media.replay_files import recording_of
from tests.rooms.scene import make_host, make_space
from tests.rooms.ws import connect, events_for, next_event

pytestmark = pytest.mark.django_db(transaction=True)
db = database_sync_to_async


async def test_the_hosts_numbers_equal_what_happened():
    # given: a live space, its host, three listeners (one comes twice), one of them brought on stage
    host = await db(make_host)()
    space = await db(make_space)(host=host, recording_enabled=True)
    ann, ben, cat = [await db(UserFactory)(username=name) for name in ("ann", "ben", "cat")]
    host_socket, _ = await connect(space.pk, host)
    ann_socket, _ = await connect(space.pk, ann)
    await ann_socket.disconnect()
    ann_socket, _ = await connect(space.pk, ann)  # back again: still one listener
    ben_socket, _ = await connect(space.pk, ben)
    cat_socket, _ = await connect(space.pk, cat)
    await next_event(host_socket, "listeners.count", count=4)  # host + three listeners, all at once

    await ben_socket.send_json_to({"type": "request_speak", "ref": 1})
    await next_event(host_socket, "participant.updated")
    await host_socket.send_json_to({"type": "approve", "user": "ben", "ref": 2})
    await next_event(host_socket, "ok", ref=2)
    for n, (socket, emoji) in enumerate(
        [(ann_socket, "🔥"), (cat_socket, "👏"), (ben_socket, "😂"), (ann_socket, "💯")]
    ):
        await socket.send_json_to({"type": "react", "emoji": emoji, "ref": 10 + n})
        await next_event(socket, "ok", ref=10 + n)
    await host_socket.send_json_to({"type": "react", "emoji": "💩", "ref": 20})  # refused: not counted
    await next_event(host_socket, "error", ref=20)
    for socket in (ann_socket, ben_socket, cat_socket, host_socket):
        await socket.disconnect()
    await events_for(ann_socket, 0.1)
    await db(services.space_end)(actor=host, space_id=space.pk)

    # and two people play the replay
    recording = await db(recording_of)(space, (440, 2))
    for person in (ann, cat):
        client = Client()
        await db(client.force_login)(person)
        response = await db(client.post)(f"/recordings/{recording.pk}/played/")
        assert response.status_code == 204

    # then
    numbers = await db(SpaceNumbers.objects.get)(space=space)
    assert numbers.unique_listeners == 3
    assert numbers.peak_listeners == 4
    assert numbers.speakers == 2
    assert numbers.reactions == 4
    assert numbers.replay_plays == 2
    assert numbers.listening_seconds >= 0
    assert (numbers.tickets_sold, numbers.revenue_minor, numbers.clips) == (0, 0, 0)


def test_the_numbers_page_and_api_are_the_hosts_alone(client, api):
    host = make_host()
    space = make_space(host=host, title="Counted")
    services.numbers_add(space_id=space.pk, reactions=7, listening_seconds=150)
    other = UserFactory()

    client.force_login(host)
    page = client.get("/me/numbers/").content.decode()
    api.force_authenticate(host)
    mine = api.get(f"/api/spaces/{space.pk}/numbers/").json()
    listing = api.get("/api/me/numbers/").json()
    api.force_authenticate(other)
    refused = api.get(f"/api/spaces/{space.pk}/numbers/")

    assert "Counted" in page and 'data-figure="reactions">7<' in page
    assert (mine["reactions"], mine["minutes_listened"], mine["speakers"], mine["tickets_sold"]) == (7, 2, 1, None)
    assert listing["results"][0]["space"]["id"] == space.pk
    assert (refused.status_code, refused.json()["code"]) == (403, "numbers_refused")


def test_a_dead_sockets_time_counts_up_to_the_last_word_for_it():
    space = make_space(host=make_host())
    opened = timezone.now() - timedelta(minutes=10)
    services.connection_open(space=space, participant=None, channel_name="dead-socket")
    Connection.objects.filter(channel_name="dead-socket").update(
        opened_at=opened, last_seen_at=opened + timedelta(minutes=4)
    )

    services.presence_sweep()

    assert SpaceNumbers.objects.get(space=space).listening_seconds == 240


def test_staff_see_a_spaces_numbers_in_the_admin(client):
    space = make_space(host=make_host())
    services.numbers_add(space_id=space.pk, reactions=3)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    page = client.get(f"/admin/rooms/space/{space.pk}/change/")

    assert page.status_code == 200
    assert "Reactions" in page.content.decode() and "Unique listeners" in page.content.decode()
