from spaces_site.errors import Conflict, InvalidRequest, NotFound


class RecordingNotFound(NotFound):
    code = "recording_not_found"


class ClipNotFound(NotFound):
    code = "clip_not_found"


class NotRecording(Conflict):
    code = "not_recording"


class BadClip(InvalidRequest):
    code = "bad_clip"
