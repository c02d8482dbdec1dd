"""A newcomer host goes live on the one-command default, as `make run` serves it: daphne on SQLite
in a file (WAL), tasks in-process and the scheduling ticker in the web process. The go-live
fan-out (hundreds of deliveries and notifications, written from the ticker's thread) runs while
other people keep following and unfollowing the host through the API (transactions that read,
then write). Every follower is told, every request is answered, and SQLite never says
"database is locked" — which it did with deferred transactions and no WAL, whatever the timeout."""

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
from django.db import connection, connections
from rest_framework.authtoken.models import Token

from accounts.models import Follow
from scheduling.models import Delivery, DeliveryState, Kind, Notification
from tests.factories import UserFactory
from tests.live_server_asgi import AsgiLiveServer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.sqlite]

FOLLOWERS = 620  # above the 600 that hosting needs
CHURNERS = 24  # people following and unfollowing the host while the fan-out runs
PAUSE_S = 0.05  # between one person's requests
FANOUT_TIMEOUT_S = 120


def call(url: str, token: str, method: str = "POST", body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body or {}).encode(),
        method=method,
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {"detail": error.read()[:300].decode(errors="replace")}


def churn(follow_url: str, token: str, stop: threading.Event, answers: list) -> None:
    """Follow, unfollow, follow ... until told to stop; every answer is kept."""
    method = "POST"
    while not stop.is_set():
        status, body = call(follow_url, token, method)
        answers.append((method, status, body.get("detail", "")))
        method = "DELETE" if method == "POST" else "POST"
        stop.wait(PAUSE_S)


def test_a_newcomer_going_live_tells_every_follower_while_others_follow_and_sqlite_is_never_locked(capfd):
    assert not connection.is_in_memory_db(), "SQLite in a file, as `make run` has it (tests/conftest.py)"
    # given: a host who just passed the hosting threshold, people about to follow them, API tokens
    host = UserFactory(followers=FOLLOWERS)
    followers = set(Follow.objects.filter(followee=host).values_list("follower_id", flat=True))
    churners = UserFactory.create_batch(CHURNERS)
    tokens = {user.pk: Token.objects.create(user=user).key for user in [host, *churners]}
    # and the site served as `make run` serves it (the ticker wakes as soon as a space goes live)
    env = {
        "DJANGO_SETTINGS_MODULE": "spaces_site.settings",
        "DEBUG": "1",
        "SPACES_TICKER_S": "1",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
    }
    databases = {alias: connections[alias].settings_dict for alias in connections}
    with AsgiLiveServer(databases, env=env) as server:
        stop, answers = threading.Event(), []
        follow_url = f"{server.url}/api/users/{host.username}/follow/"
        threads = [
            threading.Thread(target=churn, args=(follow_url, tokens[user.pk], stop, answers)) for user in churners
        ]
        try:
            for thread in threads:
                thread.start()
            # when: the host goes live while the others follow and unfollow
            status, space = call(f"{server.url}/api/spaces/", tokens[host.pk], body={"title": "My first space"})
            assert status == 201, space
            live_at, answered_before = time.monotonic(), len(answers)

            # then: the fan-out finishes (every delivery of the space sent) with the writes going on
            deliveries = Delivery.objects.filter(space_id=space["id"], kind=Kind.HOST_LIVE)
            fanout_s = None
            while fanout_s is None and time.monotonic() < live_at + FANOUT_TIMEOUT_S:
                time.sleep(0.5)
                sent = deliveries.filter(user_id__in=followers, state=DeliveryState.SENT).count()
                if sent == len(followers) and not deliveries.exclude(state=DeliveryState.SENT).exists():
                    fanout_s, answered_during = time.monotonic() - live_at, len(answers) - answered_before
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=90)
        output = capfd.readouterr()

    log = output.out + output.err
    assert "database is locked" not in log, log[-3000:]
    assert "Scheduling due work failed" not in log, log[-3000:]
    assert fanout_s is not None, f"the go-live fan-out didn't finish within {FANOUT_TIMEOUT_S} s"
    # the people's writes really went on during the fan-out (which can be over within one 0.5 s poll,
    # with some of the churners still waiting in the site's line of SPACES_WEB_CONCURRENCY places)
    assert answered_during >= CHURNERS // 2, (fanout_s, answered_during)
    # every follower has exactly one go-live notification, and every delivery was sent
    told = list(
        Notification.objects.filter(space_id=space["id"], kind=Kind.HOST_LIVE).values_list("user_id", flat=True)
    )
    assert followers <= set(told) and len(told) == len(set(told))
    assert not deliveries.exclude(state=DeliveryState.SENT).exists()
    # and every follow and unfollow sent meanwhile was answered, none refused for a locked database
    assert len(answers) >= 2 * CHURNERS
    refused = [answer for answer in answers if answer[1] != 200]
    assert refused == [], refused[:5]
    # the database was in WAL mode throughout (the mode stays with the file)
    with connection.cursor() as cursor:
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
