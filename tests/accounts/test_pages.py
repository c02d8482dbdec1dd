import re

import pytest
from django.core import mail
from django.test import Client

from accounts import services
from accounts.models import Follow, User
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_home_for_a_visitor_offers_sign_up():
    page = Client().get("/")

    assert page.status_code == 200
    assert "Join Spaces" in page.content.decode()


def test_home_tells_an_ineligible_user_the_rule_and_count(browser, user):
    page = browser.get("/").content.decode()

    assert (
        "Hosting a space needs at least 600 followers or a grant from staff; you have 0 followers. "
        "Carrying on a live space handed to you as its co-host needs no followers."
    ) in page


def test_home_tells_an_eligible_user_they_can_host():
    eligible = UserFactory(followers=600)
    client = Client()
    client.force_login(eligible)

    page = client.get("/").content.decode()

    assert "You can host" in page


def test_home_suggests_popular_people_in_bounded_queries(browser, django_assert_max_num_queries):
    for n in range(8):
        UserFactory(followers=n)

    with django_assert_max_num_queries(7):  # 6, and the bell's unread count
        page = browser.get("/")

    assert page.content.decode().count('class="person"') == 6


def test_profile_page_follow_button_works_without_javascript(browser, user):
    bob = UserFactory(username="bob", display_name="Bob Builder")

    before = browser.get("/u/bob/").content.decode()
    followed = browser.post("/u/bob/follow/", {"next": "/u/bob/"}, follow=True).content.decode()
    unfollowed = browser.post("/u/bob/unfollow/", follow=True).content.decode()

    assert "Bob Builder" in before and ">Follow</button>" in before
    assert ">Following</button>" in followed and "You follow @bob." in followed
    assert "You no longer follow @bob." in unfollowed
    assert not Follow.objects.filter(follower=user, followee=bob).exists()


def test_follow_form_ignores_a_foreign_next_url(browser):
    UserFactory(username="bob")

    response = browser.post("/u/bob/follow/", {"next": "https://evil.example/"})

    assert response.url == "/u/bob/"


def test_follow_page_shows_the_refusal_message(browser, user):
    response = browser.post(f"/u/{user.username}/follow/", follow=True)

    assert "You can&#x27;t follow yourself." in response.content.decode()


def test_follow_page_needs_a_login_and_a_post():
    UserFactory(username="bob")

    assert Client().post("/u/bob/follow/").status_code == 302
    logged_in = Client()
    logged_in.force_login(UserFactory())
    assert logged_in.get("/u/bob/follow/").status_code == 405
    assert not Follow.objects.exists()


def test_unknown_profile_is_404():
    assert Client().get("/u/nobody/").status_code == 404


def test_followers_page_lists_people():
    bob = UserFactory(username="bob")
    services.follow_create(follower=UserFactory(username="carol", display_name="Carol C"), followee=bob)

    page = Client().get("/u/bob/followers/").content.decode()

    assert "Carol C" in page and "@carol" in page


def test_signup_page_creates_an_account_and_signs_in():
    client = Client()

    response = client.post(
        "/accounts/signup/",
        {
            "username": "newbie",
            "display_name": "New Bie",
            "email": "new@example.com",
            "password1": "a-long-passphrase",
            "password2": "a-long-passphrase",
        },
        follow=True,
    )

    assert "Welcome to Spaces, New Bie." in response.content.decode()
    assert User.objects.get(username="newbie").check_password("a-long-passphrase")


SIGNUPS_PER_MINUTE = 10  # SPACES_API_AUTH_RATE's default, per address


def sign_up_through_the_form(n: int, *, address: str = "198.51.100.7"):
    # A fresh browser each time: one signed in by its sign-up would be sent home, not counted.
    return Client(REMOTE_ADDR=address).post(
        "/accounts/signup/",
        {
            "username": f"form{n}",
            "display_name": "",
            "email": f"form{n}@example.com",
            "password1": "a-long-passphrase",
            "password2": "a-long-passphrase",
        },
    )


def sign_up_through_the_api(api, n: int, *, address: str = "198.51.100.7"):
    return api.post(
        "/api/auth/signup/",
        {"username": f"api{n}", "email": f"api{n}@example.com", "password": "a-long-passphrase"},
        REMOTE_ADDR=address,
    )


def test_the_signup_form_and_the_api_share_one_limit_per_address(api):
    # given: an address spends half its sign-ups through the form and half through the API
    half = SIGNUPS_PER_MINUTE // 2
    through_the_form = [sign_up_through_the_form(n).status_code for n in range(half)]
    through_the_api = [sign_up_through_the_api(api, n).status_code for n in range(SIGNUPS_PER_MINUTE - half)]

    # when: it asks for one more through each door, and another address signs up through the form
    form_past = sign_up_through_the_form(100)
    api_past = sign_up_through_the_api(api, 100)
    elsewhere = sign_up_through_the_form(200, address="203.0.113.9")

    # then: one budget for both doors; past it a 429 page that says when to come back, and no account
    assert through_the_form == [302] * half
    assert through_the_api == [201] * (SIGNUPS_PER_MINUTE - half)
    assert form_past.status_code == 429
    assert 1 <= int(form_past["Retry-After"]) <= 60
    assert "Too many sign-ups from your network. Try again in 1 minute." in form_past.content.decode()
    assert (api_past.status_code, api_past.json()["code"]) == (429, "throttled")
    assert elsewhere.status_code == 302
    assert not User.objects.filter(username__in=["form100", "api100"]).exists()
    assert User.objects.count() == SIGNUPS_PER_MINUTE + 1


def test_the_signup_form_past_the_limit_keeps_the_apis_budget_spent(api):
    # given: an address spends its whole budget through the form
    spent = [sign_up_through_the_form(n).status_code for n in range(SIGNUPS_PER_MINUTE)]

    # when
    api_after = sign_up_through_the_api(api, 0)
    form_page = Client(REMOTE_ADDR="198.51.100.7").get("/accounts/signup/")

    # then: the API refuses it too; the form itself still shows (only sign-ups count)
    assert spent == [302] * SIGNUPS_PER_MINUTE
    assert api_after.status_code == 429
    assert form_page.status_code == 200


def test_login_and_logout(user):
    client = Client()

    logged_in = client.post("/accounts/login/", {"username": user.username.upper(), "password": PASSWORD})
    logged_out = client.post("/accounts/logout/")

    assert logged_in.status_code == 302
    assert logged_out.status_code == 302
    assert "_auth_user_id" not in client.session


def test_password_reset_by_email(user):
    client = Client()

    client.post("/accounts/password-reset/", {"email": user.email})
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "a-new-passphrase", "new_password2": "a-new-passphrase"}
    )

    assert mail.outbox[0].subject == "Reset your Spaces password"
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-new-passphrase")


def test_profile_edit_page(browser, user):
    response = browser.post("/settings/profile/", {"display_name": "Renamed", "bio": "Hello there"}, follow=True)

    user.refresh_from_db()
    assert (user.display_name, user.bio) == ("Renamed", "Hello there")
    assert "Profile saved." in response.content.decode()


def test_generated_avatar_is_an_svg_with_initials():
    UserFactory(username="bob", display_name="Bob Builder")

    response = Client().get("/u/bob/avatar.svg")

    assert response["Content-Type"] == "image/svg+xml"
    assert ">BB</text>" in response.content.decode()


def test_static_files_are_served():
    response = Client().get("/static/css/site.css")

    assert response.status_code == 200
    assert b"--purple" in b"".join(response.streaming_content)


def test_admin_login_page_is_served():
    assert Client().get("/admin/login/").status_code == 200
