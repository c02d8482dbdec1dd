"""The one way ticketing talks to Stripe: the official `stripe` library, configured from settings.

`STRIPE_API_BASE` is Stripe's address in production; tests and the benchmark
point it at our local stand-in (`ticketing.stripe_standin`), which speaks the
same endpoints. Services call `stripe_client().v1....` (in a task, a command or
the admin) or `await stripe_client_async().v1...._async(...)` (while a request
waits, on the event loop: `spaces_site.outside`), so the calls read exactly as
Stripe documents them.

Every call, of either kind, has a deadline and passes one breaker:

- each attempt gives up after `STRIPE_TIMEOUT_S` and is retried
  `STRIPE_MAX_NETWORK_RETRIES` times (stripe-python retries timeouts and
  connection errors, with the same idempotency key); a call made while a
  request waits gives up after `STRIPE_REQUEST_BUDGET_S` in all, retries
  included;
- after `STRIPE_BREAKER_FAILURES` failed calls in a row (no answer, or a 5xx or
  429 from Stripe) the breaker opens: for `STRIPE_BREAKER_COOLDOWN_S` nothing is
  sent to Stripe and every call fails at once with `StripeResting`, an
  `APIConnectionError` that every caller already treats as "try again later";
  then one call is let through, and its answer closes the breaker or opens it
  again. The breaker is pybreaker's, one per process, shared by the event loop
  and the threads (its state changes under its own lock, which is never held
  across a call).
"""

import asyncio
import atexit
import contextlib
import functools
import logging
import math
import ssl
import time
import weakref
from collections.abc import Callable
from typing import NamedTuple, TypeVar

import aiohttp
import pybreaker
import requests
import stripe
from django.conf import settings
from prometheus_client import Gauge

from ticketing.errors import PaymentsUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

# Errors worth trying again later: Stripe or the network had a problem, not our request.
TRANSIENT_ERRORS = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)

# What a payment page says when Stripe failed: a seat held for it was given back, so nothing is lost.
RETRY_AFTER_S = 5


class StripeResting(stripe.APIConnectionError):
    """Stripe was not called: the breaker is open after repeated failures."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Stripe failed repeatedly; not calling it for another {retry_after} s.")
        self.retry_after = retry_after


class _StripeFailed(Exception):
    """Stripe answered 5xx or 429: counted by the breaker, then the answer goes back to the library."""

    def __init__(self, answer: tuple) -> None:
        super().__init__(f"Stripe answered {answer[1]}")
        self.answer = answer


class _Opened(pybreaker.CircuitBreakerListener):
    """Remembers when the breaker opened (for Retry-After) and says so in the log."""

    opened_at = 0.0

    def state_change(self, cb, old_state, new_state) -> None:
        if new_state.name == pybreaker.STATE_OPEN:
            self.opened_at = time.time()
            log.error(
                "Stripe failed %s times in a row: payments answer 503 for the next %s s", cb.fail_max, cb.reset_timeout
            )
        elif new_state.name == pybreaker.STATE_CLOSED and old_state is not None and old_state.name != new_state.name:
            log.warning("Stripe answers again: payments are back")


def _not_an_outage(error: BaseException) -> bool:
    # Only Stripe's silence or its own failures count; a refused request (4xx) is our matter.
    return not isinstance(error, _StripeFailed | stripe.APIConnectionError | TimeoutError)


_opened = _Opened()
breaker = pybreaker.CircuitBreaker(name="stripe", exclude=[_not_an_outage], listeners=[_opened])


Gauge(
    "spaces_stripe_breaker_open", "1 while this process doesn't call Stripe after repeated failures, else 0."
).set_function(lambda: 1 if resting_for() else 0)


def _breaker() -> pybreaker.CircuitBreaker:
    # Read on every call, so a change of settings (a test's override) takes effect at once.
    breaker.fail_max = settings.STRIPE_BREAKER_FAILURES
    breaker.reset_timeout = settings.STRIPE_BREAKER_COOLDOWN_S
    return breaker


def resting_for() -> int:
    """Seconds until the breaker lets a call through again; 0 when it is closed or cooled down."""
    if breaker.current_state != pybreaker.STATE_OPEN:
        return 0
    left = settings.STRIPE_BREAKER_COOLDOWN_S - (time.time() - _opened.opened_at)
    return max(0, math.ceil(left))


def payments_check() -> None:
    """Raise `PaymentsUnavailable` (503) when payments can't work now: no key, or Stripe resting.

    A buyer is told at once, before a seat is held for them.
    """
    if not settings.STRIPE_SECRET_KEY:
        raise PaymentsUnavailable("Payments are not set up on this site yet (no Stripe key).")
    if wait := resting_for():
        raise payments_unavailable(StripeResting(wait))


def payments_unavailable(error: stripe.StripeError, detail: str | None = None) -> PaymentsUnavailable:
    """What a person is told when a Stripe call failed, with when to try again."""
    return PaymentsUnavailable(
        detail
        or "Our payment provider isn't answering right now, so nothing was charged and no seat is held. "
        "Please try again in a moment.",
        retry_after=getattr(error, "retry_after", None) or RETRY_AFTER_S,
    )


def _guarded(send: Callable[[], tuple]) -> tuple:
    try:
        with _breaker().calling():
            answer = send()
            if answer[1] >= 500 or answer[1] == 429:
                raise _StripeFailed(answer)
            return answer
    except _StripeFailed as failed:
        return failed.answer
    except pybreaker.CircuitBreakerError as error:
        raise StripeResting(resting_for() or settings.STRIPE_BREAKER_COOLDOWN_S) from error


class _RequestsClient(stripe.RequestsClient):
    """Blocking calls (tasks, commands, the admin), through the breaker."""

    def request_with_retries(self, *args, **kwargs):
        return _guarded(lambda: super(_RequestsClient, self).request_with_retries(*args, **kwargs))


class _AIOHTTPClient(stripe.AIOHTTPClient):
    """Calls awaited on the event loop, through the breaker and within a request's budget.

    aiohttp rather than stripe-python's default HTTPX: a Checkout Session
    created against the stand-in cost the loop 2.5-3.1 ms of CPU with HTTPX and
    1.0 ms with aiohttp (docs/benchmarks.md "Issue 23, third session"), the
    loop every request of a web process shares.
    """

    async def request_with_retries_async(self, *args, **kwargs):
        budget = settings.STRIPE_REQUEST_BUDGET_S
        try:
            with _breaker().calling():
                async with asyncio.timeout(budget):
                    answer = await super().request_with_retries_async(*args, **kwargs)
                if answer[1] >= 500 or answer[1] == 429:
                    raise _StripeFailed(answer)
                return answer
        except _StripeFailed as failed:
            return failed.answer
        except TimeoutError as error:
            raise stripe.APIConnectionError(f"Stripe did not answer within {budget} s.") from error
        except pybreaker.CircuitBreakerError as error:
            raise StripeResting(resting_for() or settings.STRIPE_BREAKER_COOLDOWN_S) from error


def stripe_client() -> stripe.StripeClient:
    """A blocking client for the configured account and address; `PaymentsUnavailable` (503) when none is set."""
    if not settings.STRIPE_SECRET_KEY:
        raise PaymentsUnavailable("Payments are not set up on this site yet (no Stripe key).")
    return _client(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_TIMEOUT_S,
        settings.STRIPE_MAX_NETWORK_RETRIES,
    )


# Connections to Stripe: kept open for reuse by the blocking client (more can be open at once, each
# then closed after use); open at once at most, per event loop, for the async client.
HTTP_POOL_SIZE = 32


@functools.lru_cache(maxsize=8)
def _client(api_key: str, api_base: str, timeout: int, retries: int) -> stripe.StripeClient:
    # One client per configuration, shared by threads, with one HTTP session for all of them.
    # Left to itself the library makes a session per thread, and Django runs each request on a
    # thread of its own, so every call to Stripe would open a new connection (a TLS handshake
    # in production) and load the CA bundle again. The session's connection pool is thread-safe.
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=HTTP_POOL_SIZE)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        max_network_retries=retries,
        http_client=_RequestsClient(timeout=timeout, session=session),
    )


# An async client's connections belong to the event loop that opened them: one client per loop (daphne
# runs one, and `spaces_site.outside` one more for waits outside the server), dropped with its loop.
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, "_LoopClient"] = weakref.WeakKeyDictionary()
_closing: set = set()  # sessions being closed, kept until they are


class _LoopClient(NamedTuple):
    settings: tuple
    client: stripe.StripeClient
    session: aiohttp.ClientSession


def stripe_client_async() -> stripe.StripeClient:
    """The client of this event loop, whose `*_async` methods wait on the loop (no thread).

    A change of settings (a test's) makes a new one and closes the one before."""
    if not settings.STRIPE_SECRET_KEY:
        raise PaymentsUnavailable("Payments are not set up on this site yet (no Stripe key).")
    key = (
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_TIMEOUT_S,
        settings.STRIPE_MAX_NETWORK_RETRIES,
    )
    loop = asyncio.get_running_loop()
    made = _async_clients.get(loop)
    if made is not None and made.settings == key:
        return made.client
    if made is not None:
        closing = asyncio.ensure_future(made.session.close())
        _closing.add(closing)
        closing.add_done_callback(_closing.discard)
    api_key, api_base, timeout, retries = key
    # Our own session: its pool has our size, and it is made here rather than by the first call.
    tls = ssl.create_default_context(cafile=stripe.ca_bundle_path)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls, limit=HTTP_POOL_SIZE))
    client = stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base},
        max_network_retries=retries,
        http_client=_AIOHTTPClient(timeout=timeout, session=session),
    )
    _async_clients[loop] = _LoopClient(key, client, session)
    return client


async def async_client_close() -> None:
    """Close this loop's client, if it has one: for a loop that ends (a test's)."""
    made = _async_clients.pop(asyncio.get_running_loop(), None)
    if made is not None:
        await made.session.close()


@atexit.register
def _close_at_exit() -> None:
    # The loop `spaces_site.outside` keeps for waits outside the server runs on until the process ends:
    # its client's connections are closed before, rather than complained about after.
    for loop, made in list(_async_clients.items()):
        if loop.is_running() and not loop.is_closed():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(made.session.close(), loop).result(timeout=2)


def warm_up() -> None:
    """Make this event loop's async client, its connection pool and TLS context, and import what its first
    call would, before the first checkout: in a rush that checkout paid for them, about 100 ms holding
    the loop (py-spy, docs/benchmarks.md "Issue 23"). Run as the server starts (`ticketing.apps`)."""
    if not settings.STRIPE_SECRET_KEY:
        return
    stripe_client_async()
    stripe.checkout.Session  # noqa: B018 - stripe imports an object's class when it first answers one


def is_transient(error: Exception) -> bool:
    return isinstance(error, TRANSIENT_ERRORS)


def metadata_of(stripe_object) -> dict:
    """A Stripe object's metadata as a plain dict (empty when it has none)."""
    metadata = getattr(stripe_object, "metadata", None)
    return metadata.to_dict() if metadata else {}
