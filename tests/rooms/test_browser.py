"""A live space in three real browsers: the host, a listener who comes up to speak, and an audience member.

The site runs under daphne (`asgi_live_server`), so the pages talk to the
server over the space's websocket as they do in production.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from rooms.models import Participant, Role, Space, SpaceState
from tests.browsers import WAIT_MS
from tests.factories import UserFactory
from tests.rooms.scene import make_host

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def on_stage(page: Page, username: str):
    return page.locator(f"#stage li.speaker[data-username={username}]")


def test_host_brings_a_listener_on_stage_mutes_them_and_ends_the_space(asgi_live_server, browsers):
    # given: a host who may host, a listener who will ask to speak, and someone who only listens
    make_host(username="hana")
    UserFactory(username="lee")
    UserFactory(username="ada")
    host, listener, audience = (browsers.log_in(name) for name in ("hana", "lee", "ada"))

    # when: the host starts a space from the form
    host.goto(f"{asgi_live_server.url}/spaces/new/")
    host.fill("input[name=title]", "Browsers on stage")
    host.get_by_role("button", name="Start your space").click()
    host.wait_for_url(re.compile(r"/spaces/\d+/$"))
    space_url = host.url

    # then: the host's page is live, with the host on stage and the button to end
    on_stage(host, "hana").wait_for()
    host.get_by_role("button", name="End space").wait_for()

    # when: the two others open the space and the listener asks to speak
    listener.goto(space_url)
    audience.goto(space_url)
    audience.get_by_role("button", name="✋ Request to speak").wait_for()
    listener.get_by_role("button", name="✋ Request to speak").click()

    # then: the hand shows in the host's queue, and the listener may lower it
    hand = host.locator("#hands li[data-hand=lee]")
    hand.wait_for()
    expect(host.locator("#hands")).to_be_visible()
    listener.get_by_role("button", name="✋ Lower hand").wait_for()

    # when: the host approves
    hand.get_by_role("button", name="Approve").click()

    # then: every page shows the listener on stage as a speaker, and the queue is empty
    for page in (host, listener, audience):
        expect(on_stage(page, "lee")).to_contain_text("Speaker", timeout=WAIT_MS)
    hand.wait_for(state="detached")

    # when: the new speaker unmutes
    listener.get_by_role("button", name="🎙 Unmute").click()

    # then: no page shows them muted, and the host may mute them
    for page in (host, listener, audience):
        expect(on_stage(page, "lee").locator("[data-muted]")).to_have_count(0, timeout=WAIT_MS)
    listener.get_by_role("button", name="🔇 Mute").wait_for()
    mute = on_stage(host, "lee").get_by_role("button", name="Mute", exact=True)
    mute.wait_for()

    # when: the host mutes them
    mute.click()

    # then: every page shows them muted, and only they can unmute themselves
    for page in (host, listener, audience):
        on_stage(page, "lee").locator("[data-muted]").wait_for()
    listener.get_by_role("button", name="🎙 Unmute").wait_for()
    mute.wait_for(state="detached")

    # when: the host ends the space and confirms
    host.once("dialog", lambda dialog: dialog.accept())
    host.get_by_role("button", name="End space").click()

    # then: every page says it has ended and offers no more controls
    for page in (host, listener, audience):
        expect(page.locator("#status")).to_have_text("This space has ended.", timeout=WAIT_MS)
        expect(page.locator("[data-space-state-label]")).to_have_text("Ended", timeout=WAIT_MS)
        expect(page.locator("#controls")).to_be_hidden(timeout=WAIT_MS)
    assert browsers.errors == []
    # and the database agrees
    space = Space.objects.select_related("host").get(title="Browsers on stage")
    assert (space.state, space.end_reason, space.host.username) == (SpaceState.ENDED, "host", "hana")
    lee = Participant.objects.get(space=space, user__username="lee")
    assert (lee.role, lee.muted, lee.hand_raised_at) == (Role.SPEAKER, True, None)
    assert Participant.objects.get(space=space, user__username="ada").role == Role.LISTENER
