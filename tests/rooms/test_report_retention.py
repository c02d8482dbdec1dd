"""Abuse reports outlive the accounts they name, and deleting an account in the admin is audited."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from accounts.models import AuditEntry, User
from rooms import services
from rooms.models import AbuseReport
from tests.factories import UserFactory
from tests.rooms.scene import make_space

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser() -> User:
    return UserFactory(username="boss", is_staff=True, is_superuser=True)


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_deleting_a_reported_user_in_the_admin_keeps_the_report_and_audits_who_deleted_whom(superuser):
    # given
    reporter = UserFactory(username="witness")
    troll = UserFactory(username="troll")
    troll_pk = troll.pk
    report = services.report_create(reporter=reporter, reason="harassment", user=troll, details="slurs")

    # when
    response = signed_in(superuser).post(f"/admin/accounts/user/{troll_pk}/delete/", {"post": "yes"})

    # then
    assert response.status_code == 302
    assert not User.objects.filter(pk=troll_pk).exists()
    report.refresh_from_db()
    assert (report.reported_user, report.reported_username) == (None, "troll")
    assert (report.reporter, report.reporter_username) == (reporter, "witness")
    assert (report.reason, report.details, report.status) == ("harassment", "slurs", "open")
    entry = AuditEntry.objects.get(action="accounts.user.deleted")
    assert (entry.actor, entry.subject_id, entry.subject_repr) == (superuser, str(troll_pk), "troll")
    assert entry.details == {"username": "troll", "by": "boss"}


def test_deleting_users_with_delete_selected_keeps_reports_made_and_received_and_audits_each(superuser):
    # given
    reporter = UserFactory(username="witness")
    troll = UserFactory(username="troll")
    space = make_space(title="Quiet room")
    about_troll = services.report_create(reporter=reporter, reason="spam", user=troll)
    in_the_space = services.report_create(reporter=troll, reason="other", space=space)
    pks = [reporter.pk, troll.pk]

    # when
    response = signed_in(superuser).post(
        "/admin/accounts/user/", {"action": "delete_selected", "_selected_action": pks, "post": "yes"}
    )

    # then
    assert response.status_code == 302
    assert not User.objects.filter(pk__in=pks).exists()
    about_troll.refresh_from_db()
    in_the_space.refresh_from_db()
    assert (about_troll.reporter, about_troll.reporter_username) == (None, "witness")
    assert (about_troll.reported_user, about_troll.reported_username) == (None, "troll")
    assert (in_the_space.reporter, in_the_space.reporter_username, in_the_space.space) == (None, "troll", space)
    deletions = AuditEntry.objects.filter(action="accounts.user.deleted").order_by("subject_repr")
    assert [(e.actor, e.subject_id, e.subject_repr) for e in deletions] == [
        (superuser, str(troll.pk), "troll"),
        (superuser, str(reporter.pk), "witness"),
    ]


def test_report_admin_names_the_deleted_accounts_of_a_kept_report(superuser):
    # given
    reporter = UserFactory(username="witness")
    troll = UserFactory(username="troll")
    report = services.report_create(reporter=reporter, reason="spam", user=troll)
    browser = signed_in(superuser)
    browser.post(f"/admin/accounts/user/{troll.pk}/delete/", {"post": "yes"})

    # when
    listing = browser.get("/admin/rooms/abusereport/").content.decode()
    found = browser.get("/admin/rooms/abusereport/", {"q": "troll"}).content.decode()
    detail = browser.get(f"/admin/rooms/abusereport/{report.pk}/change/").content.decode()

    # then
    assert "@troll (account deleted)" in listing
    assert f"/admin/rooms/abusereport/{report.pk}/change/" in found
    assert "@troll (account deleted)" in detail
    assert "@witness" in detail


def test_a_denied_delete_leaves_no_audit_row():
    # given
    clerk = UserFactory(username="clerk", is_staff=True)
    troll = UserFactory(username="troll")

    # when
    response = signed_in(clerk).post(f"/admin/accounts/user/{troll.pk}/delete/", {"post": "yes"})

    # then
    assert response.status_code == 403
    assert User.objects.filter(pk=troll.pk).exists()
    assert not AuditEntry.objects.filter(action="accounts.user.deleted").exists()


def test_the_database_refuses_a_report_on_a_user_without_their_kept_username():
    # given
    reporter = UserFactory(username="witness")
    troll = UserFactory(username="troll")

    # when / then
    with pytest.raises(IntegrityError), transaction.atomic():
        AbuseReport.objects.create(reporter=reporter, reporter_username="witness", reported_user=troll, reason="spam")
    assert not AbuseReport.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_migration_copies_the_usernames_of_existing_reports():
    # given: a report written before usernames were kept
    executor = MigrationExecutor(connection)
    before = [("rooms", "0004_space_numbers")]
    executor.migrate(before)
    old_apps = executor.loader.project_state(before).apps
    OldUser, OldReport = old_apps.get_model("accounts", "User"), old_apps.get_model("rooms", "AbuseReport")
    witness = OldUser.objects.create(username="witness")
    troll = OldUser.objects.create(username="troll")
    OldReport.objects.create(reporter_id=witness.pk, reported_user_id=troll.pk, reason="spam")

    # when: migrated forward again, to the latest of every app (the tests after this one need the whole
    # schema: stopping at 0006 left PostgreSQL's search column of 0007 out for the rest of the session)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    # then
    report = AbuseReport.objects.get()
    assert (report.reporter_username, report.reported_username) == ("witness", "troll")
