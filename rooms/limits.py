"""How often one person may send commands to spaces, whichever way they come (websocket or REST).

Each person has a window of `SPACES_COMMAND_BURST / SPACES_COMMAND_RATE`
seconds (2 s by default) in which `SPACES_COMMAND_BURST` commands (20) go
through: the sustained rate, in bursts of the burst. The count lives in the
cache, so every web process and both paths share it (Redis in production,
the process's memory on the one-command default).
"""

import time

from django.conf import settings
from django.core.cache import cache

from rooms.errors import RateLimited


def command_take(*, user_id: int) -> None:
    """Count one command of this person; `RateLimited` (429) past the burst in this window."""
    burst = settings.SPACES_COMMAND_BURST
    window_s = max(1, round(burst / settings.SPACES_COMMAND_RATE))
    window = int(time.time() // window_s)
    key = f"rooms:commands:{user_id}:{window}"
    if cache.add(key, 1, timeout=window_s + 1):
        return
    try:
        count = cache.incr(key)
    except ValueError:  # the window's key expired between the two calls
        cache.add(key, 1, timeout=window_s + 1)
        return
    if count > burst:
        retry_after = max(1, (window + 1) * window_s - int(time.time()))
        raise RateLimited("Slow down: too many commands.", retry_after=retry_after)
