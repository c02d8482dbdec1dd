"""Clip limits (issue 24, item 5): clips asked per person and per space in an hour, stored clips per
person and per space, each refused 429 `clip_limit` with `Retry-After`; the cut is queued after commit
and reads only its own seconds of the recording."""

from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from media.models import Clip, ClipState
from media.recording import clip_limits, services
from media.recording.clip_limits import MB
from rooms import services as rooms_services
from tests.concurrency import run_together
from tests.factories import UserFactory
from tests.media.replay_files import recording_of
from tests.rooms.scene import make_host, make_space

pytestmark = pytest.mark.django_db


def ended_recorded_space(*segments):
    space = make_space(host=make_host(), title="Lighthouse radio", recording_enabled=True)
    rooms_services.space_end(actor=space.host, space_id=space.pk)
    return space, recording_of(space, *(segments or ((440, 12),)))


def clip_asked(api, recording, start_ms: int = 0, duration_ms: int = 1_000):
    return api.post(
        f"/api/recordings/{recording.pk}/clips/", {"start_ms": start_ms, "duration_ms": duration_ms}, format="json"
    )


def test_a_persons_eleventh_clip_in_an_hour_is_refused_429_until_the_first_leaves_the_hour(
    api, django_capture_on_commit_callbacks
):
    # given: the default limits, and a listener who made ten clips, then deleted one of them
    _, recording = ended_recorded_space()
    fan = UserFactory()
    api.force_authenticate(fan)
    with django_capture_on_commit_callbacks(execute=True):
        made = [clip_asked(api, recording, start_ms=n * 1_000) for n in range(10)]
    assert [answer.status_code for answer in made] == [202] * 10
    assert api.delete(f"/api/clips/{made[-1].json()['token']}/").status_code == 204

    # when: the eleventh is asked, and again once the first is more than an hour old
    refused = clip_asked(api, recording)
    Clip.objects.filter(token=made[0].json()["token"]).update(created_at=timezone.now() - timedelta(minutes=61))
    with django_capture_on_commit_callbacks(execute=True):
        later = clip_asked(api, recording)

    # then: 429 with the wait until the oldest leaves the hour (the deleted one still counts), nothing made
    assert (refused.status_code, refused.json()["code"]) == (429, "clip_limit")
    assert 3590 <= int(refused["Retry-After"]) <= 3600
    assert "10 clips in the last hour" in refused.json()["detail"]
    assert later.status_code == 202
    assert Clip.objects.filter(maker=fan).count() == 10
    assert set(Clip.objects.filter(maker=fan).values_list("state", flat=True)) == {ClipState.READY}


def test_the_form_answers_a_clip_past_the_limit_with_a_429_page(client, settings):
    # given
    settings.SPACES_CLIPS_PER_HOUR = 1
    space, recording = ended_recorded_space()
    client.force_login(UserFactory())
    client.post(f"/spaces/{space.pk}/clips/", {"recording": recording.pk, "start": "0", "length": "1"})

    # when
    refused = client.post(f"/spaces/{space.pk}/clips/", {"recording": recording.pk, "start": "1", "length": "1"})

    # then
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 3000
    assert "1 clips in the last hour" in refused.content.decode()
    assert Clip.objects.count() == 1


def test_a_space_takes_so_many_clips_an_hour_from_everyone_together(api, settings):
    # given
    settings.SPACES_CLIPS_PER_SPACE_PER_HOUR = 3
    _, recording = ended_recorded_space()
    people = [UserFactory() for _ in range(4)]

    # when
    answers = []
    for person in people:
        api.force_authenticate(person)
        answers.append(clip_asked(api, recording))

    # then
    assert [answer.status_code for answer in answers] == [202, 202, 202, 429]
    assert "This space has had 3 clips" in answers[-1].json()["detail"]
    assert answers[-1].has_header("Retry-After")


def test_a_spaces_clip_storage_cap_holds_even_when_clips_take_more_than_expected(
    api, settings, monkeypatch, django_capture_on_commit_callbacks
):
    # given: a 1 MB cap for the space's clips, 30 s clips of a recording, and estimates far too low,
    # so that only the check after each cut stands between the space and its cap
    settings.SPACES_CLIP_STORAGE_PER_SPACE_MB = 1
    space, recording = ended_recorded_space((440, 31))
    monkeypatch.setattr(clip_limits, "expected_bytes", lambda **_: 1)
    clip_bytes = recording.size_bytes * 30 / 31
    people = [UserFactory() for _ in range(int(MB / clip_bytes) + 3)]

    # when: each of them clips the same 30 s
    for person in people:
        api.force_authenticate(person)
        with django_capture_on_commit_callbacks(execute=True):
            assert clip_asked(api, recording, duration_ms=30_000).status_code == 202

    # then: the clips kept fit the cap; those that didn't fit failed, saying why, and left no file
    kept = Clip.objects.filter(space=space, state=ClipState.READY)
    failed = Clip.objects.filter(space=space, state=ClipState.FAILED)
    assert sum(kept.values_list("size_bytes", flat=True)) <= MB
    assert kept.count() == int(MB / min(kept.values_list("size_bytes", flat=True)))
    assert failed.exists() and set(failed.values_list("size_bytes", flat=True)) == {0}
    assert "This space's clips take" in failed.first().failure
    assert len(default_storage.listdir(f"clips/space-{space.pk}")[1]) == kept.count()


def test_a_spaces_full_clip_storage_refuses_the_next_clip_429_until_the_oldest_expires(api, settings):
    # given: a space whose stored clips already fill its 1 MB
    settings.SPACES_CLIP_STORAGE_PER_SPACE_MB = 1
    space, recording = ended_recorded_space()
    soonest = timezone.now() + timedelta(days=2)
    for days in (2, 5):
        Clip.objects.create(
            space=space,
            maker=UserFactory(),
            state=ClipState.READY,
            size_bytes=MB // 2,
            created_at=timezone.now() - timedelta(days=1),
            expires_at=timezone.now() + timedelta(days=days),
        )
    api.force_authenticate(UserFactory())

    # when
    refused = clip_asked(api, recording)

    # then
    assert (refused.status_code, refused.json()["code"]) == (429, "clip_limit")
    assert refused.json()["detail"] == (
        "This space's clips take 1.0 MB of its 1 MB: delete some clips, or wait for older ones to expire."
    )
    wait = int(refused["Retry-After"])
    assert abs(timezone.now() + timedelta(seconds=wait) - soonest) < timedelta(seconds=5)
    assert Clip.objects.filter(space=space).count() == 2


def test_a_persons_clip_storage_counts_their_clips_in_every_space(api, settings):
    # given: someone whose clips elsewhere take all of their 1 MB but a few bytes
    settings.SPACES_CLIP_STORAGE_PER_PERSON_MB = 1
    _, recording = ended_recorded_space()
    elsewhere, _ = ended_recorded_space()
    fan = UserFactory()
    Clip.objects.create(
        space=elsewhere,
        maker=fan,
        state=ClipState.READY,
        size_bytes=MB - 100,
        expires_at=timezone.now() + timedelta(days=3),
    )
    api.force_authenticate(fan)

    # when
    refused = clip_asked(api, recording)

    # then
    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Your clips take 1.0 MB of your 1 MB")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twelve_clips_asked_at_once_by_one_person_make_ten():
    # given
    _, recording = ended_recorded_space()
    fan = UserFactory()

    # when
    results = run_together(
        [
            lambda n=n: services.clip_from_replay(
                actor=fan, recording_id=recording.pk, start_ms=n * 500, duration_ms=1_000
            )
            for n in range(12)
        ]
    )

    # then
    refused = [result for result in results if isinstance(result, Exception)]
    assert len(refused) == 2 and {type(error).__name__ for error in refused} == {"ClipLimited"}
    assert Clip.objects.filter(maker=fan).count() == 10


def test_asking_for_clips_faster_than_the_api_allows_is_throttled_before_the_hourly_limit(api, settings):
    # given: an hourly limit out of the way, and someone asking for clips as fast as they can
    settings.SPACES_CLIPS_PER_HOUR = 100
    _, recording = ended_recorded_space()
    api.force_authenticate(UserFactory())

    # when
    answers = [clip_asked(api, recording) for _ in range(21)]

    # then: 20 a minute (SPACES_API_CLIP_RATE), then DRF's throttle, whose short wait the site remembers
    assert [answer.status_code for answer in answers] == [202] * 20 + [429]
    assert answers[-1].json()["code"] == "throttled" and int(answers[-1]["Retry-After"]) <= 60
    assert Clip.objects.count() == 20
