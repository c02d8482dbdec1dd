"""The API's token authentication (accounts/authentication.py): the user and token it reads in one
statement are what the ORM reads, and its refusals are DRF's."""

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.authentication import TokenAuthentication
from accounts.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def fields_of(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_the_user_and_token_are_what_the_orm_reads():
    user = UserFactory(display_name="Ada", bio="Hi", last_login=timezone.now(), followers_count=3)
    token = Token.objects.create(user=user)

    authenticated, read = TokenAuthentication().authenticate_credentials(token.key)

    assert fields_of(authenticated) == fields_of(User.objects.get(pk=user.pk))
    assert fields_of(read) == fields_of(Token.objects.get(pk=token.pk))
    assert read.user is authenticated
    assert timezone.is_aware(authenticated.last_login) and timezone.is_aware(authenticated.date_joined)
    assert authenticated.is_active is True and authenticated.is_staff is False


def test_an_api_request_with_the_token_is_that_user():
    user = UserFactory()
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

    assert client.get("/api/me/").json()["username"] == user.username


@pytest.mark.parametrize(
    ("inactive", "detail"),
    [(False, "Invalid token."), (True, "User inactive or deleted.")],
    ids=["unknown", "inactive"],
)
def test_an_unknown_token_or_an_inactive_user_is_refused_as_drf_refuses(inactive, detail):
    user = UserFactory(is_active=not inactive)
    key = Token.objects.create(user=user).key if inactive else "0" * 40
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    answer = client.get("/api/me/")

    assert answer.status_code == 401
    assert answer.json()["detail"] == detail
