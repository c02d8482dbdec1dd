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

from media.recording.ogg import PACKET_MS, SILENCE, OggOpusWriter

# Fill a gap once the clock is this many packets behind the wall clock (260 ms). A room up to 220 ms
# late catches up by ticking faster (`Room._run`: 200 ms past the next tick) and skips ticks only
# beyond that; with the phase between the recorder's start and the ticks, that reads as up to 12
# packets behind. Filling sooner would add silence before the catch-up's own packets (the recording
# would run ahead of the room for good).
GAP_PACKETS = 13


class Recorder:
    def __init__(self, recording_id: int, path: Path, *, head: bytes, clock=time.monotonic) -> None:
        self.recording_id = recording_id
        self.path = path
        self.clock = clock
        self.file = open(path, "wb", buffering=0)  # noqa: SIM115 (closed by `close`)
        fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.writer = OggOpusWriter(self.file, head=head)
        self.started = clock()
        self.padded = 0
        self.closed = False

    def write(self, packet: bytes) -> None:
        behind = int((self.clock() - self.started) * 1000 // PACKET_MS) - self.writer.packets
        if behind >= GAP_PACKETS:
            for _ in range(behind):
                self.writer.write(SILENCE)
            self.padded += behind
        self.writer.write(packet)

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
