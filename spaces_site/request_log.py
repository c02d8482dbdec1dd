"""One console line per page or API request on the one-command default (`make run`).

daphne's access log lists every static file and avatar a page pulls in, a
dozen lines a page; a person running the site wants the requests they made:
method, path, status and time. It sits after WhiteNoise, so static files
never reach it, and leaves out generated avatars. On by default with DEBUG
(production keeps daphne's access log for its log pipeline).
"""

import logging
import time

log = logging.getLogger("spaces_site.requests")

LEFT_OUT_SUFFIXES = ("/avatar.svg", "/favicon.ico")


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        if not request.path.endswith(LEFT_OUT_SUFFIXES):
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.info("%s %s %s %.0f ms", request.method, request.path[:200], response.status_code, elapsed_ms)
        return response
