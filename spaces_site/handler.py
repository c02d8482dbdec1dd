"""The site's ASGI handler: Django's, with the middleware chain and the view in one hop to the request's thread,
and a view's `OutsideCall` answered on the event loop.

Django's `ASGIHandler` builds its chain in async mode: with our sync views
and sync-mode middleware, a request went from the event loop to its thread
for the chain, back to the loop for Django's async view dispatch
(`_get_response_async`), and to the thread again for the view: four thread
switches and an `AsyncToSync` per request, about a fifth of daphne's CPU in
a ticket rush (py-spy, docs/benchmarks.md "Issue 23"). Here the chain is
built in sync mode, as under WSGI, and entered once through
`sync_to_async`, in the request's own thread (Django's per-request
`ThreadSensitiveContext`, so its database connection stays with it).

A view that waits on an outside service returns `OutsideCall`
(`spaces_site/outside.py`): it is answered here, after the chain, on the
event loop.
"""

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler

from spaces_site.outside import ANSWERED_OUTSIDE, OutsideCall


class SiteHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        self._middleware_chain = sync_to_async(self._middleware_chain, thread_sensitive=True)

    async def __call__(self, scope, receive, send):
        return await super().__call__({**scope, ANSWERED_OUTSIDE: True}, receive, send)

    async def run_get_response(self, request):
        response = await super().run_get_response(request)
        if isinstance(response, OutsideCall):
            response = await response.answer(request)
            response._handler_class = self.__class__
        return response
