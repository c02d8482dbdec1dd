"""The media worker killed mid-recording: the next worker keeps what was written, as "ended early"."""

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.test import Client
from django.utils import timezone

from media.models import Recording, RecordingState
from rooms.models import Space, SpaceState
from tests.media.clients import peaks, rms, write_tone
from tests.media.recordings import RATE, decode, seconds
from tests.topology.cluster import MediaClient, Socket, until
from tests.topology.scene import live_space

pytestmark = [pytest.mark.media, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
db = database_sync_to_async
SPEAK_S = 4


def recordings_of(space_id: int) -> list[Recording]:
    return list(Recording.objects.filter(space_id=space_id).order_by("pk"))


async def recordings_are(space_id: int, count: int, **fields) -> bool:
    return await db(Recording.objects.filter(space_id=space_id, **fields).count)() == count


def page_of(space_id: int, user) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/spaces/{space_id}/")
    assert response.status_code == 200
    return response.content.decode()


async def test_a_recording_whose_worker_is_killed_is_kept_up_to_the_kill_as_ended_early(cluster, settings, tmp_path):
    # given: a recorded space whose speaker is heard through a separate media worker, writing its
    # spool and storage in this test's folders (the worker reads them from its environment)
    settings.SPACES_RECORDING_SPOOL_DIR = tmp_path / "spool"
    settings.MEDIA_ROOT = tmp_path / "uploads"
    cluster.env.update(SPACES_RECORDING_SPOOL_DIR=str(tmp_path / "spool"), MEDIA_ROOT=str(tmp_path / "uploads"))
    scene = await db(live_space)()
    await db(Space.objects.filter(pk=scene.space.pk).update)(recording_enabled=True)
    web = cluster.start_web()
    first = cluster.start_media_worker()
    host_socket = await Socket([web.ws_url], scene.path, cookie=scene.cookies["host"]).start()
    speaker_socket = await Socket([web.ws_url], scene.path, cookie=scene.cookies["speaker"]).start()
    ear_socket = await Socket([web.ws_url], scene.path, cookie=scene.cookies["ear"]).start()
    speaker = await MediaClient(speaker_socket, wav=write_tone(tmp_path / "a440.wav", 440)).start()
    ear = await MediaClient(ear_socket).start()
    await until(lambda: rms(ear.heard.since_last(0.5)) > 500, timeout=15, what="the listener hears the speaker")
    [recording] = await db(recordings_of)(scene.space.pk)
    assert recording.state == RecordingState.RECORDING
    spool = Path(recording.spool_path)
    assert spool.is_relative_to(tmp_path / "spool") and spool.exists()

    # when: after a few seconds of speech the worker is killed (SIGKILL: it closes nothing)
    await asyncio.sleep(SPEAK_S)
    killed_at = timezone.now()
    first.kill()

    # then: nothing finishes the recording while no worker runs; its spool holds what was written
    await asyncio.sleep(1.0)
    assert (await db(Recording.objects.get)(pk=recording.pk)).state == RecordingState.RECORDING
    assert spool.exists()

    # when: a new worker starts, as a supervisor would start it
    cluster.start_media_worker()

    # then: the old recording is ready, ended early, and plays up to the kill (within a second)
    recording = await until(
        lambda: db(Recording.objects.filter(pk=recording.pk, state=RecordingState.READY).first)(),
        timeout=15,
        what="the new worker keeps the old recording",
    )
    recorded_s = (killed_at - recording.started_at).total_seconds()
    assert recording.ended_early
    assert recording.file.name and recording.size_bytes == recording.file.size > 0
    assert not spool.exists(), "the spool file was moved into storage"
    heard = decode(recording.file.path)
    played_s = len(heard) / RATE
    assert abs(played_s - recorded_s) <= 1.0, (played_s, recorded_s)
    assert abs(recording.duration_ms / 1000 - played_s) < 0.025
    # its end is reckoned from what was written; the kill itself lands a moment after `killed_at`
    assert recording.ended_at <= killed_at + timedelta(milliseconds=100)
    assert peaks(seconds(heard, played_s - 2.0, played_s), count=1) == [440]
    assert rms(seconds(heard, played_s - 2.0, played_s)) > 500
    print(f"recording kept after the kill: {played_s:.2f} s of the {recorded_s:.2f} s recorded")

    # and: the speaker is heard again, and the space records on in a new recording
    await until(lambda: rms(ear.heard.since_last(0.5)) > 500, timeout=15, what="the listener hears again")
    await until(lambda: recordings_are(scene.space.pk, 2), timeout=5, what="a new recording begins")

    # when: the host ends the space
    await host_socket.send({"type": "end"})
    await until(
        lambda: db(Space.objects.filter(pk=scene.space.pk, state=SpaceState.ENDED).exists)(),
        timeout=10,
        what="the space ends",
    )
    await until(
        lambda: recordings_are(scene.space.pk, 2, state=RecordingState.READY),
        timeout=10,
        what="the new recording is ready",
    )

    # then: its page says the first recording ended early (and only that one did)
    later = (await db(recordings_of)(scene.space.pk))[1]
    assert not later.ended_early
    page = await db(page_of)(scene.space.pk, scene.users["ear"])
    assert "ended early" in page
    for client in (speaker, ear):
        await client.close()
    for socket in (host_socket, speaker_socket, ear_socket):
        await socket.close()
