"""The in-process ticker of the one-command default: it runs the due-work task in the server
process without any socket open, again when woken, and not at all when turned off."""

import asyncio
from unittest import mock

import pytest

from scheduling import ticker


async def plain_app(scope, receive, send):
    return "answered"


@pytest.fixture
def clean_ticker():
    yield
    task = ticker._running["task"]
    if task is not None:
        task.cancel()
    ticker._running.update(loop=None, task=None, event=None)


async def wait_for(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_the_ticker_runs_due_work_at_start_and_when_woken(settings, clean_ticker):
    # given: a long interval, and the due-work task replaced by a counter
    settings.SPACES_TICKER_S = 3600
    passes = []
    with mock.patch("scheduling.tasks.due_work_task", side_effect=lambda: passes.append(1) or {}):
        application = ticker.install(plain_app)

        # when: the server handles its first request
        answer = await application({"type": "http"}, None, None)

        # then: the request is answered and a pass runs at once, in the background
        assert answer == "answered"
        await wait_for(lambda: len(passes) == 1)
        assert ticker.running()

        # when: a request records an announcement and wakes the ticker (from another thread)
        woken = await asyncio.to_thread(ticker.wake)

        # then: another pass runs, long before the interval
        assert woken is True
        await wait_for(lambda: len(passes) == 2)
        # and more requests don't start a second ticker
        await application({"type": "http"}, None, None)
        await asyncio.sleep(0.05)
        assert len(passes) == 2


async def test_a_failed_pass_is_logged_and_the_ticker_goes_on(settings, clean_ticker, caplog):
    settings.SPACES_TICKER_S = 3600
    outcomes = iter([RuntimeError("database away"), {}])

    def flaky():
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    with mock.patch("scheduling.tasks.due_work_task", side_effect=flaky) as due_work:
        application = ticker.install(plain_app)
        await application({"type": "http"}, None, None)
        await wait_for(lambda: "Scheduling due work failed" in caplog.text)
        assert ticker.wake() is True
        await wait_for(lambda: due_work.call_count == 2)

    assert ticker.running()


def test_with_the_ticker_off_nothing_is_wrapped_or_woken(settings, clean_ticker):
    settings.SPACES_TICKER_S = 0

    assert ticker.install(plain_app) is plain_app
    assert ticker.wake() is False
