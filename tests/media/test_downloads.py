"""Downloads of replays and clips (issue 24, item 4): ranges read with bounds (416, never 500), bodies sent
in chunks as they are read under ASGI, at most a few downloads at once per person, and a real daphne's
memory bounded while twenty slow readers download a 100 MB recording."""

import asyncio
import os
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, default_storage
from django.utils import timezone

from media import downloads
from media.models import Recording, RecordingState
from media.ranges import CHUNK
from rooms import services as rooms_services
from spaces_site.handler import SiteHandler
from tests.media.replay_files import recording_of
from tests.rooms.scene import make_host, make_space

MB = 1024 * 1024


def ended_recorded_space():
    space = make_space(host=make_host(), title="Lighthouse radio", recording_enabled=True)
    rooms_services.space_end(actor=space.host, space_id=space.pk)
    return space


def recording_with_file(space, size: int, *, sparse: bool = False) -> Recording:
    """A finished recording whose file is `size` bytes (zeros; a sparse file costs no disk or time)."""
    if sparse:
        name = f"recordings/space-{space.pk}/big.ogg"
        path = Path(settings.MEDIA_ROOT) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as file:
            file.truncate(size)
    else:
        name = default_storage.save(f"recordings/space-{space.pk}/zeros.ogg", ContentFile(bytes(size)))
    now = timezone.now()
    return Recording.objects.create(
        space=space,
        state=RecordingState.READY,
        file=name,
        started_at=now - timedelta(hours=2),
        ended_at=now,
        duration_ms=7_200_000,
        size_bytes=size,
        expires_at=now + timedelta(days=30),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "asked",
    [
        "bytes=" + "9" * 8000 + "-",
        "bytes=0-" + "9" * 8000,
        "bytes=-" + "9" * 8000,
        "bytes=abc-",
        "bytes=-",
        "bytes=2000-1000",
        "bytes=1000-2000 junk",
    ],
    ids=["8000 digits first", "8000 digits last", "8000 digits suffix", "letters", "no number", "backwards", "junk"],
)
def test_a_malformed_or_absurd_range_is_answered_416_not_500(client, asked):
    recording = recording_of(ended_recorded_space(), (440, 1))

    answer = client.get(recording.get_audio_url(), headers={"range": asked})

    assert answer.status_code == 416
    assert answer["Content-Range"] == f"bytes */{recording.size_bytes}"


@pytest.mark.django_db
@pytest.mark.parametrize("asked", ["items=0-99", "bytes=0-99, 200-299"])
def test_a_range_of_another_unit_or_several_ranges_get_the_whole_file(client, asked):
    recording = recording_of(ended_recorded_space(), (440, 1))

    answer = client.get(recording.get_audio_url(), headers={"range": asked})

    assert (answer.status_code, answer["Content-Length"]) == (200, str(recording.size_bytes))
    assert len(b"".join(answer.streaming_content)) == recording.size_bytes


@pytest.mark.django_db
def test_a_person_past_four_downloads_at_once_is_answered_429_until_one_ends(client):
    # given: one visitor with four downloads going (their bodies not read yet)
    recording = recording_of(ended_recorded_space(), (440, 1))
    going = [client.get(recording.get_audio_url(), headers={"range": "bytes=0-99"}) for _ in range(4)]
    assert [answer.status_code for answer in going] == [206] * 4

    # when: a fifth is asked, then one of the four ends and it is asked again
    refused = client.get(recording.get_audio_url())
    first = b"".join(going[0].streaming_content)  # read to its end (the test client then closes it)
    again = client.get(recording.get_audio_url(), headers={"range": "bytes=0-99"})

    # then
    assert (refused.status_code, refused["Retry-After"]) == (429, str(downloads.RETRY_AFTER_S))
    assert "You have 4 downloads going" in refused.content.decode()
    assert again.status_code == 206 and b"".join(again.streaming_content) == first
    for answer in going[1:]:
        b"".join(answer.streaming_content)
    assert downloads.slots.going("addr:127.0.0.1") == 0


@pytest.mark.django_db
def test_with_the_accel_setting_nginx_is_told_to_send_the_file(client, settings):
    settings.SPACES_MEDIA_ACCEL_REDIRECT = "/protected-media/"
    recording = recording_of(ended_recorded_space(), (440, 1))

    answer = client.get(recording.get_audio_url(), headers={"range": "bytes=0-99"})

    assert (answer.status_code, answer.content) == (200, b"")
    assert answer["X-Accel-Redirect"] == f"/protected-media/{recording.file.name}"
    assert answer["Content-Type"] == "audio/ogg"


class CountedFile:
    def __init__(self, file) -> None:
        self.file = file

    def read(self, *args) -> bytes:
        data = self.file.read(*args)
        CountingStorage.read_bytes += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self.file, name)


class CountingStorage(FileSystemStorage):
    """The site's storage, counting the bytes read from the files it opens."""

    read_bytes = 0

    def _open(self, name, mode="rb"):
        return File(CountedFile(open(self.path(name), mode)))


@pytest.mark.django_db(transaction=True)
def test_under_asgi_the_body_is_sent_in_chunks_the_first_before_the_file_is_read(monkeypatch):
    # given: an 8 MB recording, served by the site's ASGI handler as daphne runs it
    recording = recording_with_file(ended_recorded_space(), 8 * MB)
    storage = CountingStorage(location=settings.MEDIA_ROOT)
    monkeypatch.setattr("media.views.default_storage", storage)
    CountingStorage.read_bytes = 0
    bodies: list[tuple[int, int]] = []  # each body message: its size, and what had been read when it was sent

    async def get() -> None:
        inbox = asyncio.Queue()
        await inbox.put({"type": "http.request", "body": b"", "more_body": False})

        async def send(message):
            if message["type"] == "http.response.body":
                bodies.append((len(message.get("body", b"")), CountingStorage.read_bytes))

        path = recording.get_audio_url()
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
        }  # fmt: skip
        await asyncio.wait_for(SiteHandler()(scope, inbox.get, send), 10)

    # when: it is downloaded on a loop and thread of its own, as daphne's
    thread = threading.Thread(target=lambda: asyncio.run(get()))
    thread.start()
    thread.join(timeout=20)

    # then: many body messages, the first sent when one chunk had been read, all of the file in the end
    assert len(bodies) >= 8 * MB // CHUNK
    assert bodies[0] == (CHUNK, CHUNK)
    assert sum(size for size, _ in bodies) == 8 * MB == CountingStorage.read_bytes


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


class SlowReader:
    """An HTTP client on a socket of its own (its own loopback address: a person of its own) that reads
    a few KB at a time."""

    def __init__(self, port: int, path: str, address: str, *, headers: str = "") -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        self.socket.bind((address, 0))
        self.socket.settimeout(10)
        self.socket.connect(("127.0.0.1", port))
        self.socket.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode())
        self.received = b""

    def read(self, size: int = 4096) -> None:
        self.received += self.socket.recv(size)

    @property
    def status(self) -> int:
        return int(self.received.split(b" ", 2)[1]) if b" " in self.received else 0

    def close(self) -> None:
        self.socket.close()


@pytest.mark.django_db(transaction=True)
def test_twenty_slow_downloads_of_a_100_mb_recording_keep_daphne_under_200_mb_more(asgi_live_server):
    # given: a public space's 100 MB recording, and daphne's memory once it has served a download
    recording = recording_with_file(ended_recorded_space(), 100 * MB, sparse=True)
    path = recording.get_audio_url()
    warm = SlowReader(asgi_live_server.port, path, "127.0.0.1", headers="Range: bytes=0-9999\r\n")
    while len(warm.received) < 10_000:
        warm.read(65536)
    warm.close()
    pid = asgi_live_server.process.pid
    before = rss_bytes(pid)

    # when: twenty people download it, each reading a little at a time, for a few seconds
    readers = [SlowReader(asgi_live_server.port, path, f"127.0.0.{n}") for n in range(2, 22)]
    peak, grown_past, until = before, False, time.monotonic() + 5
    try:
        while time.monotonic() < until and not grown_past:
            for reader in readers:
                reader.read()
            peak = max(peak, rss_bytes(pid))
            grown_past = peak - before > 200 * MB  # stop at once: the old code would go on to gigabytes
            time.sleep(0.02)
        statuses = [reader.status for reader in readers]
    finally:
        for reader in readers:
            reader.close()
    if grown_past:
        asgi_live_server.kill()

    # then: every download started at once, and daphne held no file in memory
    assert not grown_past, f"daphne grew by {(peak - before) / MB:.0f} MB"
    assert statuses == [200] * 20
    assert all(len(reader.received) > 100_000 for reader in readers)
    print(f"daphne: {before / MB:.0f} MB before, {(peak - before) / MB:.1f} MB more at the peak")

    # and: downloads a person dropped give their places back
    dropped = [SlowReader(asgi_live_server.port, path, "127.0.0.30") for _ in range(4)]
    for reader in dropped:
        reader.read()
        reader.close()
    deadline, status = time.monotonic() + 5, 429
    while status == 429 and time.monotonic() < deadline:
        again = SlowReader(asgi_live_server.port, path, "127.0.0.30", headers="Range: bytes=0-99\r\n")
        again.read()
        status = again.status
        again.close()
        time.sleep(0.1)
    assert status == 206
    assert os.path.getsize(Path(settings.MEDIA_ROOT) / recording.file.name) == 100 * MB


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_downloads_going_on_hold_none_of_the_pools_connections():
    # given: daphne on PostgreSQL with a pool of two connections, and a public space's recording
    from django.db import connections

    from tests.live_server_asgi import AsgiLiveServer

    recording = recording_with_file(ended_recorded_space(), 20 * MB, sparse=True)
    database = dict(connections["default"].settings_dict)
    database.update(
        ENGINE="spaces_site.postgresql",
        CONN_MAX_AGE=0,
        OPTIONS={**database.get("OPTIONS", {}), "pool": {"min_size": 1, "max_size": 2, "timeout": 3}},
    )
    with AsgiLiveServer({"default": database}) as site:
        # when: eight people download it slowly, and meanwhile someone opens the home page
        readers = [SlowReader(site.port, recording.get_audio_url(), f"127.0.0.{n}") for n in range(2, 10)]
        try:
            for _ in range(3):
                for reader in readers:
                    reader.read()
            page = SlowReader(site.port, "/", "127.0.0.20")
            page.read()
            page.close()
            statuses = [reader.status for reader in readers]
        finally:
            for reader in readers:
                reader.close()

    # then: every download started (none waited for a connection past the pool's 3 s), and so did the page
    assert statuses == [200] * 8
    assert page.status == 200
