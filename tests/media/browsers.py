"""Chromium for media tests: a browser whose microphone plays a WAV file, and starting a space in it."""

import contextlib
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.conftest import CHROMIUM, CHROMIUM_ARGS


@contextlib.contextmanager
def microphone_chromium(wav: Path):
    """Headless Chromium whose microphone plays `wav` (looping) and that may use loopback ICE."""
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield browser
        finally:
            browser.close()


def start_space(page, base_url: str, *, username: str, password: str, title: str) -> None:
    """Log in as `username` on `page` and start a space called `title`."""
    page.goto(f"{base_url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/")
    page.goto(f"{base_url}/spaces/new/")
    page.fill("input[name=title]", title)
    page.get_by_role("button", name="Start your space").click()
