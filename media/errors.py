from spaces_site.errors import Conflict, InvalidRequest, NotFound, ServiceError


class RecordingNotFound(NotFound):
    code = "recording_not_found"


class ClipNotFound(NotFound):
    code = "clip_not_found"


class NotRecording(Conflict):
    code = "not_recording"


class BadClip(InvalidRequest):
    code = "bad_clip"


class ClipLimited(ServiceError):
    """Past one of the clip limits (`media.recording.clip_limits`); `retry_after` says when it frees up."""

    status = 429
    code = "clip_limit"
