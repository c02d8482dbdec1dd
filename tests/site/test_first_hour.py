"""A newcomer's first hour without a browser: no dead ends, honest messages, a quiet console, and no
fresh-clone traps (issue 15, items 4-6)."""

import logging
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.selectors import people_to_follow
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space

ROOT = Path(__file__).resolve().parents[2]


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_start_page_of_a_host_already_live_links_to_their_space_and_still_schedules():
    host = make_host(username="maya")
    live = make_space(host, title="Friday design crit")
    page = signed_in(host).get("/spaces/new/")
    assert page.status_code == 200
    assert f'href="/spaces/{live.pk}/"' in page.content.decode()
    # starting now is refused with the same pointer; a time later still schedules
    refused = signed_in(host).post("/spaces/new/", {"title": "Another", "speak_policy": "everyone"})
    body = refused.content.decode()
    assert "already host a live space" in body and f'href="/spaces/{live.pk}/"' in body
    assert ">Start your space</button>" in body
    later = (timezone.now() + timezone.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    scheduled = signed_in(host).post(
        "/spaces/new/", {"title": "Next week", "speak_policy": "everyone", "scheduled_for": later}
    )
    assert scheduled.status_code == 302


@pytest.mark.django_db
def test_the_admin_ending_one_live_space_says_only_that_it_ended():
    staff = UserFactory(is_staff=True, is_superuser=True)
    live = make_space(make_host(), title="Loud room")
    answer = signed_in(staff).post(
        "/admin/rooms/space/", {"action": "end_now", "_selected_action": [live.pk]}, follow=True
    )
    said = [str(message) for message in answer.context["messages"]]
    assert said == ["Ended: Loud room."]


@pytest.mark.django_db
def test_people_to_follow_are_people_others_follow_not_staff_banned_or_filler_accounts():
    viewer = UserFactory()
    popular = UserFactory(username="popular", followers=3)
    UserFactory(username="staffer", is_staff=True, followers=5)
    UserFactory(username="banned", banned_at=timezone.now(), is_active=False, followers=4)
    UserFactory(username="filler")
    suggested = [user.username for user in people_to_follow(viewer=viewer, limit=10)]
    assert suggested == [popular.username]


@pytest.mark.django_db
def test_seeding_prints_the_address_the_site_is_served_at(settings):
    settings.SITE_URL = "http://127.0.0.1:8031"
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "Log in at http://127.0.0.1:8031/accounts/login/" in out.getvalue()
    assert User.objects.filter(username="maya").exists()


def test_libraries_log_warnings_only_and_the_site_logs_at_info():
    assert logging.getLogger("aioice.ice").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("daphne.server").getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("workflows.spaces").getEffectiveLevel() <= logging.INFO
    assert settings.LOGGING["root"]["level"] == "INFO"


def test_a_fresh_clone_opens_its_database_without_making_var_first(tmp_path):
    # given: the SQLite file's folder doesn't exist (var/ on a fresh clone)
    database = tmp_path / "var" / "db.sqlite3"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "DEBUG": "1"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    # when: Django starts and opens it, as `manage.py migrate` does first
    script = "import django; django.setup(); from django.db import connection; connection.ensure_connection()"
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "spaces_site.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then: no "unable to open database file"
    assert done.returncode == 0, done.stderr[-2000:]
    assert database.exists()


def test_the_request_log_names_each_page_once_and_leaves_out_avatars(caplog):
    from django.http import HttpResponse
    from django.test import RequestFactory

    from spaces_site.request_log import RequestLogMiddleware

    log = RequestLogMiddleware(lambda request: HttpResponse(status=200))
    with caplog.at_level(logging.INFO, logger="spaces_site.requests"):
        log(RequestFactory().get("/spaces/3/"))
        log(RequestFactory().get("/u/maya/avatar.svg"))
    lines = [record.getMessage() for record in caplog.records if record.name == "spaces_site.requests"]
    assert len(lines) == 1 and lines[0].startswith("GET /spaces/3/ 200 ")
