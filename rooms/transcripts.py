"""A space's transcript as WebVTT (https://www.w3.org/TR/webvtt1/): one cue per final caption line.

Each cue carries the speaker as a voice span (`<v Name>`), so players and
screen readers can say who spoke. Cue times are from the space's start.
"""

from collections.abc import Iterable

from rooms.models import CaptionLine


def vtt_time(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def _escape(text: str) -> str:
    # WebVTT cue text: &, < and > are markup; a "-->" would end the timing line.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def webvtt(lines: Iterable[CaptionLine]) -> str:
    cues = ["WEBVTT", ""]
    for number, line in enumerate(lines, 1):
        who = _escape(line.speaker.name if line.speaker else "Unknown speaker")
        cues += [
            str(number),
            f"{vtt_time(line.start_ms)} --> {vtt_time(line.end_ms)}",
            f"<v {who}>{_escape(line.text)}",
            "",
        ]
    return "\n".join(cues)
