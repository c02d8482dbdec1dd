"""Production topology: the web side and a media worker in separate processes, talking over Redis."""

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connection

from tests.factories import UserFactory
from tests.media.clients import join_as_listener, join_as_speaker, peaks, rms, wait_connected, write_tone
from tests.rooms.scene import make_space, seat
from tests.rooms.ws import connect

pytestmark = [pytest.mark.media, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
db = database_sync_to_async
ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database, as the worker process must reach it."""
    db_settings = connection.settings_dict
    if connection.vendor == "postgresql":
        user, host, port = db_settings["USER"], db_settings["HOST"] or "127.0.0.1", db_settings["PORT"] or 5432
        return f"postgres://{user}@{host}:{port}/{db_settings['NAME']}"
    return f"sqlite:///{db_settings['NAME']}"


@pytest.fixture
def worker_process(settings):
    settings.SPACES_MEDIA_IN_PROCESS = False
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "spaces_site.settings",
        "SECRET_KEY": "tests-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SPACES_MEDIA_ICE_LOOPBACK": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "media_worker", "--index", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert "listening" in process.stdout.readline()
    yield process
    process.terminate()
    process.wait(timeout=10)


async def test_a_worker_process_serves_audio_over_redis(worker_process, tmp_path):
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "spaces_site.redis_layer.ProcessReaderRedisChannelLayer"
    space = await db(make_space)()
    singer, fan = await db(UserFactory)(), await db(UserFactory)()
    await db(seat)(space, singer, muted=False, role="speaker")
    singer_socket, _ = await connect(space.pk, singer)
    fan_socket, _ = await connect(space.pk, fan)

    singer_pc, _, answer = await join_as_speaker(singer_socket, write_tone(tmp_path / "t.wav", 440))
    fan_pc, fan_heard, _ = await join_as_listener(fan_socket)
    await wait_connected(singer_pc)
    await wait_connected(fan_pc)
    await asyncio.sleep(1.0)
    heard = await fan_heard.record(1.5)

    assert answer["type"] == "media.answer"
    assert rms(heard) > 500 and peaks(heard, count=1) == [440]
    for pc in (singer_pc, fan_pc):
        await pc.close()
    for socket in (singer_socket, fan_socket):
        await socket.disconnect()
