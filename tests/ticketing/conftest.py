import pytest

from ticketing.stripe_standin import StripeStandin


@pytest.fixture(scope="session")
def _standin_server():
    with StripeStandin() as standin:
        yield standin


@pytest.fixture
def stripe_standin(_standin_server, settings) -> StripeStandin:
    """Our Stripe stand-in on 127.0.0.1, emptied for this test, with the site's Stripe settings pointing at it."""
    _standin_server.reset()
    settings.STRIPE_SECRET_KEY = _standin_server.api_key
    settings.STRIPE_API_BASE = _standin_server.url
    settings.STRIPE_WEBHOOK_SECRETS = [_standin_server.webhook_secret]
    return _standin_server
