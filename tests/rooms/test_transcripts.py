"""The transcript: stored final lines, WebVTT, the ended space's page, the API, search, and the captions switch."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from rooms import services
from rooms.errors import ActionNotAllowed, WrongState
from rooms.models import CaptionLine, Role, Space
from tests.factories import UserFactory
from tests.rooms.scene import make_host, make_space, seat

pytestmark = pytest.mark.django_db

CUE = re.compile(r"^(\d{2}):(\d{2}):(\d{2})\.(\d{3}) --> (\d{2}):(\d{2}):(\d{2})\.(\d{3})$")


def ended_space_with_lines(**fields) -> tuple[Space, list]:
    host = make_host(display_name="Hana Host")
    guest = UserFactory(display_name="Gus <Guest>")
    space = make_space(host=host, title="Night radio", **fields)
    lines = [
        (host, "Welcome to the show.", 1_000, 2_400),
        (guest, "Thanks for having me & my dog.", 2_600, 4_000),
        (host, "Let's talk about lighthouses.", 65_000, 67_500),
    ]
    for n, (who, text, start, end) in enumerate(lines):
        services.caption_line_store(
            space_id=space.pk, speaker_id=who.pk, line_key=f"{who.pk}-{n}", text=text, start_ms=start, end_ms=end
        )
    services.space_end(actor=host, space_id=space.pk)
    return space, lines


def parse_vtt(body: str) -> list[tuple[int, int, str]]:
    blocks = body.strip().split("\n\n")
    assert blocks[0] == "WEBVTT"
    cues = []
    for block in blocks[1:]:
        number, timing, text = block.split("\n")
        match = CUE.match(timing)
        assert number.isdigit() and match, block
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in match.groups())
        cues.append(((h1 * 3600 + m1 * 60 + s1) * 1000 + ms1, (h2 * 3600 + m2 * 60 + s2) * 1000 + ms2, text))
    return cues


def test_a_line_sent_twice_is_stored_once_and_empty_lines_not_at_all():
    space = make_space()
    for _ in range(2):
        services.caption_line_store(
            space_id=space.pk, speaker_id=space.host_id, line_key="7-1", text=" Hello. ", start_ms=10, end_ms=900
        )
    services.caption_line_store(space_id=space.pk, speaker_id=None, line_key="7-2", text=" ", start_ms=0, end_ms=1)

    assert list(CaptionLine.objects.values_list("text", "start_ms", "end_ms")) == [("Hello.", 10, 900)]


def test_the_webvtt_download_parses_with_cues_in_time_order_and_voices(client):
    space, lines = ended_space_with_lines()

    response = client.get(f"/spaces/{space.pk}/transcript.vtt")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/vtt; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    cues = parse_vtt(response.content.decode())
    assert [(start, end) for start, end, _ in cues] == [(s, e) for _, _, s, e in lines]
    assert cues == sorted(cues)
    assert cues[1][2] == "<v Gus &lt;Guest&gt;>Thanks for having me &amp; my dog."
    assert cues[2][2] == "<v Hana Host>Let's talk about lighthouses."


def test_the_ended_space_page_shows_its_transcript(client):
    space, _ = ended_space_with_lines()

    page = client.get(f"/spaces/{space.pk}/").content.decode()

    assert "Transcript" in page and "Let&#x27;s talk about lighthouses." in page
    assert "1:05" in page and f"/spaces/{space.pk}/transcript.vtt" in page


def test_a_live_space_page_offers_captions_not_a_transcript(client):
    space = make_space()

    page = client.get(f"/spaces/{space.pk}/").content.decode()

    assert 'id="cc"' in page and 'aria-live="polite"' in page and "Download transcript" not in page


def test_the_api_lists_the_transcript(api):
    space, lines = ended_space_with_lines()

    body = api.get(f"/api/spaces/{space.pk}/transcript/").json()

    assert [(r["speaker"]["name"], r["text"], r["start_ms"]) for r in body["results"]] == [
        (who.name, text, start) for who, text, start, _ in lines
    ]


def test_a_ticketed_spaces_transcript_follows_the_replays_rule(api, client):
    space, _ = ended_space_with_lines()
    Space.objects.filter(pk=space.pk).update(is_ticketed=True)
    outsider = UserFactory()

    anonymous = api.get(f"/api/spaces/{space.pk}/transcript/")
    client.force_login(outsider)
    download = client.get(f"/spaces/{space.pk}/transcript.vtt")
    api.force_authenticate(space.host)
    host = api.get(f"/api/spaces/{space.pk}/transcript/")

    assert (anonymous.status_code, anonymous.json()["code"]) == (403, "login_required")
    assert download.status_code == 403
    assert host.status_code == 200


def test_search_finds_a_space_by_what_was_said(client):
    ended_space_with_lines()
    make_space(title="Something else")

    page = client.get("/spaces/?q=lighthouses").content.decode()

    assert "Night radio" in page and "Something else" not in page


def test_only_moderators_switch_captions_and_each_switch_is_audited(api):
    host = make_host()
    space = make_space(host=host)
    listener = UserFactory()
    seat(space, listener, Role.LISTENER)

    api.force_authenticate(listener)
    refused = api.post(f"/api/spaces/{space.pk}/commands/", {"type": "set_captions", "on": False}, format="json")
    api.force_authenticate(host)
    done = api.post(f"/api/spaces/{space.pk}/commands/", {"type": "set_captions", "on": False}, format="json")

    assert refused.status_code == 403 and "turn captions on or off" in refused.json()["detail"]
    assert done.status_code == 200
    assert Space.objects.get(pk=space.pk).captions_enabled is False
    assert list(AuditEntry.objects.filter(action__startswith="rooms.captions").values_list("action", flat=True)) == [
        "rooms.captions.off"
    ]


def test_captions_of_an_ended_space_cannot_change():
    space, _ = ended_space_with_lines()

    with pytest.raises(WrongState):
        services.captions_set(actor=space.host, space_id=space.pk, on=False)
    assert Space.objects.get(pk=space.pk).captions_enabled is True


def test_transcripts_expire_with_the_recording_retention_unless_the_host_keeps_them(client, settings):
    # given: two ended spaces with transcripts, one kept by its host
    kept, _ = ended_space_with_lines()
    ended_space_with_lines()  # and another, nobody keeps
    client.force_login(kept.host)
    response = client.post(f"/spaces/{kept.pk}/transcript/keep/", {"keep": "1"})
    later = timezone.now() + timedelta(days=settings.SPACES_RECORDING_RETENTION_D, hours=1)

    # when: the retention passes
    early = services.transcripts_expire()
    deleted = services.transcripts_expire(now=later)

    # then: only the one nobody kept is gone, and the keeping is audited
    assert response.status_code == 302 and early == 0 and deleted == 3
    assert set(CaptionLine.objects.values_list("space_id", flat=True)) == {kept.pk}
    assert AuditEntry.objects.filter(action="rooms.transcript.kept").count() == 1


def test_only_the_host_keeps_a_transcript():
    space, _ = ended_space_with_lines()

    with pytest.raises(ActionNotAllowed):
        services.transcript_keep(actor=UserFactory(), space_id=space.pk, keep=True)
    assert Space.objects.get(pk=space.pk).transcript_kept is False


def test_a_site_without_a_captions_engine_offers_no_captions(client, settings):
    # given
    settings.SPACES_CAPTIONS_ENGINE = ""
    host = make_host()
    client.force_login(host)

    # when
    form = client.get("/spaces/new/").content.decode()
    space = make_space(host=host, captions_enabled=True)

    # then
    assert "Live captions" not in form
    assert space.captions_enabled is False
    with pytest.raises(WrongState):
        services.captions_set(actor=host, space_id=space.pk, on=True)


def test_keeping_a_transcript_needs_a_clear_answer(client):
    space, _ = ended_space_with_lines()
    client.force_login(space.host)

    response = client.post(f"/spaces/{space.pk}/transcript/keep/", {"keep": "maybe"})

    assert response.status_code == 400 and b"keep=1" in response.content
    assert Space.objects.get(pk=space.pk).transcript_kept is False
