"""ASGI entry point: Django for HTTP, Channels for websockets, both under daphne."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_site.settings")

# Allocations before a young collection, young collections before a middle one, middle ones before
# a full pass (CPython's defaults: 700, 10, 10).
GC_YOUNG, GC_MIDDLE, GC_FULL = 10_000, 10, 100

# Django must be set up before anything imports models (the consumers do).
django.setup(set_prefix=False)

from spaces_site.handler import SiteHandler  # noqa: E402

# Django's handler, with the chain and the view in the request's thread, entered once, and a view that
# waits on an outside service answered on the event loop (spaces_site/handler.py).
django_asgi_app = SiteHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.urls import get_resolver  # noqa: E402

from rooms import presence_loop  # noqa: E402
from scheduling import ticker  # noqa: E402
from spaces_site import daphne_backpressure  # noqa: E402
from spaces_site.admission import Admission  # noqa: E402
from spaces_site.client_address import ClientAddress  # noqa: E402
from spaces_site.origins import SiteOriginValidator  # noqa: E402
from spaces_site.refusals import RememberedRefusals  # noqa: E402
from spaces_site.routing import websocket_urlpatterns  # noqa: E402
from spaces_site.sockets import OutageTolerantAuthMiddlewareStack  # noqa: E402

# A websocket client sending faster than the site reads is no longer read until the site catches up.
daphne_backpressure.install()

# Presence is swept from the server's start: a restarted process drops at once what it left behind.
presence_loop.start_with_the_server()

# Without a broker, the web process runs the scheduling due-work task itself (scheduling/ticker.py).
# The client's address is settled first, for pages and sockets alike: believed from the trusted
# proxies only (spaces_site/client_address.py), so every limit after it counts the same client.
application = ticker.install(
    ClientAddress(
        ProtocolTypeRouter(
            {
                "http": RememberedRefusals(Admission(django_asgi_app, settings.SPACES_WEB_CONCURRENCY)),
                "websocket": SiteOriginValidator(OutageTolerantAuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
            }
        ),
        trusted_proxies=settings.SPACES_TRUSTED_PROXIES,
    )
)

# The garbage collector's full passes stall the loop: with a thousand sockets open, one pass every
# few seconds held every event back by 300-500 ms (bench/room_events.py; docs/benchmarks.md). What
# is loaded by now (Django, the apps, the URL map) lives as long as the process, so it leaves the
# collector's view; and full passes come a hundred times more rarely (the young generations are
# still collected often, so short-lived cycles are freed as before).
get_resolver().url_patterns  # noqa: B018 - load the URL map now, not on the first request
gc.freeze()
gc.set_threshold(GC_YOUNG, GC_MIDDLE, GC_FULL)
