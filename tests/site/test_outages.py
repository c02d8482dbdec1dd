"""An outage of the database or Redis on the embedded defaults: 503s, `unavailable` events, health endpoints."""

import pytest
import redis.exceptions
from django.db import OperationalError

from rooms import commands, selectors
from rooms.consumers import SpaceConsumer
from spaces_site import health
from spaces_site.sockets import CLOSE_TRY_AGAIN_LATER
from tests.factories import UserFactory
from tests.rooms.scene import make_space
from tests.rooms.ws import connect, events_for, next_event

DOWN = OperationalError('connection to server at "127.0.0.1", port 5432 failed: Connection refused')


def fail(*args, **kwargs):
    raise DOWN


@pytest.mark.django_db
def test_the_api_answers_503_with_retry_after_and_its_error_body(api, monkeypatch, settings):
    # given: the database stops answering
    monkeypatch.setattr(selectors, "spaces_search", fail)

    # when
    response = api.get("/api/spaces/")

    # then
    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.SPACES_RETRY_AFTER_S)
    assert response.json() == {
        "code": "unavailable",
        "detail": "The service is briefly unavailable; try again in a moment.",
    }


@pytest.mark.django_db
def test_a_page_answers_a_short_503_page_that_retries_by_itself(client, monkeypatch, settings):
    monkeypatch.setattr(selectors, "live_spaces", fail)

    response = client.get("/")

    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.SPACES_RETRY_AFTER_S)
    assert b"Back in a moment" in response.content
    assert f'http-equiv="refresh" content="{settings.SPACES_RETRY_AFTER_S}"'.encode() in response.content


@pytest.mark.django_db
def test_redis_errors_are_an_outage_too(api, monkeypatch):
    monkeypatch.setattr(
        selectors, "spaces_search", lambda **kw: (_ for _ in ()).throw(redis.exceptions.ConnectionError())
    )

    assert api.get("/api/spaces/").status_code == 503


@pytest.mark.django_db
def test_other_errors_are_not_dressed_up_as_outages(api, monkeypatch):
    monkeypatch.setattr(selectors, "spaces_search", lambda **kw: 1 / 0)
    api.raise_request_exception = True

    with pytest.raises(ZeroDivisionError):
        api.get("/api/spaces/")


@pytest.mark.django_db
def test_healthz_touches_nothing(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.django_db
def test_readyz_checks_the_database_and_redis(client, settings, monkeypatch):
    ready = client.get("/readyz")
    monkeypatch.setattr(health, "_database", fail)
    unready = client.get("/readyz")

    expected_redis = "ok" if settings.REDIS_URL else "not used"
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", "database": "ok", "redis": expected_redis})
    assert unready.status_code == 503 and unready["Retry-After"] == str(settings.SPACES_RETRY_AFTER_S)
    assert unready.json()["database"] == "unavailable: OperationalError"


def test_media_health_with_the_worker_in_process(client, settings):
    settings.SPACES_MEDIA_IN_PROCESS = True

    assert client.get("/healthz/media/").json() == {"status": "ok", "workers": "in process"}


@pytest.mark.django_db
def test_media_health_names_a_silent_worker(client, settings):
    settings.SPACES_MEDIA_IN_PROCESS = False
    settings.SPACES_MEDIA_WORKERS = 2

    response = client.get("/healthz/media/")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "workers": {"0": "silent", "1": "silent"}}


@pytest.mark.django_db(transaction=True)
async def test_a_command_that_meets_an_outage_is_answered_unavailable_and_the_socket_stays(monkeypatch):
    # given: a listener connected to a live space
    space = await _db(make_space)()
    user = await _db(UserFactory)()
    socket, snapshot = await connect(space.pk, user)
    assert snapshot["type"] == "snapshot"

    # when: the database fails under a command
    monkeypatch.setattr(commands, "execute", fail)
    await socket.send_json_to({"type": "request_speak", "ref": 7})

    # then: the command is answered `unavailable` with its ref, and the socket still answers pings
    error = await next_event(socket, "error")
    assert error == {
        "type": "error",
        "code": "unavailable",
        "detail": "The service is briefly unavailable; try again in a moment.",
        "retry_after": 2,
        "ref": 7,
    }
    await socket.send_json_to({"type": "ping"})
    assert (await next_event(socket, "pong"))["type"] == "pong"
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_connect_that_meets_an_outage_is_told_and_closed_4503(monkeypatch):
    space = await _db(make_space)()
    user = await _db(UserFactory)()
    monkeypatch.setattr(SpaceConsumer, "_join", _async_fail)

    socket, first = await connect(space.pk, user)
    rest = await events_for(socket, 2)

    assert first["code"] == "unavailable"
    assert rest == [{"type": "websocket.close", "code": CLOSE_TRY_AGAIN_LATER}]


@pytest.mark.django_db(transaction=True)
async def test_a_handshake_whose_session_cannot_load_is_told_and_closed_4503_not_refused(monkeypatch):
    import channels.auth

    space = await _db(make_space)()
    user = await _db(UserFactory)()

    async def session_down(scope):
        raise DOWN

    monkeypatch.setattr(channels.auth, "get_user", session_down)
    socket, first = await connect(space.pk, user)

    assert first["code"] == "unavailable"
    assert (await events_for(socket, 2))[-1]["code"] == CLOSE_TRY_AGAIN_LATER


async def _async_fail(*args, **kwargs):
    raise DOWN


def _db(function):
    from channels.db import database_sync_to_async

    return database_sync_to_async(function)


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_an_outage_is_a_503_and_static_files_and_pages_are_served(monkeypatch, settings):
    # As daphne runs the site: Django's ASGI handler, the middleware chain async around the view.
    from django.test import AsyncClient

    monkeypatch.setattr(selectors, "spaces_search", fail)
    client = AsyncClient()

    down = await client.get("/api/spaces/")
    static = await client.get(f"{settings.STATIC_URL}css/site.css")
    page = await client.get("/healthz")

    assert down.status_code == 503
    assert down["Retry-After"] == str(settings.SPACES_RETRY_AFTER_S)
    assert static.status_code == 200
    assert page.status_code == 200
