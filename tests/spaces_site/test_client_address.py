"""The client's address (spaces_site/client_address.py): X-Forwarded-For believed only from trusted
proxies, read from the right; the settings that list them; and who counts as this machine."""

import asyncio
import io

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.asgi import ASGIRequest
from django.test import RequestFactory

from spaces_site.client_address import ClientAddress, from_this_machine
from spaces_site.settings import env_networks

PROXY = "10.0.0.2"


def resolved(
    peer: str | None,
    *,
    forwarded_for: str | list[str] | None = None,
    trusted: list[str] | None = None,
    kind: str = "http",
    proto: str | None = None,
) -> dict:
    """The scope the application behind `ClientAddress` gets for a request from `peer`."""
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    lines = [forwarded_for] if isinstance(forwarded_for, str) else (forwarded_for or [])
    headers = [(b"host", b"spaces.example")] + [(b"x-forwarded-for", line.encode()) for line in lines]
    if proto:
        headers.append((b"x-forwarded-proto", proto.encode()))
    scope = {
        "type": kind,
        "scheme": "ws" if kind == "websocket" else "http",
        "path": "/",
        "headers": headers,
        "client": (peer, 51000) if peer else None,
    }
    middleware = ClientAddress(app, trusted_proxies=[PROXY] if trusted is None else trusted)
    asyncio.run(middleware(scope, None, None))
    return seen


def client(peer, **kwargs) -> str | None:
    scope = resolved(peer, **kwargs)
    return scope["client"][0] if scope["client"] else None


def test_from_a_trusted_proxy_the_client_is_the_rightmost_address_it_did_not_add():
    # the client wrote the left entries itself; the proxy appended what it saw
    assert client(PROXY, forwarded_for="127.0.0.1, 198.51.100.1, 203.0.113.9") == "203.0.113.9"


def test_from_an_untrusted_peer_the_header_is_ignored():
    scope = resolved("203.0.113.9", forwarded_for="198.51.100.1")

    assert scope["client"] == ("203.0.113.9", 51000)


def test_with_no_trusted_proxy_no_header_is_believed_even_from_the_proxy():
    assert client(PROXY, forwarded_for="198.51.100.1", trusted=[]) == PROXY


def test_a_chain_of_trusted_proxies_is_walked_past_to_the_first_untrusted_address():
    # a CDN edge (10.1.0.7) in front of the balancer (10.0.0.3) in front of daphne's peer
    chain = "192.0.2.66, 203.0.113.9, 10.1.0.7, 10.0.0.3"

    assert client("10.0.0.2", forwarded_for=chain, trusted=["10.0.0.0/24", "10.1.0.0/16"]) == "203.0.113.9"


def test_a_peer_inside_a_trusted_network_is_trusted_and_one_outside_it_is_not():
    trusted = ["10.0.0.0/24"]

    assert client("10.0.0.200", forwarded_for="203.0.113.9", trusted=trusted) == "203.0.113.9"
    assert client("10.0.1.1", forwarded_for="203.0.113.9", trusted=trusted) == "10.0.1.1"


def test_when_every_entry_is_trusted_the_client_is_the_leftmost_one():
    # a machine inside the trusted network going through the proxy: it is the client
    assert client("10.0.0.2", forwarded_for="10.0.0.9, 10.0.0.3", trusted=["10.0.0.0/24"]) == "10.0.0.9"


def test_several_header_lines_are_read_as_one_list_in_order():
    assert client(PROXY, forwarded_for=["198.51.100.1", "203.0.113.9"]) == "203.0.113.9"


def test_ipv6_clients_and_proxies_and_ports_are_read():
    trusted = ["fd00::/8"]

    assert client("fd00::2", forwarded_for="198.51.100.1, 2001:DB8::1", trusted=trusted) == "2001:db8::1"
    assert client("fd00::2", forwarded_for="[2001:db8::7]:4711", trusted=trusted) == "2001:db8::7"
    assert client(PROXY, forwarded_for="203.0.113.9:4711") == "203.0.113.9"


@pytest.mark.parametrize("entry", ["not-an-address", "203.0.113.999", "unknown", "[2001:db8::1", "_hidden"])
def test_an_entry_that_is_not_an_address_leaves_the_request_as_the_proxys(entry):
    assert client(PROXY, forwarded_for=f"198.51.100.1, {entry}") == PROXY


def test_an_empty_header_leaves_the_peer():
    assert client(PROXY, forwarded_for="") == PROXY


def test_websockets_get_the_same_address():
    assert client(PROXY, forwarded_for="192.0.2.66, 203.0.113.9", kind="websocket") == "203.0.113.9"
    assert client("203.0.113.9", forwarded_for="192.0.2.66", kind="websocket") == "203.0.113.9"


def test_the_scheme_is_believed_from_a_trusted_proxy_only():
    assert resolved(PROXY, forwarded_for="203.0.113.9", proto="https")["scheme"] == "https"
    assert resolved(PROXY, forwarded_for="203.0.113.9", proto="https", kind="websocket")["scheme"] == "wss"
    assert resolved("203.0.113.9", proto="https")["scheme"] == "http"


def is_secure(peer: str, *, proto: str, trusted: list[str] | None = None) -> bool:
    """Whether Django, with the site's settings, takes a request from `peer` claiming `proto` for HTTPS."""
    scope = resolved(peer, forwarded_for="203.0.113.9", proto=proto, trusted=trusted)
    return ASGIRequest({**scope, "method": "GET", "query_string": b""}, io.BytesIO()).is_secure()


def test_a_client_cannot_make_its_plain_request_secure_by_saying_so():
    # given: the production settings (DEBUG off), the test settings' too
    assert not settings.DEBUG

    # when / then: X-Forwarded-Proto from a peer that is no trusted proxy, or with none trusted, is not
    # believed; from the trusted proxy it is
    assert is_secure("203.0.113.66", proto="https") is False
    assert is_secure(PROXY, proto="https", trusted=[]) is False
    assert is_secure(PROXY, proto="https") is True
    assert is_secure(PROXY, proto="http") is False


def test_a_scope_without_a_client_or_of_another_kind_passes_untouched():
    assert resolved(None, forwarded_for="203.0.113.9")["client"] is None

    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    asyncio.run(ClientAddress(app, trusted_proxies=[PROXY])({"type": "lifespan"}, None, None))
    assert seen == {"type": "lifespan"}


def test_trusted_proxies_are_read_as_addresses_and_networks(monkeypatch):
    monkeypatch.setenv("SPACES_TRUSTED_PROXIES", " 10.0.0.5, 10.0.0.9/24 ,fd00::/8, ::1/128,")

    assert env_networks("SPACES_TRUSTED_PROXIES") == ["10.0.0.5", "10.0.0.0/24", "fd00::/8", "::1"]


def test_no_trusted_proxies_by_default(monkeypatch):
    monkeypatch.delenv("SPACES_TRUSTED_PROXIES", raising=False)

    assert env_networks("SPACES_TRUSTED_PROXIES") == []


@pytest.mark.parametrize("value", ["*", "0.0.0.0/0", "::/0", "nginx", "10.0.0.300", "10.0.0.0/33"])
def test_a_trusted_proxy_that_is_no_address_or_trusts_everyone_stops_the_site(monkeypatch, value):
    monkeypatch.setenv("SPACES_TRUSTED_PROXIES", value)

    with pytest.raises(ImproperlyConfigured, match="SPACES_TRUSTED_PROXIES"):
        env_networks("SPACES_TRUSTED_PROXIES")


@pytest.mark.parametrize(
    ("meta", "here"),
    [
        ({"REMOTE_ADDR": "127.0.0.1"}, True),
        ({"REMOTE_ADDR": "::1"}, True),
        ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1"}, False),
        ({"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=127.0.0.1"}, False),
        ({"REMOTE_ADDR": "127.0.0.1", "HTTP_X_REAL_IP": "127.0.0.1"}, False),
        ({"REMOTE_ADDR": "203.0.113.9"}, False),
    ],
)
def test_this_machine_is_a_loopback_peer_that_no_proxy_forwarded(meta, here):
    assert from_this_machine(RequestFactory().get("/metrics", **meta)) is here
