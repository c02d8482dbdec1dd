# The Stripe stand-in of the ticketing tests, for the refunds a cancelled ticketed space makes.
from tests.ticketing.conftest import _standin_server, stripe_standin  # noqa: F401
