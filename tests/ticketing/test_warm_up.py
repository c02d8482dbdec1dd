"""The Stripe client made as the server starts (ticketing.stripe_client.warm_up), not by the first checkout."""

import asyncio

from ticketing import stripe_client


def test_warm_up_makes_the_loops_client_that_checkouts_then_use(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_warm"

    async def serve() -> tuple:
        stripe_client.warm_up()
        made = dict(stripe_client._async_clients.get(asyncio.get_running_loop(), {}))
        return made, stripe_client.stripe_client_async()

    made, used = asyncio.run(serve())

    assert list(made.values()) == [used]


def test_without_a_stripe_key_warm_up_makes_nothing(settings):
    settings.STRIPE_SECRET_KEY = ""

    async def serve() -> dict:
        stripe_client.warm_up()
        return dict(stripe_client._async_clients.get(asyncio.get_running_loop(), {}))

    assert asyncio.run(serve()) == {}
