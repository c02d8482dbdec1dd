"""People in real browsers: one Chromium context each, logged in through the login form."""

from playwright.sync_api import Page

from tests.factories import PASSWORD

# Every wait on the pages is bounded by this (milliseconds).
WAIT_MS = 10_000


class Browsers:
    """One browser context per person, each logged in through the login form."""

    def __init__(self, chromium, base_url: str):
        self.chromium, self.base_url = chromium, base_url
        self.contexts = []
        # Uncaught JavaScript errors on any page, as "username: message".
        self.errors: list[str] = []

    def log_in(self, username: str) -> Page:
        context = self.chromium.new_context()
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.on("pageerror", lambda error: self.errors.append(f"{username}: {error}"))
        page.goto(f"{self.base_url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{self.base_url}/")
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()
