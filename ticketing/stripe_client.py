"""The one way ticketing talks to Stripe: the official `stripe` library, configured from settings.

`STRIPE_API_BASE` is Stripe's address in production; tests and the benchmark
point it at our local stand-in (`ticketing.stripe_standin`), which speaks the
same endpoints. Services call `stripe_client().v1....` directly, so the calls
read exactly as Stripe documents them.
"""

import functools

import requests
import stripe
from django.conf import settings

from ticketing.errors import PaymentsUnavailable

# Errors worth trying again later: Stripe or the network had a problem, not our request.
TRANSIENT_ERRORS = (stripe.APIConnectionError, stripe.APIError, stripe.RateLimitError)


def stripe_client() -> stripe.StripeClient:
    """A client for the configured account and address; `PaymentsUnavailable` (503) when none is set."""
    if not settings.STRIPE_SECRET_KEY:
        raise PaymentsUnavailable("Payments are not set up on this site yet (no Stripe key).")
    return _client(
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_API_BASE,
        settings.STRIPE_TIMEOUT_S,
        settings.STRIPE_MAX_NETWORK_RETRIES,
    )


# Connections to Stripe kept open for reuse; more can be open at once (each then closed after use).
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
        http_client=stripe.RequestsClient(timeout=timeout, session=session),
    )


def is_transient(error: Exception) -> bool:
    return isinstance(error, TRANSIENT_ERRORS)


def metadata_of(stripe_object) -> dict:
    """A Stripe object's metadata as a plain dict (empty when it has none)."""
    metadata = getattr(stripe_object, "metadata", None)
    return metadata.to_dict() if metadata else {}
