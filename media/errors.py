from spaces_site.errors import Conflict, InvalidRequest, NotAllowed, NotFound


class RecordingNotFound(NotFound):
    code = "recording_not_found"


class ClipNotFound(NotFound):
    code = "clip_not_found"


class ReplayRefused(NotAllowed):
    """Who may hear a space's replay and clips: its ticket holders for a ticketed one, nobody the host blocked."""

    code = "replay_refused"


class NotRecording(Conflict):
    code = "not_recording"


class BadClip(InvalidRequest):
    code = "bad_clip"
