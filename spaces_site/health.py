"""Health endpoints for supervisors and load balancers (docs/operations.md).

`/healthz`: the process is up and serving (touches nothing else).
`/readyz`: the database and Redis answer; 503 otherwise, so a balancer stops
sending traffic. Media workers have their own, `/healthz/media/` (`media.health`).
"""

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from spaces_site.outages import OUTAGE_ERRORS


@never_cache
@require_safe
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request):
    checks = {"database": _check(_database), "redis": _check(_redis) if settings.REDIS_URL else "not used"}
    ready = all(value in ("ok", "not used") for value in checks.values())
    body = {"status": "ready" if ready else "unavailable", **checks}
    response = JsonResponse(body, status=200 if ready else 503)
    if not ready:
        response["Retry-After"] = str(settings.SPACES_RETRY_AFTER_S)
    return response


def _check(probe) -> str:
    try:
        probe()
    except OUTAGE_ERRORS as error:
        return f"unavailable: {type(error).__name__}"
    return "ok"


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    cache.get("readyz")  # a round trip through the same pool as the site's cache
