"""Which pages may open the site's websockets: the Origin check, scheme, host and port."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.models import User
from spaces_site.asgi import application
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

# What channels answers a refused handshake with: closed before it was accepted, code 1000 (daphne
# turns it into HTTP 403). `/ws/me/` itself would close an anonymous socket with 4401, and it lets a
# signed-in one in: so 1000 here means the Origin check said no.
REFUSED = (False, 1000)


@pytest.fixture
def public_site(settings):
    """The site as production runs it, behind TLS at one address."""
    settings.SITE_URL = "https://spaces.example"
    settings.ALLOWED_HOSTS = ["spaces.example"]
    settings.CSRF_TRUSTED_ORIGINS = []


@pytest.fixture
def local_site(settings):
    """The site as `make run` and the tests' live servers run it: on this machine, over http."""
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
    settings.CSRF_TRUSTED_ORIGINS = []


@pytest.fixture(autouse=True)
def ada():
    return UserFactory(username="ada", display_name="Ada")


def signed_in_headers(origin: str | None) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(User.objects.get(username="ada"))
    headers = [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return headers


async def open_account_socket(origin: str | None) -> tuple[WebsocketCommunicator, tuple]:
    """Ada, signed in, opens `/ws/me/` from a page of `origin` (no Origin header when None)."""
    headers = await database_sync_to_async(signed_in_headers)(origin)
    socket = WebsocketCommunicator(application, "/ws/me/", headers=headers)
    return socket, await socket.connect(timeout=5)


async def assert_opens(origin: str) -> None:
    socket, handshake = await open_account_socket(origin)

    assert handshake == (True, None)
    assert await socket.receive_json_from(timeout=5) == {"type": "hello", "user": {"username": "ada", "name": "Ada"}}
    await socket.disconnect()


@pytest.mark.usefixtures("public_site")
async def test_the_sites_own_origin_opens_a_socket():
    await assert_opens("https://spaces.example")
    await assert_opens("https://spaces.example:443")


@pytest.mark.usefixtures("public_site")
@pytest.mark.parametrize(
    "origin",
    [
        "http://spaces.example",  # the right host, the wrong scheme
        "https://spaces.example:8443",  # the right host, the wrong port
        "http://spaces.example:443",  # the right port, the wrong scheme
        "https://evil.example",  # a foreign host
        "https://spaces.example.evil.example",  # a foreign host that starts like ours
        "null",  # a sandboxed frame or a file: page
        "https://spaces.example:99999",  # no such port
        "https://spaces.example:https",  # nor such
    ],
)
async def test_a_page_of_another_origin_is_refused(origin):
    _, handshake = await open_account_socket(origin)

    assert handshake == REFUSED


@pytest.mark.usefixtures("public_site")
async def test_a_socket_without_origin_is_refused():
    # given a non-browser client that sends no Origin header
    # when it opens a socket with a valid session
    _, handshake = await open_account_socket(None)

    # then it is refused: such a client must send the site's origin, as a browser does
    assert handshake == REFUSED


async def test_origins_trusted_for_forms_open_sockets_too(settings, public_site):
    # given the site also serves a second address and its subdomains
    settings.CSRF_TRUSTED_ORIGINS = ["https://www.spaces.example", "https://*.rooms.example"]

    # then their pages open sockets, with the scheme and port named there only
    await assert_opens("https://www.spaces.example")
    await assert_opens("https://live.rooms.example")
    await assert_opens("https://rooms.example")
    assert (await open_account_socket("http://www.spaces.example"))[1] == REFUSED
    assert (await open_account_socket("http://live.rooms.example"))[1] == REFUSED
    assert (await open_account_socket("https://live.rooms.example:8443"))[1] == REFUSED


@pytest.mark.usefixtures("local_site")
async def test_a_site_run_locally_accepts_its_pages_on_any_local_port():
    # `make run` serves on 8000; the tests' live servers on a port chosen when they start
    await assert_opens("http://127.0.0.1:8000")
    await assert_opens("http://localhost:54321")
    await assert_opens("http://[::1]:8000")


@pytest.mark.usefixtures("local_site")
@pytest.mark.parametrize("origin", ["https://127.0.0.1:8000", "http://evil.example:8000", "http://10.0.0.5:8000"])
async def test_a_site_run_locally_refuses_other_schemes_and_hosts(origin):
    _, handshake = await open_account_socket(origin)

    assert handshake == REFUSED


async def test_a_public_site_refuses_local_pages_even_with_localhost_allowed(settings, public_site):
    # given a production site that also answers health checks on localhost
    settings.ALLOWED_HOSTS = ["spaces.example", "localhost"]

    # when a page served on the visitor's own machine opens a socket
    _, handshake = await open_account_socket("http://localhost:8000")

    # then it is refused: only SITE_URL and CSRF_TRUSTED_ORIGINS are the site's pages
    assert handshake == REFUSED
