"""Guessing passwords and flooding inboxes: failed sign-ins lock a username out from the address
that failed (django-axes), too many from one address lock it out of every username (spraying), and
password-reset e-mails are limited per address and per account."""

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from rest_framework.authtoken.models import Token

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

FAILURE_LIMIT = 5  # AXES_FAILURE_LIMIT's default (SPACES_LOGIN_FAILURE_LIMIT)
ADDRESS_FAILURE_LIMIT = 30  # SPACES_LOGIN_ADDRESS_FAILURE_LIMIT's default
SPRAYED = "Summer2026!"  # one common password, tried on many accounts
RESET_EMAILS_PER_HOUR = 3  # SPACES_PASSWORD_RESET_RATE's default
ATTACKER = "203.0.113.7"
OWNER = "198.51.100.20"


def _token(api, username: str, password: str, address: str = ATTACKER):
    return api.post(
        "/api/auth/token/", {"username": username, "password": password}, format="json", REMOTE_ADDR=address
    )


def _login(client: Client, username: str, password: str, address: str = ATTACKER):
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def _reset(client: Client, email: str, address: str = ATTACKER):
    return client.post("/accounts/password-reset/", {"email": email}, REMOTE_ADDR=address)


def test_token_api_answers_wrong_passwords_400_until_the_limit_then_429_locked_out(api):
    # given
    UserFactory(username="bob")

    # when
    answers = [_token(api, "bob", f"guess-{n}") for n in range(FAILURE_LIMIT)]

    # then
    assert [a.status_code for a in answers] == [400] * (FAILURE_LIMIT - 1) + [429]
    locked = answers[-1]
    assert locked.json()["code"] == "locked_out"
    assert "Too many failed sign-ins" in locked.json()["detail"]
    assert int(locked["Retry-After"]) == 30 * 60


def test_a_locked_out_username_gets_no_token_even_with_the_right_password(api):
    # given
    UserFactory(username="bob")
    for n in range(FAILURE_LIMIT):
        _token(api, "bob", f"guess-{n}")

    # when
    answer = _token(api, "bob", PASSWORD)

    # then
    assert answer.status_code == 429
    assert answer.json()["code"] == "locked_out"
    assert not Token.objects.filter(user__username="bob").exists()


def test_changing_the_username_case_does_not_evade_the_lockout(api):
    # given: usernames sign in case-insensitively
    UserFactory(username="bob")
    spellings = ["bob", "Bob", "BOB", "bOb", "boB"]

    # when
    answers = [_token(api, name, "wrong") for name in spellings[:FAILURE_LIMIT]]
    after = _token(api, "BoB", PASSWORD)

    # then
    assert answers[-1].status_code == 429
    assert after.status_code == 429


def test_the_lockout_holds_one_username_from_one_address_so_the_owner_and_others_still_sign_in(api):
    # given: someone guessed bob's password from ATTACKER until locked out
    UserFactory(username="bob")
    UserFactory(username="carol")
    for n in range(FAILURE_LIMIT):
        _token(api, "bob", f"guess-{n}")

    # when
    bob_at_home = _token(api, "bob", PASSWORD, address=OWNER)
    carol_from_attacker_address = _token(api, "carol", PASSWORD)

    # then
    assert bob_at_home.status_code == 200
    assert carol_from_attacker_address.status_code == 200


def test_login_form_shows_a_lockout_page_after_repeated_wrong_passwords():
    # given
    UserFactory(username="bob")
    browser = Client()
    for n in range(FAILURE_LIMIT - 1):
        assert _login(browser, "bob", f"guess-{n}").status_code == 200  # the form again, with its error

    # when
    last_wrong = _login(browser, "bob", "guess-last")
    right_after = _login(browser, "bob", PASSWORD)

    # then
    for page in (last_wrong, right_after):
        assert page.status_code == 429
        assert "registration/locked_out.html" in [t.name for t in page.templates]
        assert "Too many failed sign-ins" in page.content.decode()
        assert int(page["Retry-After"]) == 30 * 60
    assert "_auth_user_id" not in browser.session


def test_a_successful_form_login_clears_earlier_failures():
    # given: one failure short of the limit, then the right password
    UserFactory(username="bob")
    browser = Client()
    for n in range(FAILURE_LIMIT - 1):
        _login(browser, "bob", f"guess-{n}")
    assert _login(browser, "bob", PASSWORD).status_code == 302
    browser.logout()

    # when
    page = _login(Client(), "bob", "one-typo")

    # then: a fresh count, not the lockout
    assert page.status_code == 200
    assert "registration/locked_out.html" not in [t.name for t in page.templates]


def _templates(page) -> list[str]:
    return [t.name for t in page.templates]


def test_the_per_address_failure_limit_defaults_to_30():
    assert settings.SPACES_LOGIN_ADDRESS_FAILURE_LIMIT == ADDRESS_FAILURE_LIMIT


def test_one_password_on_50_usernames_from_one_address_is_refused_429_from_the_address_limit_on():
    # given
    people = [UserFactory(username=f"person{n}") for n in range(50)]

    # when: one password, each username once, through the log-in form
    pages = [_login(Client(), person.username, SPRAYED) for person in people]

    # then
    statuses = [page.status_code for page in pages]
    assert statuses == [200] * (ADDRESS_FAILURE_LIMIT - 1) + [429] * (50 - ADDRESS_FAILURE_LIMIT + 1)
    refused = pages[-1]
    assert "registration/locked_out.html" in _templates(refused)
    assert "Too many failed sign-ins from your network. Try again in 30 minutes." in refused.content.decode()
    assert int(refused["Retry-After"]) == 30 * 60


def test_a_sprayed_address_gets_no_sign_in_even_with_the_right_password_and_others_still_sign_in(api):
    # given: the address has reached its limit, one failure per username
    people = [UserFactory(username=f"person{n}") for n in range(ADDRESS_FAILURE_LIMIT + 1)]
    for person in people[:ADDRESS_FAILURE_LIMIT]:
        _login(Client(), person.username, SPRAYED)

    # when
    untried_form = _login(Client(), people[-1].username, PASSWORD)
    untried_api = _token(api, people[-1].username, PASSWORD)
    owner_elsewhere = _login(Client(), people[0].username, PASSWORD, address=OWNER)

    # then
    assert untried_form.status_code == 429
    assert (untried_api.status_code, untried_api.json()["code"]) == (429, "locked_out")
    assert "from your network" in untried_api.json()["detail"]
    assert not Token.objects.filter(user=people[-1]).exists()
    assert owner_elsewhere.status_code == 302


def test_signing_in_to_ones_own_account_does_not_clear_the_addresss_failures():
    # given: one short of the address's limit, then a sign-in to an account of the sprayer's own
    people = [UserFactory(username=f"person{n}") for n in range(ADDRESS_FAILURE_LIMIT)]
    for person in people[: ADDRESS_FAILURE_LIMIT - 1]:
        _login(Client(), person.username, SPRAYED)
    UserFactory(username="sprayer")
    assert _login(Client(), "sprayer", PASSWORD).status_code == 302

    # when
    next_try = _login(Client(), people[-1].username, SPRAYED)

    # then
    assert next_try.status_code == 429


def test_ten_reset_requests_for_one_account_send_at_most_the_hourly_limit_of_emails():
    # given
    UserFactory(username="bob", email="bob@example.com")
    browser = Client()

    # when: ten requests, each from a different address
    answers = [_reset(browser, "bob@example.com", address=f"192.0.2.{n}") for n in range(10)]

    # then: every request looks the same (nothing says the inbox was spared), few e-mails go out
    assert {a.status_code for a in answers} == {302}
    assert len(mail.outbox) == RESET_EMAILS_PER_HOUR
    assert {m.to[0] for m in mail.outbox} == {"bob@example.com"}


def test_reset_requests_from_one_address_are_limited_across_accounts():
    # given
    for n in range(10):
        UserFactory(username=f"person{n}", email=f"person{n}@example.com")
    browser = Client()

    # when
    answers = [_reset(browser, f"person{n}@example.com") for n in range(10)]

    # then
    assert [a.status_code for a in answers] == [302] * RESET_EMAILS_PER_HOUR + [429] * (10 - RESET_EMAILS_PER_HOUR)
    assert len(mail.outbox) == RESET_EMAILS_PER_HOUR
    refused = answers[-1]
    assert "Too many password-reset requests" in refused.content.decode()
    assert int(refused["Retry-After"]) > 0


def test_the_reset_limit_for_one_account_ignores_how_the_address_is_spelled():
    # given
    UserFactory(username="bob", email="bob@example.com")
    browser = Client()

    # when
    for n, spelling in enumerate(
        ["bob@example.com", "BOB@example.com", "Bob@Example.com", " bob@EXAMPLE.com", "bOb@example.com"]
    ):
        _reset(browser, spelling, address=f"192.0.2.{n}")

    # then
    assert len(mail.outbox) == RESET_EMAILS_PER_HOUR
