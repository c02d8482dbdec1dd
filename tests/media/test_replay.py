"""The replay of an ended space: its audio served with range requests, who may hear it, clips of it,
deleting and expiry, the REC mark and the recording switch."""

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import AuditEntry, Block
from media.models import Clip, Recording
from media.recording.services import recordings_expire
from rooms import services
from rooms.models import Space
from tests.factories import UserFactory
from tests.media.recordings import decode
from tests.media.replay_files import peak_hz, recording_of
from tests.rooms.scene import make_host, make_space, seat
from ticketing.models import Ticket, TicketState

pytestmark = pytest.mark.django_db

TONES = ((440, 5), (0, 2), (880, 3))


def ended_recorded_space(**fields) -> tuple[Space, Recording]:
    space = make_space(host=make_host(), title="Lighthouse radio", recording_enabled=True, **fields)
    services.space_end(actor=space.host, space_id=space.pk)
    return space, recording_of(space, *TONES)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_a_range_request_gets_exactly_those_bytes(client):
    _, recording = ended_recorded_space()
    whole = default_storage.open(recording.file.name).read()

    full = client.get(recording.get_audio_url())
    part = client.get(recording.get_audio_url(), headers={"range": "bytes=1000-1999"})
    tail = client.get(recording.get_audio_url(), headers={"range": "bytes=-500"})
    past = client.get(recording.get_audio_url(), headers={"range": f"bytes={len(whole)}-"})

    assert (full.status_code, full["Accept-Ranges"], full["Content-Type"]) == (200, "bytes", "audio/ogg")
    assert body(full) == whole
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 1000-1999/{len(whole)}"
    assert part["Content-Length"] == "1000"
    assert body(part) == whole[1000:2000]
    assert (tail.status_code, body(tail)) == (206, whole[-500:])
    assert (past.status_code, past["Content-Range"]) == (416, f"bytes */{len(whole)}")


def test_a_ticketed_spaces_replay_is_for_its_ticket_holders_and_host(client):
    space, recording = ended_recorded_space()
    Space.objects.filter(pk=space.pk).update(is_ticketed=True)
    holder, ticketless = UserFactory(), UserFactory()
    Ticket.objects.create(
        space=space,
        buyer=holder,
        state=TicketState.PAID,
        paid_at=timezone.now(),
        amount_minor=500,
        currency="usd",
        application_fee_minor=50,
    )

    anonymous = client.get(recording.get_audio_url())
    client.force_login(ticketless)
    refused = client.get(recording.get_audio_url(), headers={"range": "bytes=0-99"})
    page = client.get(space.get_absolute_url())
    client.force_login(holder)
    allowed = client.get(recording.get_audio_url(), headers={"range": "bytes=0-99"})
    client.force_login(space.host)
    host = client.get(recording.get_audio_url(), headers={"range": "bytes=0-99"})

    assert anonymous.status_code == 403
    assert refused.status_code == 403
    assert b"<audio" not in page.content
    assert "This space&#x27;s replay and transcript are for its ticket holders." in page.content.decode()
    assert (allowed.status_code, host.status_code) == (206, 206)


def test_someone_the_host_blocked_gets_no_replay(client, api):
    space, recording = ended_recorded_space()
    blocked = UserFactory()
    Block.objects.create(blocker=space.host, blocked=blocked)
    client.force_login(blocked)
    api.force_authenticate(blocked)

    assert client.get(recording.get_audio_url()).status_code == 403
    listing = api.get(f"/api/spaces/{space.pk}/recordings/")
    assert (listing.status_code, listing.json()["code"]) == (403, "blocked")


def test_the_replay_page_has_the_player_the_transcript_lines_to_seek_and_the_profile_lists_it(client):
    space, recording = ended_recorded_space()
    services.caption_line_store(
        space_id=space.pk, speaker_id=space.host_id, line_key="a", text="Welcome aboard.", start_ms=1500, end_ms=2500
    )

    page = client.get(space.get_absolute_url()).content.decode()
    profile = client.get(space.host.get_absolute_url()).content.decode()

    assert f'src="{recording.get_audio_url()}"' in page
    assert 'data-seek="1500"' in page and "Welcome aboard." in page
    assert "ended early" not in page
    client.force_login(UserFactory())
    signed_in = client.get(space.get_absolute_url()).content.decode()
    assert 'name="start" value="0" min="0" max="10"' in signed_in  # seconds, not milliseconds
    assert f'Speakers: <a href="{space.host.get_absolute_url()}">{space.host.name}</a>' in page
    assert space.get_absolute_url() in profile and "Replays" in profile


def test_the_beat_task_deletes_expired_recordings_and_clips_file_and_row():
    space, recording = ended_recorded_space()
    _, kept = ended_recorded_space()
    name = recording.file.name
    Recording.objects.filter(pk=recording.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    clip = Clip.objects.create(
        space=space, maker=space.host, file=name, expires_at=timezone.now() - timedelta(minutes=1)
    )

    from media.tasks import recordings_expire_task

    report = recordings_expire_task.delay().get()

    assert report == {"recordings": 1, "clips": 1}
    assert not Recording.objects.filter(pk=recording.pk).exists()
    assert not Clip.objects.filter(pk=clip.pk).exists()
    assert not default_storage.exists(name)
    assert Recording.objects.filter(pk=kept.pk).exists() and default_storage.exists(kept.file.name)
    assert recordings_expire() == {"recordings": 0, "clips": 0}


def test_a_clip_of_seconds_two_to_five_is_three_seconds_of_the_first_tone(api, django_capture_on_commit_callbacks):
    space, recording = ended_recorded_space()
    listener = UserFactory()
    api.force_authenticate(listener)

    with django_capture_on_commit_callbacks(execute=True) as queued:  # the cut is queued as the request commits
        made = api.post(
            f"/api/recordings/{recording.pk}/clips/", {"start_ms": 2000, "duration_ms": 3000}, format="json"
        )

    assert (made.status_code, made.json()["state"], len(queued)) == (202, "pending", 1), made.json()
    clip = Clip.objects.get(token=made.json()["token"])
    with default_storage.open(clip.file.name) as file:
        samples = decode(file)
    assert abs(len(samples) / 48_000 - 3.0) <= 0.1
    assert abs(peak_hz(samples) - 440) < 5
    assert (clip.start_ms, clip.state) == (2000, "ready")
    assert space.numbers.clips == 1
    page = api.get(clip.get_absolute_url())
    assert page.status_code == 200 and clip.get_audio_url() in page.content.decode()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"start_ms": 0, "duration_ms": 31_000}, "duration_ms"),
        ({"start_ms": 0, "duration_ms": 500}, "duration_ms"),
        ({"start_ms": -1}, "start_ms"),
        ({"start_ms": "soon"}, "start_ms"),
    ],
)
def test_a_bad_clip_request_says_what_is_wrong_and_makes_nothing(api, data, field):
    _, recording = ended_recorded_space()
    api.force_authenticate(UserFactory())

    response = api.post(f"/api/recordings/{recording.pk}/clips/", data, format="json")

    assert response.status_code == 400 and field in str(response.json())
    assert not Clip.objects.exists()


def test_a_clip_must_start_within_the_recording(api):
    _, recording = ended_recorded_space()
    api.force_authenticate(UserFactory())

    response = api.post(f"/api/recordings/{recording.pk}/clips/", {"start_ms": 60_000}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "bad_clip")
    assert not Clip.objects.exists()


def test_a_clip_is_deleted_by_its_maker_or_the_host_not_by_others(api, django_capture_on_commit_callbacks):
    _, recording = ended_recorded_space()
    maker, other = UserFactory(), UserFactory()
    api.force_authenticate(maker)
    with django_capture_on_commit_callbacks(execute=True):
        token = api.post(f"/api/recordings/{recording.pk}/clips/", {"start_ms": 0}, format="json").json()["token"]
    name = Clip.objects.get(token=token).file.name

    api.force_authenticate(other)
    refused = api.delete(f"/api/clips/{token}/")
    api.force_authenticate(maker)
    deleted = api.delete(f"/api/clips/{token}/")

    assert refused.status_code == 403
    assert deleted.status_code == 204
    assert not Clip.objects.filter(token=token).exists() and not default_storage.exists(name)
    assert AuditEntry.objects.filter(action="media.clip.deleted", actor=maker).exists()


def test_the_host_deletes_a_recording_sooner_and_clips_made_from_it_stay(api, django_capture_on_commit_callbacks):
    space, recording = ended_recorded_space()
    api.force_authenticate(UserFactory())
    with django_capture_on_commit_callbacks(execute=True):
        token = api.post(f"/api/recordings/{recording.pk}/clips/", {"start_ms": 0}, format="json").json()["token"]
    refused = api.delete(f"/api/recordings/{recording.pk}/")
    api.force_authenticate(space.host)

    deleted = api.delete(f"/api/recordings/{recording.pk}/")

    assert refused.status_code == 403
    assert deleted.status_code == 204
    assert not default_storage.exists(recording.file.name)
    assert api.get(f"/api/clips/{token}/").json()["state"] == "ready"


def test_only_moderators_switch_recording_each_switch_audited_and_everyone_sees_rec(api, client):
    space = make_space(host=make_host())
    speaker, listener = UserFactory(), UserFactory()
    seat(space, speaker, role="speaker")
    seat(space, listener)
    api.force_authenticate(speaker)
    refused = api.post(f"/api/spaces/{space.pk}/commands/", {"type": "set_recording", "on": True}, format="json")
    client.force_login(listener)
    before = client.get(space.get_absolute_url()).content.decode()
    api.force_authenticate(space.host)

    done = api.post(f"/api/spaces/{space.pk}/commands/", {"type": "set_recording", "on": True}, format="json")
    after = client.get(space.get_absolute_url()).content.decode()
    detail = api.get(f"/api/spaces/{space.pk}/").json()

    assert refused.status_code == 403
    assert done.status_code == 200
    assert detail["recording_enabled"] is True
    assert AuditEntry.objects.filter(action="rooms.recording.on", actor=space.host).count() == 1
    assert 'data-rec title="This space is being recorded' in before and "hidden>● REC" in before.replace("\n", "")
    rec_badge = after[after.index('class="badge badge-rec"') :][:200]
    assert "hidden" not in rec_badge.split(">")[0]


def test_clipping_a_live_space_that_is_not_recorded_is_refused(api):
    space = make_space(host=make_host())
    api.force_authenticate(UserFactory())

    response = api.post(f"/api/spaces/{space.pk}/clips/")

    assert (response.status_code, response.json()["code"]) == (409, "not_recording")


def test_staff_delete_a_recording_in_the_admin_and_its_file_goes_too(client):
    _, recording = ended_recorded_space()
    staff = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(staff)

    listing = client.get("/admin/media/recording/")
    response = client.post(f"/admin/media/recording/{recording.pk}/delete/", {"post": "yes"})

    assert listing.status_code == 200
    assert response.status_code == 302
    assert not Recording.objects.filter(pk=recording.pk).exists()
    assert not default_storage.exists(recording.file.name)
    assert AuditEntry.objects.filter(action="media.recording.deleted", actor=staff).exists()


def test_recording_files_are_never_served_as_plain_uploads(client):
    _, recording = ended_recorded_space()

    direct = client.get(f"/uploads/{recording.file.name}")

    assert direct.status_code == 404


def test_the_replay_pages_clip_form_makes_a_clip_and_opens_its_page(client, django_capture_on_commit_callbacks):
    space, recording = ended_recorded_space()
    client.force_login(UserFactory())

    with django_capture_on_commit_callbacks(execute=True):
        made = client.post(f"/spaces/{space.pk}/clips/", {"recording": recording.pk, "start": "2.0", "length": "3"})
    bad = client.post(
        f"/spaces/{space.pk}/clips/", {"recording": recording.pk, "start": "later", "length": "3"}, follow=True
    )

    clip = Clip.objects.get()
    assert made.status_code == 302 and made["Location"] == clip.get_absolute_url()
    assert clip.start_ms == 2000 and abs(clip.duration_ms - 3000) <= 20
    page = client.get(clip.get_absolute_url()).content.decode()
    assert clip.get_audio_url() in page and "Lighthouse radio" in page
    assert "Give the clip&#x27;s start and length in seconds." in bad.content.decode()
    assert Clip.objects.count() == 1


def test_a_live_clip_no_worker_cut_fails_after_a_while_and_says_so(api):
    space = make_space(host=make_host(), recording_enabled=True)
    clip = Clip.objects.create(
        space=space, maker=space.host, asked_at=timezone.now(), expires_at=timezone.now() + timedelta(days=30)
    )
    api.force_authenticate(space.host)

    waiting = api.get(f"/api/clips/{clip.token}/").json()
    Clip.objects.filter(pk=clip.pk).update(created_at=timezone.now() - timedelta(seconds=60))
    failed = api.get(f"/api/clips/{clip.token}/").json()

    assert waiting["state"] == "pending"
    assert (failed["state"], failed["failure"]) == ("failed", "The audio server didn't cut it in time; try again.")


def test_a_play_counts_once_per_person_however_often_it_is_posted(client, api):
    space, recording = ended_recorded_space()
    ann, ben = UserFactory(), UserFactory()
    client.force_login(ann)
    for _ in range(3):
        assert client.post(f"/recordings/{recording.pk}/played/").status_code == 204
    api.force_authenticate(ben)
    assert api.post(f"/api/recordings/{recording.pk}/plays/").status_code == 204
    assert api.post(f"/api/recordings/{recording.pk}/plays/").status_code == 204

    recording.refresh_from_db()
    assert recording.plays == 2
    assert space.numbers.replay_plays == 2
    assert client.get(f"/recordings/{recording.pk}/played/").status_code == 405


def test_the_profiles_replays_cost_the_same_queries_for_one_or_many_and_leave_out_what_the_viewer_may_not_hear(
    client, django_assert_max_num_queries
):
    host = make_host()
    first = make_space(host=host, title="Replay 0", recording_enabled=True)
    services.space_end(actor=host, space_id=first.pk)
    recording_of(first, (440, 1))
    viewer = UserFactory()
    client.force_login(viewer)
    client.get(host.get_absolute_url())
    with CaptureQueriesContext(connection) as one:
        client.get(host.get_absolute_url())
    for n in range(1, 6):
        space = make_space(host=host, title=f"Replay {n}", recording_enabled=True)
        services.space_end(actor=host, space_id=space.pk)
        recording_of(space, (440, 1))
    removed_from = Space.objects.get(title="Replay 3")
    removed_from.blocks.create(user=viewer)

    with django_assert_max_num_queries(len(one)):
        page = client.get(host.get_absolute_url()).content.decode()

    assert "Replay 0" in page and "Replay 5" in page
    assert "Replay 3" not in page
