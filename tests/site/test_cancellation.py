"""A task asked to stop stops, even when something on its way swallowed the cancellation."""

import asyncio
import contextlib

from spaces_site.outages import retrying


async def test_a_retry_loop_stops_when_a_call_swallowed_its_cancellation():
    # given: a call that, cancelled mid-way, swallows it and fails as an outage (as a client library's timeout can)
    started = asyncio.Event()

    async def swallowing() -> None:
        started.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)
        raise TimeoutError("the read timed out")

    task = asyncio.get_running_loop().create_task(retrying(swallowing, within=60))
    await started.wait()

    # when
    task.cancel()

    # then: the loop doesn't go round again
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done and task.cancelled()
