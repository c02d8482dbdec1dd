"""100 people follow one at the same instant on the one-command default: SQLite in a file, served by
daphne as `make run` serves it. Each follow reads, then writes; with SQLite's deferred transactions
94 of 100 failed at once with "database is locked" (500), whatever the busy timeout. And a lock
that is still hit somewhere is an outage for a moment (503 with a retry hint), never a 500."""

import json
import threading
import urllib.error
import urllib.request

import pytest
from django.db import OperationalError, connection, connections
from rest_framework.authtoken.models import Token

from accounts import api as accounts_api
from accounts.models import Follow
from tests.factories import UserFactory
from tests.live_server_asgi import AsgiLiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sqlite]

PEOPLE = 100


def follow(url: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(url, data=b"{}", method="POST", headers={"Authorization": f"Token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, ""
    except urllib.error.HTTPError as error:
        return error.code, error.read()[:300].decode(errors="replace")


def test_100_people_following_at_once_on_sqlite_all_get_in(capfd):
    assert not connection.is_in_memory_db(), "SQLite in a file, as `make run` has it (tests/conftest.py)"
    star = UserFactory(username="star")
    tokens = [Token.objects.create(user=UserFactory()).key for _ in range(PEOPLE)]
    databases = {alias: connections[alias].settings_dict for alias in connections}
    with AsgiLiveServer(databases, env={"DJANGO_SETTINGS_MODULE": "spaces_site.settings", "DEBUG": "1"}) as server:
        url = f"{server.url}/api/users/star/follow/"
        start, answers = threading.Barrier(PEOPLE), [None] * PEOPLE

        def one(index: int) -> None:
            start.wait(timeout=30)
            answers[index] = follow(url, tokens[index])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(PEOPLE)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        output = capfd.readouterr()

    refused = [answer for answer in answers if answer is None or answer[0] not in (200, 201)]
    assert refused == [], refused[:5]
    star.refresh_from_db()
    assert star.followers_count == PEOPLE == Follow.objects.filter(followee=star).count()
    assert "database is locked" not in output.out + output.err


def test_a_locked_database_is_answered_503_with_a_retry_hint(api, monkeypatch, settings):
    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(accounts_api.services, "follow_create", locked)
    fan = UserFactory()
    UserFactory(username="star")
    api.force_authenticate(fan)

    response = api.post("/api/users/star/follow/")

    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.SPACES_RETRY_AFTER_S)
    assert json.loads(response.content)["code"] == "unavailable"
