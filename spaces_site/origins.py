"""The websocket Origin check: which pages may open the site's sockets (docs/websocket.md, "Origins").

A browser lets any page open a websocket to any site, sending that site's cookies, and tells which
page asked only in the handshake's `Origin` header. The sockets sign people in by the session
cookie, so a socket is accepted only from the site's own pages, and an origin is scheme, host and
port together: channels' `AllowedHostsOriginValidator` compared the host alone, so a page of
`http://spaces.example:8080` passed for the site at `https://spaces.example`.
"""

from urllib.parse import SplitResult, urlsplit

from channels.security.websocket import OriginValidator
from django.conf import settings
from django.http.request import split_domain_port, validate_host

# This machine's own hosts, written as in ALLOWED_HOSTS.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def site_origins() -> list[str]:
    """The origins of the site's pages, as channels' patterns: SITE_URL's, then CSRF_TRUSTED_ORIGINS
    (whose `https://*.example.com` means example.com and its subdomains, channels' `.example.com`)."""
    site = urlsplit(settings.SITE_URL)
    trusted = [origin.replace("://*.", "://.", 1) for origin in settings.CSRF_TRUSTED_ORIGINS]
    return [f"{site.scheme}://{site.netloc}", *trusted]


def is_local_page(origin: SplitResult) -> bool:
    """Whether `origin` is a page of the site running on this machine, on whatever port.

    `make run`, the tests' live servers and the benchmarks serve the site on a loopback host
    (SITE_URL's default is `http://127.0.0.1:8000`), most of them on a port picked as they start,
    which no setting names. While SITE_URL is on a loopback host, a page with its scheme on any port
    of a loopback host in ALLOWED_HOSTS is the site's; once SITE_URL is public, none is.
    """
    site = urlsplit(settings.SITE_URL)
    site_host, _ = split_domain_port(site.netloc)
    host, _ = split_domain_port(origin.netloc)
    return (
        site_host in LOOPBACK_HOSTS
        and origin.scheme == site.scheme
        and host in LOOPBACK_HOSTS
        and validate_host(host, settings.ALLOWED_HOSTS)
    )


class SiteOriginValidator(OriginValidator):
    """channels' `OriginValidator` (scheme, host and port must all match) over `site_origins()`.

    The origins are read from the settings at each handshake, a few string operations. A handshake
    without an `Origin` header is refused, as channels refuses it unless every origin is allowed:
    every browser sends one, so only a script or an app leaves it out, and such a client sends the
    site's origin itself (docs/websocket.md).
    """

    def __init__(self, application):
        super().__init__(application, allowed_origins=())  # unused: valid_origin reads the settings

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return False
        try:
            parsed_origin.port  # noqa: B018 - a port that isn't a number raises here, not deep in channels
        except ValueError:
            return False
        return is_local_page(parsed_origin) or any(
            self.match_allowed_origin(parsed_origin, pattern) for pattern in site_origins()
        )
