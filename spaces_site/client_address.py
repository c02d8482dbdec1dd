"""The client's address: one value, worked out once per request or socket, that every limit keys on.

A forwarding header is believed only from a proxy named in `SPACES_TRUSTED_PROXIES` (addresses or
networks; empty, the default, believes none). From such a peer, `X-Forwarded-For` is read from the
right, past the trusted proxies, and the first entry they didn't add is the client: the address the
nearest trusted proxy saw. What the client wrote itself is further left, and is never reached. From
any other peer the header is ignored and the peer is the client.

The result is the ASGI scope's `client`, set before anything else sees the request or the socket, so
Django's `REMOTE_ADDR` is it for pages and the API, and so is a consumer's `scope["client"]`: DRF's
throttles (`NUM_PROXIES = 0`: `REMOTE_ADDR` only), django-axes (`accounts.views.client_address`),
password resets, replay plays and the refusal memory (`spaces_site/refusals.py`) all count the same
client.

The reading is uvicorn's `ProxyHeadersMiddleware` (maintained, with trusted chains, networks, IPv6 and
`host:port` entries covered by its own tests). daphne's `--proxy-headers` is not used: it takes the
leftmost entry, which the client writes. Around uvicorn's reading, one rule of ours: an entry that is
not an IP address names no client, so the request stays the peer's (the trusted proxy's), and an
address is written one way (`2001:DB8::1` and `2001:db8::1` are one client).
"""

import ipaddress

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

# The peer as the socket gave it, kept in the scope beside the resolved `client`.
PEER = "spaces.peer"
LOOPBACK = ("127.0.0.1", "::1")
# Headers a proxy adds to say whom it forwards for (Django's `request.META` names).
FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


class ClientAddress:
    """ASGI middleware (HTTP and websockets) setting `scope["client"]` as the module docstring says.

    `trusted_proxies`: addresses (`10.0.0.5`) and networks (`10.0.0.0/8`), as `SPACES_TRUSTED_PROXIES`
    gives them (checked by the settings).
    """

    def __init__(self, app, *, trusted_proxies: list[str]) -> None:
        self.app = app
        self.trusted_proxies = list(trusted_proxies)
        self._forwarded = ProxyHeadersMiddleware(self._resolved, trusted_hosts=self.trusted_proxies)

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket") or not self.trusted_proxies:
            return await self.app(scope, receive, send)
        scope[PEER] = scope.get("client")
        return await self._forwarded(scope, receive, send)

    async def _resolved(self, scope, receive, send):
        client = scope.get("client")
        if client is not None and client is not scope[PEER]:
            try:
                scope["client"] = (str(ipaddress.ip_address(client[0])), client[1])
            except ValueError:
                scope["client"] = scope[PEER]
        return await self.app(scope, receive, send)


def from_this_machine(request) -> bool:
    """Whether a request came straight from this machine: a loopback address, and no proxy's header.

    A request a proxy relays (nginx on this machine, say) may be anyone's, whatever address it ends
    up with, so it is not from here; with no proxy trusted, a header the client wrote is no better.
    """
    return request.META.get("REMOTE_ADDR") in LOOPBACK and not any(h in request.META for h in FORWARDING_HEADERS)
