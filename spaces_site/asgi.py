"""ASGI entry point: Django for HTTP, Channels for websockets, both under daphne."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_site.settings")

# Django must be set up before anything imports models (the consumers do).
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from scheduling import ticker  # noqa: E402
from spaces_site.routing import websocket_urlpatterns  # noqa: E402
from spaces_site.sockets import OutageTolerantAuthMiddlewareStack  # noqa: E402

# Without a broker, the web process runs the scheduling due-work task itself (scheduling/ticker.py).
application = ticker.install(
    ProtocolTypeRouter(
        {
            "http": django_asgi_app,
            "websocket": AllowedHostsOriginValidator(
                OutageTolerantAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    )
)
