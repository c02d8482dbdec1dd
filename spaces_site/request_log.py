"""One console line per page or API request on the one-command default (`make run`).

daphne's access log lists every static file and avatar a page pulls in, a
dozen lines a page; a person running the site wants the requests they made:
method, path, status and time. It sits after WhiteNoise, so static files
never reach it, and leaves out generated avatars. On by default with DEBUG
(production keeps daphne's access log for its log pipeline).
"""

import logging
import time

from spaces_site.outside import OutsideCall

log = logging.getLogger("spaces_site.requests")

LEFT_OUT_SUFFIXES = ("/avatar.svg", "/favicon.ico")


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        if isinstance(response, OutsideCall):
            # Its real answer comes after the wait on the outside service: the line is written then.
            response.then = self._logged(request, started, response.then)
        elif not request.path.endswith(LEFT_OUT_SUFFIXES):
            self._write(request, started, response)
        return response

    def _logged(self, request, started: float, then):
        def then_logged(outcome):
            response = then(outcome)
            self._write(request, started, response)
            return response

        return then_logged

    @staticmethod
    def _write(request, started: float, response) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        log.info("%s %s %s %.0f ms", request.method, request.path[:200], response.status_code, elapsed_ms)
