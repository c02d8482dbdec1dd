import importlib
import re

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.apps import apps as django_apps
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import services
from accounts.errors import AccountBanned
from accounts.models import AuditEntry, Follow, User
from accounts.selectors import counted_followers
from spaces_site.asgi import application
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, is_superuser=True)


def test_banned_user_is_told_so_at_web_login(staff):
    bob = UserFactory(username="bob")
    services.user_ban(actor=staff, user=bob, reason="spam")

    response = Client().post("/accounts/login/", {"username": "bob", "password": PASSWORD})

    assert response.status_code == 200
    assert "This account has been banned. Reason: spam" in response.content.decode()
    assert "_auth_user_id" not in response.client.session


def test_wrong_password_of_banned_user_does_not_reveal_the_ban(staff):
    bob = UserFactory(username="bob")
    services.user_ban(actor=staff, user=bob)

    response = Client().post("/accounts/login/", {"username": "bob", "password": "wrong"})

    assert "banned" not in response.content.decode()
    assert "don&#x27;t match an account" in response.content.decode()


def test_banned_user_gets_no_api_token(api, staff):
    bob = UserFactory(username="bob")
    services.user_ban(actor=staff, user=bob)

    response = api.post("/api/auth/token/", {"username": "bob", "password": PASSWORD})

    assert response.status_code == 403
    assert response.json() == {"code": "account_banned", "detail": "This account has been banned."}
    assert not Token.objects.filter(user=bob).exists()


def test_ban_revokes_existing_token_and_session(api, staff):
    bob = UserFactory(username="bob")
    token = Token.objects.create(user=bob)
    browser = Client()
    browser.force_login(bob)
    assert browser.get("/api/me/").status_code == 200

    services.user_ban(actor=staff, user=bob)

    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.get("/api/me/").status_code == 401
    assert browser.get("/api/me/").status_code == 401


def test_unban_lets_the_user_back_in(api, staff):
    bob = UserFactory(username="bob")
    services.user_ban(actor=staff, user=bob)

    services.user_unban(actor=staff, user=bob)

    assert api.post("/api/auth/token/", {"username": "bob", "password": PASSWORD}).status_code == 200
    assert list(AuditEntry.objects.filter(subject_id=str(bob.pk)).values_list("action", flat=True)) == [
        "accounts.user.unbanned",
        "accounts.user.banned",
    ]


def _session_headers(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"].value
    return [(b"cookie", f"sessionid={cookie}".encode()), (b"origin", b"http://127.0.0.1")]


@pytest.mark.django_db(transaction=True)
async def test_banned_user_is_refused_on_websockets(staff):
    bob = await database_sync_to_async(UserFactory)(username="bob")
    headers = await database_sync_to_async(_session_headers)(bob)
    await database_sync_to_async(services.user_ban)(actor=staff, user=bob)

    socket = WebsocketCommunicator(application, "/ws/me/", headers=headers)
    connected, code = await socket.connect()

    assert (connected, code) == (False, 4401)


@pytest.mark.django_db(transaction=True)
async def test_deactivation_closes_the_open_websockets_of_the_user_saying_why(staff):
    bob = await database_sync_to_async(UserFactory)(username="bob")
    socket = WebsocketCommunicator(application, "/ws/me/", headers=await database_sync_to_async(_session_headers)(bob))
    connected, _ = await socket.connect()
    assert connected
    assert (await socket.receive_json_from())["type"] == "hello"

    await database_sync_to_async(services.user_deactivate)(actor=staff, user=bob)

    assert await socket.receive_json_from(timeout=5) == {
        "type": "error",
        "code": "account_inactive",
        "detail": "This account has been deactivated.",
    }
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


@pytest.mark.django_db(transaction=True)
async def test_ban_closes_the_open_websockets_of_the_user(staff):
    bob = await database_sync_to_async(UserFactory)(username="bob")
    socket = WebsocketCommunicator(application, "/ws/me/", headers=await database_sync_to_async(_session_headers)(bob))
    connected, _ = await socket.connect()
    assert connected
    assert (await socket.receive_json_from())["type"] == "hello"

    await database_sync_to_async(services.user_ban)(actor=staff, user=bob)

    assert await socket.receive_json_from(timeout=5) == {
        "type": "error",
        "code": "account_banned",
        "detail": "This account has been banned.",
    }
    assert await socket.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


def test_admin_ban_action_bans_and_audits(staff):
    bob = UserFactory(username="bob")
    browser = Client()
    browser.force_login(staff)

    response = browser.post("/admin/accounts/user/", {"action": "ban", "_selected_action": [bob.pk]}, follow=True)

    bob.refresh_from_db()
    assert response.status_code == 200
    assert bob.is_banned and not bob.is_active
    assert AuditEntry.objects.get(action="accounts.user.banned").actor == staff


def test_admin_grant_hosting_action(staff):
    bob = UserFactory(username="bob")
    browser = Client()
    browser.force_login(staff)

    browser.post("/admin/accounts/user/", {"action": "grant_hosting", "_selected_action": [bob.pk]})

    bob.refresh_from_db()
    assert bob.hosting_granted is True
    assert AuditEntry.objects.filter(action="accounts.hosting.granted", actor=staff).count() == 1


def test_admin_user_search(staff):
    UserFactory(username="findme", display_name="Needle")
    UserFactory(username="other", display_name="Hay")
    browser = Client()
    browser.force_login(staff)

    page = browser.get("/admin/accounts/user/", {"q": "needle"}).content.decode()

    assert "findme" in page
    assert "other" not in page


def public_counts(username: str) -> dict[str, object]:
    """What anyone sees of a person's graph: the profile page, the profile API, and the lists."""
    browser, api = Client(), APIClient()
    profile = browser.get(f"/u/{username}/").content.decode()
    body = api.get(f"/api/users/{username}/").json()
    return {
        "page": re.search(r"<strong data-followers-count>(\d+)</strong>", profile).group(1),
        "api": (body["followers_count"], body["following_count"]),
        "followers api": [p["username"] for p in api.get(f"/api/users/{username}/followers/").json()["results"]],
        "following api": [p["username"] for p in api.get(f"/api/users/{username}/following/").json()["results"]],
    }


def test_a_banned_follower_leaves_the_public_counts_and_lists_and_comes_back_when_unbanned(staff):
    # given: star follows and is followed by ann and bob; carol follows ann only
    star, ann, bob, carol = (UserFactory(username=name) for name in ("star", "ann", "bob", "carol"))
    for fan in (ann, bob):
        services.follow_create(follower=fan, followee=star)
        services.follow_create(follower=star, followee=fan)
    services.follow_create(follower=carol, followee=ann)
    before = public_counts("star")

    # when: bob is banned
    services.user_ban(actor=staff, user=bob)
    banned = public_counts("star")
    followers_page = Client().get("/u/star/followers/").content.decode()
    ann_sees_carol = public_counts("ann")

    # then: star's counts and lists agree and leave bob out everywhere; others are untouched
    assert before == {"page": "2", "api": (2, 2), "followers api": ["bob", "ann"], "following api": ["bob", "ann"]}
    assert banned == {"page": "1", "api": (1, 1), "followers api": ["ann"], "following api": ["ann"]}
    assert "@bob" not in followers_page and "@ann" in followers_page
    assert ann_sees_carol["api"] == (2, 1)

    # when: the ban is lifted, bob counts again; banning twice or unbanning twice changes nothing
    services.user_ban(actor=staff, user=ann)
    services.user_ban(actor=staff, user=ann)
    services.user_unban(actor=staff, user=bob)
    services.user_unban(actor=staff, user=bob)
    services.user_unban(actor=staff, user=ann)

    # then
    assert public_counts("star") == before


def test_follows_made_or_ended_with_a_banned_account_leave_the_counts_as_a_recount_has_them(staff):
    # given: ann and bob follow star, star follows bob; bob is banned
    star, ann, bob = (UserFactory(username=name) for name in ("star", "ann", "bob"))
    for fan in (ann, bob):
        services.follow_create(follower=fan, followee=star)
    services.follow_create(follower=star, followee=bob)
    services.user_ban(actor=staff, user=bob)

    # when: star blocks bob (ending both follows), lifts the block and follows bob again (a follow made
    # by the services, as a staff tool might), then the counts are rebuilt from the rows
    services.user_block(blocker=star, blocked=bob)
    after_block = counts_of("star", "bob")
    services.user_unblock(blocker=star, blocked=bob)
    services.follow_create(follower=star, followee=bob)
    services.follow_create(follower=bob, followee=star)
    after_follows = counts_of("star", "bob")
    services.follow_counts_recount()

    # then: bob is in none of star's counts, and the recount agrees with the services
    assert after_block == {"star": (1, 0), "bob": (0, 0)}
    assert after_follows == {"star": (1, 0), "bob": (1, 1)}
    assert counts_of("star", "bob") == after_follows


def counts_of(*usernames: str) -> dict[str, tuple[int, int]]:
    rows = User.objects.filter(username__in=usernames).values_list("username", "followers_count", "following_count")
    return {username: (followers, following) for username, followers, following in rows}


def signs_in(username: str) -> bool:
    browser = Client()
    browser.post("/accounts/login/", {"username": username, "password": PASSWORD})
    return "_auth_user_id" in browser.session


def admin_action(staff, action: str, *users: User):
    browser = Client()
    browser.force_login(staff)
    return browser.post(
        "/admin/accounts/user/", {"action": action, "_selected_action": [u.pk for u in users]}, follow=True
    )


def test_a_deactivated_follower_leaves_the_public_counts_as_eligibility_leaves_them_and_comes_back(staff):
    # given: star follows and is followed by ann and bob
    star, ann, bob = (UserFactory(username=name) for name in ("star", "ann", "bob"))
    for fan in (ann, bob):
        services.follow_create(follower=fan, followee=star)
        services.follow_create(follower=star, followee=fan)
    before = public_counts("star")

    # when: staff deactivate bob in the admin (no ban)
    deactivated = admin_action(staff, "deactivate", bob)
    shown = public_counts("star")
    tally = counted_followers(user=User.objects.get(username="star"))

    # then: star's public numbers and lists leave bob out, as eligibility's tally does; bob can't sign in
    assert before == {"page": "2", "api": (2, 2), "followers api": ["bob", "ann"], "following api": ["bob", "ann"]}
    assert shown == {"page": "1", "api": (1, 1), "followers api": ["ann"], "following api": ["ann"]}
    assert (tally.inactive, tally.counted + tally.too_new) == (1, 1)
    assert "Deactivated: bob." in deactivated.content.decode()
    assert signs_in("bob") is False
    assert AuditEntry.objects.get(action="accounts.user.deactivated").actor == staff

    # when: reactivated (twice changes nothing)
    admin_action(staff, "reactivate", bob)
    admin_action(staff, "reactivate", bob)

    # then
    assert public_counts("star") == before
    assert signs_in("bob") is True
    assert AuditEntry.objects.filter(action="accounts.user.reactivated").count() == 1


def test_a_banned_account_is_not_reactivated_only_unbanned(staff):
    # given
    bob = UserFactory(username="bob")
    services.user_ban(actor=staff, user=bob)

    # when
    page = admin_action(staff, "reactivate", bob).content.decode()

    # then
    with pytest.raises(AccountBanned, match="lift the ban"):
        services.user_reactivate(actor=staff, user=bob)
    assert "Banned, so not reactivated (lift the ban instead): bob." in page
    bob.refresh_from_db()
    assert bob.is_banned and not bob.is_active


def test_counts_follow_every_change_of_standing_as_the_recount_has_them(staff):
    # given: star, ann and bob all follow each other; carol follows star
    star, ann, bob, carol = (UserFactory(username=name) for name in ("star", "ann", "bob", "carol"))
    for one in (star, ann, bob):
        for other in (star, ann, bob):
            if one != other:
                services.follow_create(follower=one, followee=other)
    services.follow_create(follower=carol, followee=star)
    steps = [
        ("bob deactivated", lambda: services.user_deactivate(actor=staff, user=bob)),
        ("bob, deactivated, banned", lambda: services.user_ban(actor=staff, user=bob)),
        ("star banned", lambda: services.user_ban(actor=staff, user=star)),
        ("ann deactivated", lambda: services.user_deactivate(actor=staff, user=ann)),
        ("bob unbanned", lambda: services.user_unban(actor=staff, user=bob)),
        ("carol unfollows star", lambda: services.follow_delete(follower=carol, followee=star)),
        ("ann, deactivated, follows carol", lambda: services.follow_create(follower=ann, followee=carol)),
        ("star unbanned", lambda: services.user_unban(actor=staff, user=star)),
        ("ann reactivated", lambda: services.user_reactivate(actor=staff, user=ann)),
    ]

    # when: after each change, the counts kept by the services, then those the recount makes
    kept, rebuilt = {}, {}
    for name, step in steps:
        step()
        kept[name] = counts_of("star", "ann", "bob", "carol")
        services.follow_counts_recount()
        rebuilt[name] = counts_of("star", "ann", "bob", "carol")

    # then: they agree at every step, and end as they began less carol's follow
    assert kept == rebuilt
    assert kept["bob deactivated"] == {"star": (2, 1), "ann": (1, 1), "bob": (2, 2), "carol": (0, 1)}
    assert kept["ann, deactivated, follows carol"] == {"star": (1, 1), "ann": (1, 2), "bob": (0, 0), "carol": (0, 0)}
    assert kept["ann reactivated"] == {"star": (2, 2), "ann": (2, 3), "bob": (2, 2), "carol": (1, 0)}


def test_the_recount_leaves_out_an_account_deactivated_outside_the_services():
    # given: ann follows star, and is deactivated straight in the database (the shell, SQL)
    star, ann = UserFactory(username="star"), UserFactory(username="ann")
    services.follow_create(follower=ann, followee=star)
    User.objects.filter(pk=ann.pk).update(is_active=False)

    # when
    services.follow_counts_recount()

    # then: the count is what eligibility counts by standing, and the row stays
    assert counts_of("star", "ann") == {"star": (0, 0), "ann": (0, 1)}
    assert Follow.objects.filter(follower=ann, followee=star).exists()


def test_the_data_migration_rebuilds_the_counts_leaving_deactivated_accounts_out():
    # given: counts kept by the old rule, which counted ann though she is deactivated
    star, ann = UserFactory(username="star"), UserFactory(username="ann")
    services.follow_create(follower=ann, followee=star)
    services.follow_create(follower=star, followee=ann)
    User.objects.filter(pk=ann.pk).update(is_active=False)
    migration = importlib.import_module("accounts.migrations.0004_follow_counts_without_deactivated")

    # when
    migration.counts_without_inactive(django_apps, None)

    # then
    assert counts_of("star", "ann") == {"star": (0, 0), "ann": (1, 1)}


def test_a_ban_moves_the_counts_of_ties_who_are_banned_themselves(staff):
    # given: bob follows star; star is banned first, then bob
    star, bob = UserFactory(username="star"), UserFactory(username="bob")
    services.follow_create(follower=bob, followee=star)
    services.user_ban(actor=staff, user=star)
    services.user_ban(actor=staff, user=bob)

    # when: star's ban is lifted while bob's holds
    services.user_unban(actor=staff, user=star)
    shown = public_counts("star")

    # then: bob, banned, is not in star's count though star was banned when bob was
    assert shown == {"page": "0", "api": (0, 0), "followers api": [], "following api": []}
    assert counts_of("star", "bob") == {"star": (0, 0), "bob": (0, 1)}
