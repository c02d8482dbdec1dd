"""The test suite's own flush between transactional tests (tests/conftest.py `_quick_flush`): it empties
every table a test wrote, foreign keys and all, by DELETE or past FEW_ROWS by TRUNCATE, and keeps the
content types and permissions that only `migrate` makes."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command

from accounts.models import Follow, User
from tests.conftest import FEW_ROWS
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def flush() -> None:
    call_command("flush", verbosity=0, interactive=False, reset_sequences=False, allow_cascade=False)


@pytest.mark.parametrize("users", [2, FEW_ROWS + 2], ids=["few rows", "many rows"])
def test_the_flush_empties_what_tests_wrote_and_keeps_what_migrate_made(users):
    # given: people following each other (rows with foreign keys between them)
    people = [*User.objects.bulk_create(User(username=f"u{n}") for n in range(users - 1)), UserFactory()]
    Follow.objects.create(follower=people[0], followee=people[-1])
    content_types, permissions = ContentType.objects.count(), Permission.objects.count()
    assert content_types and permissions

    # when
    flush()

    # then: nothing of theirs is left; the content types and permissions are as they were
    assert not User.objects.exists() and not Follow.objects.exists()
    assert (ContentType.objects.count(), Permission.objects.count()) == (content_types, permissions)
