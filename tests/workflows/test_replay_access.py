"""One rule for what an ended ticketed space leaves behind: its replay (page, API, audio file), its
transcript (page, API, WebVTT) and its clips (page, API, audio) are for the host and paid ticket
holders; someone refunded, blocked by the host, removed from the space, or without a ticket gets
none of them, even if they were in the space (`rooms.selectors.replay_decision`, the ticket check
given to rooms by `workflows.apps`)."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.utils import timezone

from accounts import services as accounts_services
from media.recording.services import clip_from_replay
from rooms import selectors, services
from rooms.models import Role, Space
from tests.factories import UserFactory
from tests.media.replay_files import recording_of
from tests.rooms.scene import make_host, make_space, seat
from ticketing.models import Ticket, TicketState

pytestmark = pytest.mark.django_db

SAID = "Welcome to the paid lighthouse hour."


def ticket(space: Space, buyer, state: TicketState) -> Ticket:
    return Ticket.objects.create(
        space=space,
        buyer=buyer,
        state=state,
        paid_at=timezone.now(),
        amount_minor=500,
        currency="usd",
        application_fee_minor=50,
    )


@pytest.fixture
def ended_ticketed_space(django_capture_on_commit_callbacks):
    """A ticketed recorded space that ran with five people in its audience, then ended with a
    transcript, a replay and a clip: `holder` kept her ticket; `refunded` got his money back after the
    space; `blocked` holds a paid ticket but the host blocked her afterwards; `removed` holds one and the
    host removed him during the space; `ticketless` never bought one."""
    host = make_host(username="host")
    space = make_space(host=host, title="Paid lighthouse hour", recording_enabled=True)
    Space.objects.filter(pk=space.pk).update(is_ticketed=True)
    people = {name: UserFactory(username=name) for name in ("holder", "refunded", "blocked", "removed", "ticketless")}
    for name in ("holder", "refunded", "blocked", "removed"):
        ticket(space, people[name], TicketState.PAID)
        seat(space, people[name])
    services.participant_remove(actor=host, space_id=space.pk, target=people["removed"])
    services.caption_line_store(
        space_id=space.pk, speaker_id=host.pk, line_key="1", text=SAID, start_ms=1_000, end_ms=3_000
    )
    services.space_end(actor=host, space_id=space.pk)
    recording = recording_of(space, (440, 3))
    with django_capture_on_commit_callbacks(execute=True):  # its cut is queued as it commits
        clip = clip_from_replay(actor=host, recording_id=recording.pk, start_ms=0, duration_ms=2_000)
    Ticket.objects.filter(space=space, buyer=people["refunded"]).update(state=TicketState.REFUNDED)
    accounts_services.user_block(blocker=host, blocked=people["blocked"])
    return space, recording, clip, {"host": host, **people}


def endpoints(space: Space, recording, clip) -> dict[str, str]:
    return {
        "transcript api": f"/api/spaces/{space.pk}/transcript/",
        "transcript webvtt": f"/spaces/{space.pk}/transcript.vtt",
        "replay audio": recording.get_audio_url(),
        "replay api": f"/api/spaces/{space.pk}/recordings/",
        "recording api": f"/api/recordings/{recording.pk}/",
        "clip page": clip.get_absolute_url(),
        "clip audio": clip.get_audio_url(),
        "clip api": f"/api/clips/{clip.token}/",
    }


def statuses(client: Client, urls: dict[str, str]) -> dict[str, int]:
    return {what: client.get(url).status_code for what, url in urls.items()}


@pytest.mark.parametrize("name", ["refunded", "blocked", "removed", "ticketless", None])
def test_the_refunded_blocked_removed_and_ticketless_get_no_transcript_replay_or_clip(ended_ticketed_space, name):
    # given
    space, recording, clip, people = ended_ticketed_space
    client = Client()
    if name:
        client.force_login(people[name])

    # when
    answers = statuses(client, endpoints(space, recording, clip))
    page = client.get(space.get_absolute_url()).content.decode()

    # then
    assert answers == dict.fromkeys(answers, 403)
    assert SAID not in page
    assert "<audio" not in page


@pytest.mark.parametrize("name", ["holder", "host"])
def test_ticket_holders_and_the_host_get_the_transcript_replay_and_clip(ended_ticketed_space, name):
    # given
    space, recording, clip, people = ended_ticketed_space
    client = Client()
    client.force_login(people[name])

    # when
    answers = statuses(client, endpoints(space, recording, clip))
    page = client.get(space.get_absolute_url()).content.decode()
    vtt = client.get(f"/spaces/{space.pk}/transcript.vtt").content.decode()

    # then
    assert answers == dict.fromkeys(answers, 200)
    assert SAID in page and SAID in vtt
    assert "<audio" in page


def test_a_refused_transcript_says_why_with_the_replays_code(ended_ticketed_space):
    space, _, _, people = ended_ticketed_space
    client = Client()

    anonymous = client.get(f"/api/spaces/{space.pk}/transcript/").json()
    client.force_login(people["refunded"])
    refunded = client.get(f"/api/spaces/{space.pk}/transcript/").json()
    client.force_login(people["blocked"])
    blocked = client.get(f"/api/spaces/{space.pk}/transcript/").json()

    assert anonymous == {
        "code": "login_required",
        "detail": "Log in with a ticket to hear this replay or read its transcript.",
    }
    assert refunded == {
        "code": "ticket_required",
        "detail": "This space's replay and transcript are for its ticket holders.",
    }
    assert blocked == {"code": "blocked", "detail": "You can't hear this space's replay or read its transcript."}


def found_by_search(viewer, query: str) -> list[str]:
    return [space.title for space in selectors.spaces_search(viewer=viewer, query=query)]


def test_what_was_said_in_a_ticketed_space_finds_it_only_for_those_who_may_read_its_transcript(
    ended_ticketed_space,
):
    # given: "welcome" was said in the ticketed space, and is in no title; an open space says it too
    space, _, _, people = ended_ticketed_space
    other = make_space(title="Open mic")
    services.caption_line_store(
        space_id=other.pk, speaker_id=other.host_id, line_key="1", text="Welcome, all.", start_ms=0, end_ms=900
    )
    viewers = {**people, "staff": UserFactory(is_staff=True), "anonymous": AnonymousUser()}

    # when
    by_what_was_said = {name: found_by_search(viewer, "welcome") for name, viewer in viewers.items()}
    by_title = {name: found_by_search(viewer, "lighthouse") for name, viewer in viewers.items()}

    # then: the transcript's words find the ticketed space for those who may read it, and nobody else
    assert by_what_was_said == {
        "host": ["Open mic", space.title],
        "holder": ["Open mic", space.title],
        "staff": ["Open mic", space.title],
        "refunded": ["Open mic"],
        "blocked": ["Open mic"],
        "removed": ["Open mic"],
        "ticketless": ["Open mic"],
        "anonymous": ["Open mic"],
    }
    # and its title is still found by anyone whom its host didn't block
    assert by_title == {name: ([] if name == "blocked" else [space.title]) for name in viewers}


def test_the_search_filter_gives_the_replay_decision_for_every_viewer_and_space(ended_ticketed_space):
    # given: the ticketed space, a speaker it let in without a ticket, the blocked person's unticketed
    # space with the same host, and an unticketed space they were removed from
    space, _, _, people = ended_ticketed_space
    invited = UserFactory(username="invited")
    seat(space, invited, Role.SPEAKER)
    open_space = make_space(host=people["host"], title="Open hour")
    elsewhere = make_space(title="Elsewhere")
    seat(elsewhere, people["ticketless"])
    services.participant_remove(actor=elsewhere.host, space_id=elsewhere.pk, target=people["ticketless"])
    viewers = [*people.values(), invited, UserFactory(is_staff=True), AnonymousUser()]
    spaces = list(Space.objects.filter(pk__in=[space.pk, open_space.pk, elsewhere.pk]))  # as stored

    # when: each viewer and space, by the set rule and by the one-space rule
    by_filter = {
        (str(viewer), spaced.title): Space.objects.filter(
            selectors.replayable_spaces(user=viewer), pk=spaced.pk
        ).exists()
        for viewer in viewers
        for spaced in spaces
    }
    by_decision = {
        (str(viewer), spaced.title): selectors.replay_decision(user=viewer, space=spaced).allowed
        for viewer in viewers
        for spaced in spaces
    }

    # then
    assert by_filter == by_decision
    assert sorted(pair for pair, allowed in by_decision.items() if not allowed) == [
        ("AnonymousUser", "Paid lighthouse hour"),
        ("blocked", "Open hour"),
        ("blocked", "Paid lighthouse hour"),
        ("refunded", "Paid lighthouse hour"),
        ("removed", "Paid lighthouse hour"),
        ("ticketless", "Elsewhere"),
        ("ticketless", "Paid lighthouse hour"),
    ]
