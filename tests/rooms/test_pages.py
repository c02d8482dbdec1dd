import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services as accounts_services
from rooms import services
from rooms.models import AbuseReport, Space
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def live_bar(html: str) -> list[str]:
    bar = html.split('class="livebar"', 1)[1].split("</section>", 1)[0]
    return re.findall(r'data-live-space="(\d+)"', bar)


def test_live_bar_shows_a_followed_host_first_right_after_they_start():
    viewer = UserFactory()
    popular = make_space(host=make_host(), title="Busy room")
    services.connection_open(space=popular, participant=None, channel_name="v1")
    followed_host = make_host()
    accounts_services.follow_create(follower=viewer, followee=followed_host)
    browser = signed_in(viewer)

    space = make_space(host=followed_host, title="Just started")
    page = browser.get("/").content.decode()

    assert live_bar(page) == [str(space.pk), str(popular.pk)]
    assert "avatar avatar-lg live" in page


def test_home_page_queries_do_not_grow_with_the_number_of_live_spaces():
    viewer = UserFactory()
    browser = signed_in(viewer)
    make_space()
    make_space(host=make_host(), scheduled_for=timezone.now() + timedelta(days=1))

    cache.clear()  # both with what the home page keeps for everyone read afresh
    with CaptureQueriesContext(connection) as few:
        browser.get("/")
    for _ in range(15):
        space = make_space()
        services.connection_open(space=space, participant=None, channel_name=f"visitor-{space.pk}")
        make_space(host=make_host(), scheduled_for=timezone.now() + timedelta(days=1))  # one reminder query for all
    cache.clear()
    with CaptureQueriesContext(connection) as many:
        page = browser.get("/").content.decode()

    assert len(live_bar(page)) == 16
    assert len(many) == len(few) <= 10


def test_blocked_viewer_does_not_see_the_hosts_spaces():
    host = make_host()
    viewer = UserFactory()
    make_space(host=host)
    accounts_services.user_block(blocker=host, blocked=viewer)

    assert live_bar(signed_in(viewer).get("/").content.decode()) == []


def test_space_page_works_for_a_visitor():
    host = make_host(display_name="Maya Lin")
    space = make_space(host=host, title="Open studio")

    page = Client().get(f"/spaces/{space.pk}/").content.decode()

    assert "Open studio" in page and "Maya Lin" in page
    assert "data-listener-count>0</strong>" in page
    assert "Log in" in page


def test_scheduled_space_page_shows_its_time():
    when = timezone.now() + timedelta(days=2)
    space = make_space(scheduled_for=when)

    page = Client().get(f"/spaces/{space.pk}/").content.decode()

    assert f'<time datetime="{when:%Y-%m-%dT%H:%M:%S}' in page and "data-local-time" in page
    assert "hasn&#x27;t started yet" in page


def test_start_a_space_page_is_403_with_the_rule_for_the_ineligible():
    response = signed_in(UserFactory(followers=12)).get("/spaces/new/")

    assert response.status_code == 403
    assert "you have 12 followers" in response.content.decode()


def test_start_a_space_form_creates_a_live_space_and_opens_it():
    host = make_host()

    response = signed_in(host).post(
        "/spaces/new/", {"title": "Hello world", "topics": "intro, chat", "speak_policy": "everyone"}
    )

    space = Space.objects.get(host=host)
    assert response.url == f"/spaces/{space.pk}/"
    assert (space.state, space.topic_list) == ("live", ["intro", "chat"])


def test_start_control_appears_only_for_eligible_users():
    assert "Start a space" in signed_in(make_host()).get("/").content.decode()
    assert "Start a space" not in signed_in(UserFactory()).get("/").content.decode()


def test_profile_shows_the_purple_ring_while_live():
    host = make_host(username="maya")
    space = make_space(host=host)

    live = Client().get("/u/maya/").content.decode()
    services.space_end(actor=host, space_id=space.pk)
    after = Client().get("/u/maya/").content.decode()

    assert f'href="/spaces/{space.pk}/"' in live and "avatar avatar-xl live" in live
    assert "avatar avatar-xl live" not in after


def test_search_page_finds_by_topic():
    make_space(title="Design crit", topics=["ux"])

    page = Client().get("/spaces/", {"q": "UX"}).content.decode()

    assert "Design crit" in page


def test_report_a_space():
    space = make_space()
    reporter = UserFactory()

    response = signed_in(reporter).post(
        f"/spaces/{space.pk}/report/", {"reason": "spam", "details": "ads"}, follow=True
    )

    assert "staff will look at your report" in response.content.decode()
    report = AbuseReport.objects.get()
    assert (report.space, report.reporter, report.reason) == (space, reporter, "spam")


def test_report_api_for_a_user_and_refusals(api):
    reporter = UserFactory()
    UserFactory(username="troll")
    api.force_authenticate(reporter)

    made = api.post("/api/reports/", {"reason": "harassment", "user": "troll"}, format="json")
    empty = api.post("/api/reports/", {"reason": "spam"}, format="json")
    self_report = api.post("/api/reports/", {"reason": "spam", "user": reporter.username}, format="json")

    assert made.status_code == 201
    assert empty.json()["code"] == "no_subject"
    assert self_report.json()["code"] == "self_report"
    assert AbuseReport.objects.count() == 1


def test_admin_end_now_and_cancel_actions():
    staff = UserFactory(is_staff=True, is_superuser=True)
    live = make_space()
    scheduled = make_space(scheduled_for=timezone.now() + timedelta(hours=3))
    browser = signed_in(staff)

    browser.post("/admin/rooms/space/", {"action": "end_now", "_selected_action": [live.pk, scheduled.pk]})
    browser.post("/admin/rooms/space/", {"action": "cancel", "_selected_action": [scheduled.pk]})

    live.refresh_from_db()
    scheduled.refresh_from_db()
    assert (live.state, live.end_reason) == ("ended", "staff")
    assert scheduled.state == "cancelled"
    assert browser.get(f"/admin/rooms/space/{live.pk}/change/").status_code == 200
    assert browser.get("/admin/rooms/abusereport/").status_code == 200
