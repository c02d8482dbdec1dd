"""Serve a stored file with HTTP range requests (RFC 9110 §14), so an `<audio>` player can seek, in chunks.

One `bytes=` range is answered 206 with exactly those bytes (`first-last`,
`first-`, or the last `-N`). A range past the end, a `bytes=` header that
can't be read, or a number of more than `MAX_DIGITS` digits is answered 416
with `Content-Range: bytes */<size>`, never read into an integer of any size.
Several ranges get the whole file (a server may ignore Range), and so does a
unit other than bytes (it must).

The body is read `CHUNK` bytes at a time. Under ASGI it is an async
iterator: Django's ASGI handler sends each chunk as it is read (a sync
iterator it would first read whole into a list), the reads run in a pool
thread (storage may be a network away), and daphne's `send` waits while the
client's socket is full (`spaces_site.daphne_backpressure`), so a slow
reader holds a chunk or two, not its file. The request's database
connection is handed back before the first chunk: a download lasts as long
as its reader, and must not hold one of the pool's connections meanwhile.
Any storage backend works: the file is opened through it and read from the
range's start.
"""

import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.core.files.storage import Storage
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

CHUNK = 64 * 1024
# A file's size has at most 18 digits (an exabyte); a longer number is no real range.
MAX_DIGITS = 18
ONE_RANGE = re.compile(rf"^bytes=(\d{{0,{MAX_DIGITS}}})-(\d{{0,{MAX_DIGITS}}})$")
BYTES_UNIT = re.compile(r"^bytes\s*=", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    start: int
    last: int  # inclusive, as Content-Range says it

    @property
    def length(self) -> int:
        return self.last - self.start + 1


class Unsatisfiable(Exception):
    """The Range header can't be served: malformed, absurd, or past the end (416)."""


def byte_range(header: str, size: int) -> ByteRange | None:
    """The range a `Range` header asks of a file of `size` bytes; None for the whole file."""
    header = header.strip()
    if not header or not BYTES_UNIT.match(header):
        return None  # no Range, or a unit we don't serve: ignored (RFC 9110 §14.2)
    if "," in header:
        return None  # several ranges: the whole file
    match = ONE_RANGE.match(header)
    if match is None or not (match[1] or match[2]):
        raise Unsatisfiable(header[:80])
    if match[1]:
        start = int(match[1])
        last = min(int(match[2]), size - 1) if match[2] else size - 1
    else:
        start, last = max(0, size - int(match[2])), size - 1
    if start >= size or start > last:
        raise Unsatisfiable(header[:80])
    return ByteRange(start, last)


def unsatisfiable_response(size: int) -> HttpResponse:
    response = HttpResponse(status=416)
    response["Content-Range"] = f"bytes */{size}"
    response["Accept-Ranges"] = "bytes"
    return response


def ranged_file_response(
    request: HttpRequest,
    storage: Storage,
    name: str,
    *,
    content_type: str,
    filename: str,
    on_close: Callable[[], None] | None = None,
) -> HttpResponse:
    """The file `name` of `storage`, whole (200) or the asked range (206), streamed in chunks.

    `on_close` is called once when the body is done with: sent, abandoned by
    the client, or never started (a 416, or a HEAD request).
    """
    closed = _Once(on_close)
    try:
        size = storage.size(name)
        try:
            asked = byte_range(request.headers.get("Range", ""), size)
        except Unsatisfiable:
            closed()
            return unsatisfiable_response(size)
        span = asked or ByteRange(0, size - 1)
        file = storage.open(name, "rb")
    except BaseException:
        closed()
        raise
    # Under ASGI an async iterator, which Django's handler sends as it goes (a sync one it reads whole first).
    body = _async_chunks(file, span, closed) if isinstance(request, ASGIRequest) else _chunks(file, span, closed)
    response = StreamingHttpResponse(body, status=206 if asked else 200, content_type=content_type)
    # Whatever happens to the body, the handler closes the response: the file and the caller's slot go too.
    response._resource_closers.append(file.close)
    response._resource_closers.append(closed)
    response["Content-Length"] = str(span.length)
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    # The access check ran for this person: shared caches must not keep it.
    response["Cache-Control"] = "private, max-age=3600"
    if asked:
        response["Content-Range"] = f"bytes {span.start}-{span.last}/{size}"
    return response


def _chunks(file, span: ByteRange, closed: "_Once") -> Iterator[bytes]:
    try:
        file.seek(span.start)
        left = span.length
        while left > 0:
            data = file.read(min(CHUNK, left))
            if not data:
                return
            left -= len(data)
            yield data
    finally:
        file.close()
        closed()


async def _async_chunks(file, span: ByteRange, closed: "_Once") -> AsyncIterator[bytes]:
    read = sync_to_async(file.read, thread_sensitive=False)
    try:
        # In the request's own thread, where the view opened it.
        await sync_to_async(_database_connections_back, thread_sensitive=True)()
        await sync_to_async(file.seek, thread_sensitive=False)(span.start)
        left = span.length
        while left > 0:
            data = await read(min(CHUNK, left))
            if not data:
                return
            left -= len(data)
            yield data
    finally:
        file.close()
        closed()


def _database_connections_back() -> None:
    """What the end of the request would do to this thread's connections (Django's `close_old_connections`),
    done now: with no persistent connections, each is closed (a pooled one goes back to the pool). One
    inside a transaction (a test's) is left alone."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


class _Once:
    """Call `callback` the first time this is called, never again."""

    def __init__(self, callback: Callable[[], None] | None) -> None:
        self.callback = callback

    def __call__(self) -> None:
        callback, self.callback = self.callback, None
        if callback is not None:
            callback()
