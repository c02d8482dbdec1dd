"""A room's recording in the worker: the mix's Opus packets into a spool file, the timeline kept true.

The room hands over each packet its one encoder made (`Room.tick`); the
recorder writes it as it comes. If the room's clock skipped ticks (the worker
fell far behind), the gap is filled with silent packets, so a replay's second
N is the live second N. The spool file is locked while it is written: a
worker that finds an unlocked spool (`services.recordings_recover`) knows its
writer died and keeps what it wrote.
"""

import fcntl
import time
from pathlib import Path

from media.recording.ogg import SILENCE, OggOpusWriter


class Recorder:
    def __init__(self, recording_id: int, path: Path, *, head: bytes) -> None:
        self.recording_id = recording_id
        self.path = path
        self.file = open(path, "wb", buffering=0)  # noqa: SIM115 (closed by `close`)
        fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.writer = OggOpusWriter(self.file, head=head)
        self.started = time.monotonic()
        self.padded = 0
        self.closed = False

    def write(self, packet: bytes) -> None:
        self.writer.write(packet)

    def gap(self, packets: int) -> None:
        """The room's clock skipped this many ticks: the same time of silence, so the timeline holds."""
        for _ in range(packets):
            self.writer.write(SILENCE)
        self.padded += packets

    def elapsed_ms(self) -> int:
        """Where the recording is now, on its own timeline."""
        return self.writer.duration_ms

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.writer.close()
        finally:
            self.file.close()  # the lock goes with it
