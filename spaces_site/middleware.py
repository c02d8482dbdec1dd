"""Pages and the API during an outage: 503 with `Retry-After`, never a 500 traceback.

A view (or the template it renders) that meets an outage of the database or
Redis (`spaces_site.outages`) is answered 503 with `Retry-After:
SPACES_RETRY_AFTER_S`: the API's usual `{"code": "unavailable", "detail"}`
body, or a short page that reloads itself. The outage is logged once, not
once per request.
"""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render

from spaces_site.outages import UNAVAILABLE, OutageLog, is_outage

DETAIL = "The service is briefly unavailable; try again in a moment."
_outage = OutageLog("database or Redis (HTTP)")


def unavailable_response(request):
    if request.path.startswith("/api/"):
        response = JsonResponse({"code": UNAVAILABLE, "detail": DETAIL}, status=503)
    else:
        response = render(
            request, "503.html", {"detail": DETAIL, "retry_after": settings.SPACES_RETRY_AFTER_S}, status=503
        )
    response["Retry-After"] = str(settings.SPACES_RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response


class OutageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code < 500:
            _outage.succeeded()
        return response

    def process_exception(self, request, exception):
        if not is_outage(exception):
            return None
        _outage.failed(exception)
        return unavailable_response(request)


class SyncChainMiddleware:
    """Last in `MIDDLEWARE`, and sync only, so that under Django's own ASGI handler every middleware
    above runs in sync mode.

    The site's handler (`spaces_site.handler.SiteHandler`) builds the chain in
    sync mode anyway and enters it once. Django's `ASGIHandler` (its
    `AsyncClient` in tests) builds it in async mode, where a middleware that
    can go either way runs each hook through `sync_to_async`; this keeps that
    chain in one thread too. Without it, a test through `AsyncClient` left
    asgiref's thread handling so that a later test's websocket teardown hung.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)
