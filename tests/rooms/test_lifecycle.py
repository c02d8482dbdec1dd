from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from rooms import services
from rooms.errors import AlreadyLive, InvalidSpace, WrongState
from rooms.models import Participant, Role, Space
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space

pytestmark = pytest.mark.django_db


def test_ineligible_user_gets_403_stating_the_rule_and_their_count(api):
    user = UserFactory(followers=599)
    api.force_authenticate(user)

    response = api.post("/api/spaces/", {"title": "My first space"}, format="json")

    assert response.status_code == 403
    assert response.json() == {
        "code": "hosting_not_eligible",
        "detail": "Hosting a space needs at least 600 followers or a grant from staff; you have 599 followers. "
        "Carrying on a live space handed to you as its co-host needs no followers.",
        "followers_count": 599,
        "required_followers": 600,
    }
    assert not Space.objects.exists()


def test_eligible_user_starts_a_live_space_and_is_its_host(api):
    host = UserFactory(followers=600)
    api.force_authenticate(host)

    response = api.post("/api/spaces/", {"title": "  Late   night  jazz ", "topics": ["Jazz", "Music"]}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["title"], body["state"], body["topics"]) == ("Late night jazz", "live", ["jazz", "music"])
    assert body["you"]["role"] == "host"
    assert [p["user"]["username"] for p in body["stage"]] == [host.username]
    assert AuditEntry.objects.filter(action="rooms.space.started").count() == 1


def test_one_live_space_per_host():
    host = make_host()
    make_space(host=host)

    with pytest.raises(AlreadyLive, match="already host a live space"):
        make_space(host=host)

    assert Space.objects.filter(host=host).count() == 1


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"title": ""}, "bad_title"),
        ({"title": "x" * 71}, "bad_title"),
        ({"title": "ok", "topics": ["a", "b", "c", "d"]}, "too_many_topics"),
        ({"title": "ok", "speak_policy": "anyone"}, "bad_policy"),
    ],
)
def test_bad_space_fields_are_refused(fields, code):
    with pytest.raises(InvalidSpace) as raised:
        services.space_create(host=make_host(), **fields)

    assert raised.value.code == code
    assert not Space.objects.exists()


def test_api_answers_bad_fields_with_400(api):
    api.force_authenticate(make_host())

    response = api.post("/api/spaces/", {"title": "ok", "pinned_link": "not a url"}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == "pinned_link: Enter a valid URL."


def test_schedule_window_is_enforced_with_the_window_in_the_message():
    host = make_host()

    with pytest.raises(InvalidSpace, match="from 15 minutes to 30 days ahead"):
        make_space(host=host, scheduled_for=timezone.now() + timedelta(minutes=5))
    space = make_space(host=host, scheduled_for=timezone.now() + timedelta(days=1))

    assert space.state == "scheduled"
    assert not Participant.objects.filter(space=space).exists()


def test_scheduled_space_starts_and_cancel_only_from_scheduled():
    host = make_host()
    space = make_space(host=host, scheduled_for=timezone.now() + timedelta(hours=1))

    services.space_start(actor=host, space_id=space.pk)

    space.refresh_from_db()
    assert space.state == "live" and space.started_at is not None
    assert Participant.objects.get(space=space, user=host).role == Role.HOST
    with pytest.raises(WrongState, match="only a scheduled space can be cancelled"):
        services.space_cancel(actor=host, space_id=space.pk)


def test_end_marks_everyone_left_and_a_second_end_is_refused():
    host = make_host()
    space = make_space(host=host)
    listener = UserFactory()
    services.space_join(user=listener, space=space)

    services.space_end(actor=host, space_id=space.pk)

    space.refresh_from_db()
    assert (space.state, space.end_reason) == ("ended", "host")
    assert not Participant.objects.filter(space=space, left_at__isnull=True).exists()
    with pytest.raises(WrongState):
        services.space_end(actor=host, space_id=space.pk)


def test_staff_can_end_any_space():
    space = make_space()
    staff = UserFactory(is_staff=True)

    services.space_end(actor=staff, space_id=space.pk)

    space.refresh_from_db()
    assert (space.state, space.end_reason) == ("ended", "staff")


def test_host_can_start_again_after_ending():
    host = make_host()
    first = make_space(host=host)
    services.space_end(actor=host, space_id=first.pk)

    second = make_space(host=host)

    assert second.state == "live"


def test_rest_lifecycle_endpoints(api):
    host = make_host()
    api.force_authenticate(host)
    scheduled = api.post(
        "/api/spaces/",
        {"title": "Later", "scheduled_for": (timezone.now() + timedelta(hours=2)).isoformat()},
        format="json",
    ).json()

    started = api.post(f"/api/spaces/{scheduled['id']}/start/")
    edited = api.patch(f"/api/spaces/{scheduled['id']}/", {"title": "Now"}, format="json")
    ended = api.post(f"/api/spaces/{scheduled['id']}/end/")
    again = api.post(f"/api/spaces/{scheduled['id']}/end/")

    assert started.json()["state"] == "live"
    assert edited.json()["title"] == "Now"
    assert ended.json()["state"] == "ended"
    assert again.status_code == 409
    assert again.json() == {"code": "wrong_state", "detail": "This space is ended; only a live space can end."}


def test_unknown_space_is_404(api):
    api.force_authenticate(make_host())

    assert api.get("/api/spaces/999/").json() == {"code": "space_not_found", "detail": "No space with id 999."}
    assert api.post("/api/spaces/999/commands/", {"type": "react", "emoji": "👏"}, format="json").status_code == 404


def test_search_by_title_topic_state_and_host(api):
    maya = make_host(username="maya")
    leo = make_host(username="leo")
    make_space(host=maya, title="Design crit", topics=["Design"])
    make_space(host=leo, title="Indie music", topics=["music", "business"])

    by_topic = api.get("/api/spaces/", {"q": "business"}).json()
    by_title = api.get("/api/spaces/", {"q": "crit"}).json()
    by_host = api.get("/api/spaces/", {"host": "LEO", "state": "live"}).json()

    assert [s["title"] for s in by_topic["results"]] == ["Indie music"]
    assert [s["title"] for s in by_title["results"]] == ["Design crit"]
    assert [s["title"] for s in by_host["results"]] == ["Indie music"]
