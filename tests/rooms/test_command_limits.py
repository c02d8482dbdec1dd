"""One limit on a person's commands, over the websocket and REST together; pings limited per socket;
REST requests throttled per visitor's address, per account, and more strictly for sign-up and tokens."""

import time

import pytest
from channels.db import database_sync_to_async
from rest_framework.test import APIClient

from rooms.models import Role, SpaceNumbers
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat
from tests.rooms.ws import connect, events_for, next_event

db = database_sync_to_async
REACT = {"type": "react", "emoji": "🔥"}


def as_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
def test_200_reactions_over_rest_in_a_rush_let_the_burst_through_and_no_more(settings):
    # given: a listener in a live space, sending as fast as one client can
    space = make_space()
    fan = UserFactory()
    seat(space, fan, Role.LISTENER)
    client = as_user(fan)

    started = time.monotonic()
    answers = [client.post(f"/api/spaces/{space.pk}/commands/", REACT, format="json") for _ in range(200)]
    elapsed = time.monotonic() - started

    # then: a burst goes through (one more per window the rush spanned), the rest are told to slow down
    passed = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    windows = 1 + int(elapsed // 2) + 1
    assert settings.SPACES_COMMAND_BURST <= len(passed) <= settings.SPACES_COMMAND_BURST * windows
    assert len(passed) + len(refused) == 200
    assert refused[0].json()["code"] == "rate_limited" and refused[0].json()["retry_after"] >= 1
    # and only what passed was counted (and sent) as a reaction
    assert SpaceNumbers.objects.get(space=space).reactions == len(passed)


@pytest.mark.django_db(transaction=True)
async def test_the_websocket_and_rest_share_one_count(settings):
    # A window of 20 s, not 2: a loaded machine must not let the burst's window pass mid-test.
    settings.SPACES_COMMAND_RATE = 1
    space = await db(make_space)()
    fan = await db(UserFactory)()
    await db(seat)(space, fan, Role.LISTENER)
    socket, _ = await connect(space.pk, fan)

    # when: the burst is spent over the websocket (as fast as the socket allows) ...
    for _ in range(settings.SPACES_COMMAND_BURST):
        await socket.send_json_to({**REACT, "ref": "r"})
        await next_event(socket, "ok")
    # ... then the same person posts one over REST, in the same window
    answer = await db(lambda: as_user(fan).post(f"/api/spaces/{space.pk}/commands/", REACT, format="json"))()

    assert answer.status_code == 429, answer.content
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_ping_flood_is_refused_then_closed_and_others_are_still_served():
    host = await db(make_host)()
    space = await db(make_space)(host=host)
    flooder, bystander = await db(UserFactory)(), await db(UserFactory)()
    flood_socket, _ = await connect(space.pk, flooder)
    bystander_socket, _ = await connect(space.pk, bystander)

    for n in range(300):
        await flood_socket.send_json_to({"type": "ping", "ref": n})
    received = await events_for(flood_socket, 5)

    pongs = [e for e in received if e["type"] == "pong"]
    assert 1 <= len(pongs) <= 10
    assert {e["code"] for e in received if e["type"] == "error"} == {"rate_limited"}
    assert received[-1] == {"type": "websocket.close", "code": 4429}
    await bystander_socket.send_json_to({"type": "ping", "ref": "still there"})
    assert (await next_event(bystander_socket, "pong"))["ref"] == "still there"
    await bystander_socket.disconnect()


@pytest.mark.django_db
def test_visitors_are_throttled_per_address(settings):
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anon"].split("/")[0])
    client = APIClient()

    answers = [client.get("/api/spaces/").status_code for _ in range(limit + 1)]

    assert answers[:limit] == [200] * limit
    assert answers[-1] == 429
    refused = client.get("/api/spaces/")
    assert refused.json()["code"] == "throttled" and int(refused["Retry-After"]) > 0


@pytest.mark.django_db
def test_sign_ups_from_one_address_are_throttled_more_strictly(settings):
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth"].split("/")[0])
    client = APIClient()

    answers = [
        client.post(
            "/api/auth/signup/",
            {"username": f"throwaway{n}", "password": "a-long-password-1234", "email": f"t{n}@example.com"},
            format="json",
        ).status_code
        for n in range(limit + 1)
    ]

    assert answers[:limit] == [201] * limit
    assert answers[-1] == 429
