import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.authtoken.models import Token

from accounts import services
from accounts.models import Follow, User
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def png_bytes(size=(64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (124, 58, 237)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_follow_then_follow_again_is_idempotent(signed_in, user):
    bob = UserFactory(username="bob")

    first = signed_in.post("/api/users/bob/follow/")
    second = signed_in.post("/api/users/bob/follow/")

    assert first.status_code == second.status_code == 200
    assert first.json() == {"following": True, "changed": True, "followers_count": 1}
    assert second.json() == {"following": True, "changed": False, "followers_count": 1}
    assert Follow.objects.filter(follower=user, followee=bob).count() == 1


def test_unfollow_twice_is_idempotent(signed_in, user):
    bob = UserFactory(username="bob")
    services.follow_create(follower=user, followee=bob)

    first = signed_in.delete("/api/users/bob/follow/")
    second = signed_in.delete("/api/users/bob/follow/")

    assert first.json() == {"following": False, "changed": True, "followers_count": 0}
    assert second.json() == {"following": False, "changed": False, "followers_count": 0}


def test_usernames_are_matched_without_case(signed_in):
    UserFactory(username="Bob")

    assert signed_in.post("/api/users/bob/follow/").json()["following"] is True


def test_self_follow_is_400_with_a_message(signed_in, user):
    response = signed_in.post(f"/api/users/{user.username}/follow/")

    assert response.status_code == 400
    assert response.json() == {"code": "self_follow", "detail": "You can't follow yourself."}
    assert User.objects.get(pk=user.pk).following_count == 0


def test_unknown_user_is_404(signed_in):
    for response in (
        signed_in.post("/api/users/nobody/follow/"),
        signed_in.get("/api/users/nobody/"),
        signed_in.get("/api/users/nobody/followers/"),
    ):
        assert response.status_code == 404
        assert response.json() == {"code": "user_not_found", "detail": "No user named @nobody."}


def test_follow_needs_a_login(api):
    UserFactory(username="bob")

    response = api.post("/api/users/bob/follow/")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert not Follow.objects.exists()


def test_blocked_user_gets_403_when_following(signed_in, user):
    bob = UserFactory(username="bob")
    services.user_block(blocker=bob, blocked=user)

    response = signed_in.post("/api/users/bob/follow/")

    assert response.status_code == 403
    assert response.json() == {"code": "follow_blocked", "detail": "You can't follow @bob."}


def test_profile_shows_counts_and_relationship(signed_in, user):
    bob = UserFactory(username="bob", display_name="Bob B", bio="hi")
    services.follow_create(follower=user, followee=bob)
    services.follow_create(follower=bob, followee=user)

    body = signed_in.get("/api/users/bob/").json()

    assert body["username"] == "bob"
    assert (body["name"], body["bio"]) == ("Bob B", "hi")
    assert (body["followers_count"], body["following_count"]) == (1, 1)
    assert (body["following"], body["followed_by"], body["blocking"]) == (True, True, False)
    assert body["avatar_url"] == "/u/bob/avatar.svg"


def test_follower_and_following_lists(api):
    bob, carol, dan = UserFactory(username="bob"), UserFactory(username="carol"), UserFactory(username="dan")
    services.follow_create(follower=carol, followee=bob)
    services.follow_create(follower=dan, followee=bob)

    followers = api.get("/api/users/bob/followers/").json()
    following = api.get("/api/users/carol/following/").json()

    assert followers["next"] is None  # one page: no older one, and no count of them all
    assert [p["username"] for p in followers["results"]] == ["dan", "carol"]
    assert [p["username"] for p in following["results"]] == ["bob"]
    assert set(followers) == {"next", "results"}


def test_signup_then_token_then_me(api):
    signup = api.post(
        "/api/auth/signup/",
        {"username": "newbie", "email": "new@example.com", "password": "a-long-passphrase"},
        format="json",
    )
    token = signup.json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    me = api.get("/api/me/")

    assert signup.status_code == 201
    assert me.status_code == 200
    assert (me.json()["username"], me.json()["email"]) == ("newbie", "new@example.com")


def test_signup_refuses_taken_name_and_weak_password(api):
    UserFactory(username="taken")

    taken = api.post(
        "/api/auth/signup/", {"username": "TAKEN", "email": "a@example.com", "password": "a-long-passphrase"}
    )
    weak = api.post("/api/auth/signup/", {"username": "fresh", "email": "b@example.com", "password": "123"})

    assert taken.status_code == 400
    assert taken.json()["detail"] == "username: That username is taken."
    assert weak.status_code == 400
    assert "too short" in weak.json()["detail"]
    assert not User.objects.filter(username="fresh").exists()


def test_token_for_good_credentials_and_400_for_bad(api):
    UserFactory(username="bob")

    good = api.post("/api/auth/token/", {"username": "bob", "password": PASSWORD})
    bad = api.post("/api/auth/token/", {"username": "bob", "password": "wrong"})

    assert good.status_code == 200
    assert good.json()["token"] == Token.objects.get(user__username="bob").key
    assert bad.status_code == 400
    assert bad.json() == {
        "code": "invalid_credentials",
        "detail": "That username and password don't match an account.",
    }


def test_profile_update_with_avatar_upload(signed_in, user):
    avatar = SimpleUploadedFile("me.png", png_bytes(), content_type="image/png")

    response = signed_in.patch("/api/me/", {"display_name": "New Name", "avatar": avatar}, format="multipart")

    assert response.status_code == 200
    user.refresh_from_db()
    assert user.display_name == "New Name"
    assert user.avatar.name.startswith(f"avatars/{user.pk}/")
    assert response.json()["avatar_url"] == user.avatar.url


def test_avatar_that_is_not_an_image_is_refused(signed_in, user):
    fake = SimpleUploadedFile("me.png", b"not an image", content_type="image/png")

    response = signed_in.patch("/api/me/", {"avatar": fake}, format="multipart")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["detail"].startswith("avatar:")
    user.refresh_from_db()
    assert not user.avatar


def test_avatar_over_the_size_limit_is_refused(signed_in, user, settings):
    settings.SPACES_AVATAR_MAX_BYTES = 1024
    big = SimpleUploadedFile("big.png", png_bytes((400, 400)) + b"\0" * 2048, content_type="image/png")

    response = signed_in.patch("/api/me/", {"avatar": big}, format="multipart")

    assert response.status_code == 400
    assert "at most 1 KB" in response.json()["detail"]


def test_bio_over_160_characters_is_refused(signed_in, user):
    response = signed_in.patch("/api/me/", {"bio": "x" * 161}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("bio:")


def test_block_api_and_block_list(signed_in, user):
    UserFactory(username="bob")

    blocked = signed_in.post("/api/users/bob/block/")
    listing = signed_in.get("/api/me/blocks/")
    unblocked = signed_in.delete("/api/users/bob/block/")

    assert blocked.json() == {"blocking": True, "changed": True}
    assert [p["username"] for p in listing.json()["results"]] == ["bob"]
    assert unblocked.json() == {"blocking": False, "changed": True}


def test_openapi_schema_and_docs_are_served(api):
    schema = api.get("/api/schema/")
    docs = api.get("/api/docs/")

    assert schema.status_code == 200
    assert b"/api/users/{username}/follow/" in schema.content
    assert docs.status_code == 200
