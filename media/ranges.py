"""Serve a stored file with HTTP range requests (RFC 9110 §14), so an `<audio>` player can seek.

Django's `FileResponse` sends whole files. One `bytes=` range is answered 206
with exactly those bytes (`first-last`, `first-`, or the last `-N`), a range
past the end 416; several ranges, or a header that can't be read, get the
whole file (a server may ignore Range). Any storage backend works: the file
is opened through it and read in chunks from the range's start.
"""

import re

from django.core.files.storage import Storage
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 64 * 1024


def _chunks(file, length: int):
    try:
        while length > 0:
            data = file.read(min(CHUNK, length))
            if not data:
                return
            length -= len(data)
            yield data
    finally:
        file.close()


def ranged_file_response(
    request: HttpRequest, storage: Storage, name: str, *, content_type: str, filename: str
) -> HttpResponse:
    size = storage.size(name)
    start, last, status = 0, size - 1, 200
    match = RANGE.match(request.headers.get("Range", "").strip())
    if match and (match[1] or match[2]):
        if match[1]:
            start = int(match[1])
            last = min(int(match[2]), size - 1) if match[2] else size - 1
        else:
            start = max(0, size - int(match[2]))
        if start >= size or start > last:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            response["Accept-Ranges"] = "bytes"
            return response
        status = 206
    file = storage.open(name, "rb")
    file.seek(start)
    length = last - start + 1
    response = StreamingHttpResponse(_chunks(file, length), status=status, content_type=content_type)
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    # The access check ran for this person: shared caches must not keep it.
    response["Cache-Control"] = "private, max-age=3600"
    if status == 206:
        response["Content-Range"] = f"bytes {start}-{last}/{size}"
    return response
