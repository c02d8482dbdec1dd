"""Every page a person sees passes axe-core (WCAG 2.1 A and AA rules) with no serious or critical
violation, for the viewers who see it: visitors, listeners and hosts (issue 15, item 7)."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page

from rooms import services
from rooms.models import Role
from tests.factories import PASSWORD, UserFactory
from tests.rooms.scene import make_host, make_space, seat

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The npm package (package.json; `make test` installs it).
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")


def violations(page: Page) -> list[str]:
    """What axe-core finds on the page as it is now, serious or worse, one line each."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "async (rules) => (await axe.run(document, {runOnly: {type: 'tag', values: rules}})).violations",
        RULES,
    )
    return [
        f"{v['impact']} {v['id']}: {v['help']} at {', '.join(n['target'][0] for n in v['nodes'][:3])}"
        for v in found
        if v["impact"] in BLOCKING
    ]


def test_every_page_passes_axe_for_every_kind_of_viewer(asgi_live_server, request):
    assert AXE.exists(), "axe-core is missing: run `make test` (or `npm ci`) to install it"
    # given: a live space with a speaker, one scheduled and one ended, all of one host
    host = make_host(username="hana", followers=3)
    live = make_space(host, title="Accessible talk")
    seat(live, UserFactory(username="lee"), Role.SPEAKER)
    scheduled = services.space_create(
        host=make_host(), title="Later on", scheduled_for=timezone.now() + timedelta(days=1)
    )
    ended = make_space(make_host(), title="Over now")
    services.space_end(actor=None, space_id=ended.pk)
    UserFactory(username="ada")
    chromium = request.getfixturevalue("chromium")
    url = asgi_live_server.url
    errors: list[str] = []

    def person(username: str | None, scheme: str = "light") -> Page:
        # axe is injected as a script of its own: the context sets the site's CSP aside for it
        page = chromium.new_context(bypass_csp=True, color_scheme=scheme).new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda error: errors.append(f"{username}: {error}"))
        if username:
            page.goto(f"{url}/accounts/login/")
            page.fill("input[name=username]", username)
            page.fill("input[name=password]", PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{url}/")
        return page

    visitor = person(None)
    found: dict[str, list[str]] = {}
    for path in ("/", "/accounts/login/", "/accounts/signup/", f"/spaces/{live.pk}/", "/u/hana/", "/spaces/?q=talk"):
        visitor.goto(f"{url}{path}")
        found[f"visitor {path}"] = violations(visitor)

    dark = person(None, "dark")  # the system's dark mode: the same pages, still AA
    for path in ("/", "/accounts/login/", f"/spaces/{live.pk}/"):
        dark.goto(f"{url}{path}")
        found[f"visitor (dark) {path}"] = violations(dark)

    listener = person("ada")
    for path in (
        "/",
        f"/spaces/{live.pk}/",
        f"/spaces/{scheduled.pk}/",
        f"/spaces/{ended.pk}/",
        "/notifications/",
        "/tickets/",
    ):
        listener.goto(f"{url}{path}")
        if path == f"/spaces/{live.pk}/":
            listener.locator("#reactions").wait_for()  # connected: the live controls are drawn
        found[f"listener {path}"] = violations(listener)

    hosting = person("hana")
    for path in (f"/spaces/{live.pk}/", "/spaces/new/", "/tickets/selling/", "/settings/profile/"):
        hosting.goto(f"{url}{path}")
        if path == f"/spaces/{live.pk}/":
            hosting.get_by_role("button", name="End space").wait_for()
        found[f"host {path}"] = violations(hosting)

    for page in (visitor, dark, listener, hosting):
        page.context.close()
    bad = {page: v for page, v in found.items() if v}
    assert bad == {}, "\n".join(f"{page}: {line}" for page, lines in bad.items() for line in lines)
    assert errors == []
