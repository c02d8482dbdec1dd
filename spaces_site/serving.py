"""Work a web process does when its server starts, before the first request."""

import sys
from collections.abc import Callable


def on_server_start(callback: Callable[[], None]) -> None:
    """Under daphne, call `callback` on its event loop as soon as the loop runs. Elsewhere (commands,
    Celery, tests' in-process servers) nothing happens: what it prepares is then made when first used."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is not None:
        reactor.callLater(0, callback)
