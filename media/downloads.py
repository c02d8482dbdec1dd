"""Downloads of recordings and clips: at most `SPACES_DOWNLOADS_PER_PERSON` at once per person, or the front
server sends the file.

A download holds a socket, an open file and a little memory for as long as
its reader takes; a person past the cap is answered 429 with `Retry-After`
until one of theirs ends. A person is a signed-in account, or a visitor's
address. The count is this web process's own (each process has its own
sockets and memory to protect; behind a balancer a person's downloads may
spread over several).

With `SPACES_MEDIA_ACCEL_REDIRECT` set (e.g. `/protected-media/`, an
`internal` nginx location aliased to MEDIA_ROOT), the answer is only headers
with `X-Accel-Redirect`: nginx reads the file and answers the range itself,
and the web process holds nothing while it does (nginx's `limit_conn` is
then the cap). Only for files on the local file system.
"""

import threading
from collections import Counter
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage
from django.http import HttpRequest, HttpResponse

from media.ranges import ranged_file_response

# What a person past the cap is told to wait: a replay's download is usually a player's next range.
RETRY_AFTER_S = 5


class DownloadSlots:
    """How many downloads each person has going in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # taken in request threads, given back on the event loop
        self._going: Counter[str] = Counter()

    def take(self, person: str, *, limit: int) -> bool:
        with self._lock:
            if limit and self._going[person] >= limit:
                return False
            self._going[person] += 1
            return True

    def give_back(self, person: str) -> None:
        with self._lock:
            self._going[person] -= 1
            if self._going[person] <= 0:
                del self._going[person]

    def going(self, person: str) -> int:
        with self._lock:
            return self._going[person]


slots = DownloadSlots()


def download_response(
    request: HttpRequest, storage: Storage, name: str, *, person: str, content_type: str, filename: str
) -> HttpResponse:
    """The file for this person (who may have it: the caller checked), ranged and streamed, within the cap."""
    prefix = settings.SPACES_MEDIA_ACCEL_REDIRECT
    if prefix and isinstance(storage, FileSystemStorage):
        return _front_server_sends(prefix, name, content_type=content_type, filename=filename)
    limit = settings.SPACES_DOWNLOADS_PER_PERSON
    if not slots.take(person, limit=limit):
        response = HttpResponse(
            f"You have {limit} downloads going: wait for one to finish.\n", status=429, content_type="text/plain"
        )
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
    return ranged_file_response(
        request,
        storage,
        name,
        content_type=content_type,
        filename=filename,
        on_close=lambda: slots.give_back(person),
    )


def _front_server_sends(prefix: str, name: str, *, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content_type=content_type)
    response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(name)
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, max-age=3600"
    return response
