"""Behind a proxy, every per-address limit holds against a forged X-Forwarded-For (issue 24).

The site runs as the README's production command runs it (daphne with the README's options, under the
test settings) and trusts one proxy, 127.0.0.1. An attacker connects from 127.0.0.2, which is not
that proxy, and writes a fresh X-Forwarded-For into every request: sign-ups, wrong passwords,
password-reset e-mails and anonymous replay plays are all limited as one address, and `/metrics`
stays shut to a forwarded `127.0.0.1`. Through the trusted proxy, each client is the address the
proxy saw, whatever it wrote to the left of it.
"""

import http.client
import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlencode

import pytest
from axes.models import AccessAttempt
from django.db import connection, connections
from rest_framework.authtoken.models import Token

from media.models import Recording
from rooms import services
from tests.factories import PASSWORD, UserFactory
from tests.live_server_asgi import HOST, AsgiLiveServer
from tests.media.replay_files import recording_of
from tests.rooms.scene import make_host, make_space

pytestmark = pytest.mark.django_db(transaction=True)

README = Path(__file__).resolve().parents[2] / "README.md"
PROXY = HOST  # the one trusted proxy
ATTACKER = "127.0.0.2"  # a client connecting straight to daphne, not through the proxy
SIGNUPS_PER_MINUTE = 10  # SPACES_API_AUTH_RATE's default
FAILURE_LIMIT = 5  # SPACES_LOGIN_FAILURE_LIMIT's default
RESET_EMAILS_PER_HOUR = 3  # SPACES_PASSWORD_RESET_RATE's default


def production_daphne_args() -> list[str]:
    """The README's command for the web processes, less `daphne` and where it listens."""
    command = re.search(r"^\| web \(several\) \| `daphne ([^`]+)` \|$", README.read_text(), re.MULTILINE)
    assert command, "README.md's Production table has no daphne command for the web processes"
    args, kept = shlex.split(command.group(1)), []
    while args:
        arg = args.pop(0)
        if arg in ("-b", "--bind", "-p", "--port"):
            args.pop(0)
        else:
            kept.append(arg)
    return kept


@pytest.fixture
def site():
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.fail("The live server can't share an in-memory SQLite database with daphne.", pytrace=False)
    databases = {alias: connections[alias].settings_dict for alias in connections}
    with AsgiLiveServer(
        databases, daphne_args=production_daphne_args(), env={"SPACES_TRUSTED_PROXIES": PROXY}
    ) as server:
        yield server


def ask(site, method: str, path: str, *, source: str, headers: dict | None = None, body: bytes = b""):
    """One request on a connection of its own from `source`: (status, headers, body)."""
    conn = http.client.HTTPConnection(HOST, site.port, timeout=30, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers={"Host": f"{HOST}:{site.port}", **(headers or {})})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def post_json(site, path: str, data: dict, *, source: str, forwarded_for: str):
    headers = {"Content-Type": "application/json", "X-Forwarded-For": forwarded_for}
    return ask(site, "POST", path, source=source, headers=headers, body=json.dumps(data).encode())


def forged(n: int) -> str:
    return f"198.18.{n // 250}.{n % 250 + 1}"


def test_sign_ups_with_forged_addresses_from_one_client_are_limited_as_one_address(site):
    # when: each sign-up claims another address
    answers = [
        post_json(
            site,
            "/api/auth/signup/",
            {"username": f"throwaway{n}", "email": f"throwaway{n}@example.com", "password": "a-long-passphrase"},
            source=ATTACKER,
            forwarded_for=forged(n),
        )[0]
        for n in range(SIGNUPS_PER_MINUTE + 1)
    ]

    # then
    assert answers == [201] * SIGNUPS_PER_MINUTE + [429]


def test_wrong_passwords_with_forged_addresses_lock_the_account_out_from_that_client(site):
    # given
    UserFactory(username="bob")

    # when: each guess claims another address, then the right password
    guesses = [
        post_json(
            site,
            "/api/auth/token/",
            {"username": "bob", "password": f"guess-{n}"},
            source=ATTACKER,
            forwarded_for=forged(n),
        )[0]
        for n in range(FAILURE_LIMIT)
    ]
    status, _, body = post_json(
        site,
        "/api/auth/token/",
        {"username": "bob", "password": PASSWORD},
        source=ATTACKER,
        forwarded_for=forged(99),
    )

    # then
    assert guesses == [400] * (FAILURE_LIMIT - 1) + [429]
    assert (status, json.loads(body)["code"]) == (429, "locked_out")
    assert not Token.objects.filter(user__username="bob").exists()
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {ATTACKER}


def _reset(site, email: str, *, forwarded_for: str) -> int:
    """The reset form as a browser fills it in: its page for the CSRF token, then the post."""
    _, headers, page = ask(site, "GET", "/accounts/password-reset/", source=ATTACKER)
    cookie = re.search(r"csrftoken=([^;]+)", headers["Set-Cookie"]).group(1)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    status, _, _ = ask(
        site,
        "POST",
        "/accounts/password-reset/",
        source=ATTACKER,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={cookie}",
            "X-Forwarded-For": forwarded_for,
        },
        body=urlencode({"email": email, "csrfmiddlewaretoken": token}).encode(),
    )
    return status


def test_reset_emails_with_forged_addresses_from_one_client_are_limited_as_one_address(site):
    # given
    for n in range(RESET_EMAILS_PER_HOUR + 1):
        UserFactory(username=f"person{n}", email=f"person{n}@example.com")

    # when
    answers = [
        _reset(site, f"person{n}@example.com", forwarded_for=forged(n)) for n in range(RESET_EMAILS_PER_HOUR + 1)
    ]

    # then
    assert answers == [302] * RESET_EMAILS_PER_HOUR + [429]


def test_anonymous_replay_plays_with_forged_addresses_from_one_client_count_once(site):
    # given
    space = make_space(host=make_host(), title="Lighthouse radio", recording_enabled=True)
    services.space_end(actor=space.host, space_id=space.pk)
    recording = recording_of(space, (440, 1))

    # when
    answers = [
        post_json(site, f"/api/recordings/{recording.pk}/plays/", {}, source=ATTACKER, forwarded_for=forged(n))[0]
        for n in range(5)
    ]

    # then
    assert answers == [204] * 5
    assert Recording.objects.get(pk=recording.pk).plays == 1


def test_metrics_stay_shut_to_a_forwarded_loopback_address_and_open_to_this_machine(site):
    # when
    forged_from_outside = ask(site, "GET", "/metrics", source=ATTACKER, headers={"X-Forwarded-For": "127.0.0.1"})
    through_the_proxy = ask(site, "GET", "/metrics", source=PROXY, headers={"X-Forwarded-For": "127.0.0.1"})
    from_this_machine = ask(site, "GET", "/metrics", source=PROXY)

    # then
    assert forged_from_outside[0] == 403
    assert through_the_proxy[0] == 403  # whoever is behind the proxy, it is not a scraper asking daphne
    assert from_this_machine[0] == 200 and b"spaces_web_sockets_open" in from_this_machine[2]


def test_through_the_trusted_proxy_each_client_is_the_address_the_proxy_saw(site):
    # given: the proxy appends the address it saw to whatever the client sent
    def sign_up(n: int, client: str) -> int:
        return post_json(
            site,
            "/api/auth/signup/",
            {"username": f"person{n}", "email": f"person{n}@example.com", "password": "a-long-passphrase"},
            source=PROXY,
            forwarded_for=f"{forged(n)}, {client}",
        )[0]

    # when
    first_client = [sign_up(n, "203.0.113.7") for n in range(SIGNUPS_PER_MINUTE + 1)]
    second_client = sign_up(100, "203.0.113.8")

    # then: one client limited as itself, another behind the same proxy not held by it
    assert first_client == [201] * SIGNUPS_PER_MINUTE + [429]
    assert second_client == 201
