"""The Stripe client made as the server starts (ticketing.stripe_client.warm_up), not by the first checkout."""

import asyncio

from ticketing import stripe_client


def test_warm_up_makes_the_loops_client_that_checkouts_then_use(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_warm"

    async def serve() -> tuple:
        stripe_client.warm_up()
        made = stripe_client._async_clients.get(asyncio.get_running_loop())
        used = stripe_client.stripe_client_async()
        await stripe_client.async_client_close()
        return made, used

    made, used = asyncio.run(serve())

    assert made is not None and made.client is used
    assert made.session.closed  # closed with the loop that ends, by async_client_close


def test_without_a_stripe_key_warm_up_makes_nothing(settings):
    settings.STRIPE_SECRET_KEY = ""

    async def serve():
        stripe_client.warm_up()
        return stripe_client._async_clients.get(asyncio.get_running_loop())

    assert asyncio.run(serve()) is None


def test_new_settings_make_a_new_client_and_close_the_one_before(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_first"

    async def serve() -> tuple:
        stripe_client.stripe_client_async()
        first = stripe_client._async_clients[asyncio.get_running_loop()]
        settings.STRIPE_SECRET_KEY = "sk_test_second"
        second = stripe_client.stripe_client_async()
        await asyncio.sleep(0)  # the old session's close runs
        await asyncio.sleep(0)
        closed_before = first.session.closed
        await stripe_client.async_client_close()
        return first, second, closed_before

    first, second, closed_before = asyncio.run(serve())

    assert second is not first.client
    assert closed_before
