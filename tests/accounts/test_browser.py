import pytest

from accounts.models import Follow
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_follow_from_a_profile_on_a_phone(live_server, phone):
    # given
    fan = UserFactory(username="fan")
    UserFactory(username="bob", display_name="Bob Builder")

    # when: the fan logs in and follows Bob from his profile
    phone.goto(f"{live_server.url}/accounts/login/?next=/u/bob/")
    phone.fill("input[name=username]", "fan")
    phone.fill("input[name=password]", PASSWORD)
    phone.click("button[type=submit]")
    phone.wait_for_url(f"{live_server.url}/u/bob/")
    phone.click("button.follow-button")

    # then: the button and the count change in place, and the follow is stored
    phone.wait_for_selector("button.follow-button[aria-pressed=true]")
    assert phone.inner_text("[data-followers-count]") == "1"
    assert Follow.objects.filter(follower=fan, followee__username="bob").exists()
    # the layout fits the phone's width
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390

    # when: they unfollow
    phone.click("button.follow-button")

    # then
    phone.wait_for_selector("button.follow-button[aria-pressed=false]")
    assert phone.inner_text("[data-followers-count]") == "0"
    phone.reload()
    assert phone.inner_text("button.follow-button") == "Follow"
    assert not Follow.objects.exists()
