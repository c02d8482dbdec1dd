"""`/healthz/media/`: is every separate media worker stamping its heartbeat?

200 when each of the `SPACES_MEDIA_WORKERS` workers stamped its heartbeat
within `SPACES_MEDIA_HEARTBEAT_TTL_S`, 503 naming the silent (or stopping)
ones otherwise (also when Redis, which holds the stamps, doesn't answer).
Placement routes around a silent worker (`media.placement`), so a 503 here
means less room, not lost audio. With the worker
inside the web process there is nothing separate to watch.
"""

from django.conf import settings
from django.core.cache import cache
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from media.signalling import heartbeat_key
from spaces_site.outages import REDIS_ERRORS


@never_cache
@require_safe
def media_workers(request):
    if settings.SPACES_MEDIA_IN_PROCESS:
        return JsonResponse({"status": "ok", "workers": "in process"})
    keys = {heartbeat_key(n): str(n) for n in range(settings.SPACES_MEDIA_WORKERS)}
    try:
        found = cache.get_many(list(keys))
    except REDIS_ERRORS as error:
        return JsonResponse({"status": "unavailable", "detail": f"Redis: {type(error).__name__}"}, status=503)
    workers = {index: _state(found.get(key)) for key, index in keys.items()}
    ok = all(state == "alive" for state in workers.values())
    return JsonResponse({"status": "ok" if ok else "unavailable", "workers": workers}, status=200 if ok else 503)


def _state(beat: dict | None) -> str:
    if beat is None:
        return "silent"
    return "stopping" if beat.get("stopped") else "alive"
