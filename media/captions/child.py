"""The captions process: `python -m media.captions.child --engine moonshine` (started by the media worker;
`--model-dir DIR --device cuda` for faster-whisper on a GPU).

Reads frames on stdin, each a 4-byte big-endian length and then that many
bytes: a JSON header line and, for audio, 16 kHz mono int16 samples:

    {"t": "audio", "key": "<space>:<user>", "ms": <ms since the space started>}
    {"t": "end", "key": ...}           the speaker's stream ends (left, muted, captions off)

and writes one JSON object per line on stdout:

    {"t": "ready", "engine": "moonshine"}
    {"t": "line", "key", "line", "text", "start_ms", "end_ms", "final"}
    {"t": "status", "behind": true|false, "backlog_s": 1.5}
    {"t": "stats", "audio_s": ..., "cpu_s": ...}          every few seconds

A reader thread queues frames as they come, so the media worker's writes
never block on recognition; when the backlog passes `BEHIND_S` of audio the
process says so, and partial updates come less often (finals are kept). It
runs at a lower priority (nice 10) than the worker, so when the machine is
short of CPU it is captions that wait, never the audio.
Stream times are mapped back to the space's clock: audio only flows while a
speaker is unmuted, so each stream keeps where its audio resumed.
It exits when stdin closes (the worker stopped or died).
"""

import argparse
import json
import os
import queue
import struct
import sys
import threading
import time

import numpy as np

from media.captions.engines import SAMPLE_RATE, Line, load_engine

BEHIND_S = 2.0  # behind past this much queued audio, caught up again under CAUGHT_UP_S
CAUGHT_UP_S = 0.5
CALM_UPDATE_S = 0.5
BEHIND_UPDATE_S = 2.0
STATS_EVERY_S = 2.0


class SpeakerStream:
    """One speaker's engine stream and the map from its audio time to the space's clock."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.samples = 0
        # (stream sample offset, space ms) where audio resumed after a gap
        self.resumed: list[tuple[int, int]] = []
        self.next_ms: int | None = None

    def add(self, ms: int, pcm: np.ndarray) -> list[Line]:
        if self.next_ms is None or abs(ms - self.next_ms) > 40:
            self.resumed.append((self.samples, ms))
        self.samples += len(pcm)
        self.next_ms = ms + len(pcm) * 1000 // SAMPLE_RATE
        return self.stream.add(pcm)

    def space_ms(self, stream_s: float) -> int:
        offset = int(stream_s * SAMPLE_RATE)
        base_offset, base_ms = self.resumed[0] if self.resumed else (0, 0)
        for start, ms in self.resumed:
            if start > offset:
                break
            base_offset, base_ms = start, ms
        return base_ms + (offset - base_offset) * 1000 // SAMPLE_RATE


def read_frames(source, inbox: queue.Queue) -> None:
    while True:
        head = source.read(4)
        if len(head) < 4:
            inbox.put(None)
            return
        (size,) = struct.unpack(">I", head)
        body = source.read(size)
        header, _, pcm = body.partition(b"\n")
        inbox.put((json.loads(header), pcm))


def emit(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve(engine_name: str, model_dir: str, device: str) -> None:
    # Recognition yields the CPU to the media worker's 20 ms tick: captions fall behind, audio doesn't.
    os.nice(10)
    engine = load_engine(engine_name, update_interval=CALM_UPDATE_S, model_dir=model_dir, device=device)
    inbox: queue.Queue = queue.Queue()
    threading.Thread(target=read_frames, args=(sys.stdin.buffer, inbox), daemon=True).start()
    emit({"t": "ready", "engine": engine_name})
    streams: dict[str, SpeakerStream] = {}
    behind = False
    audio_s = 0.0
    last_stats = time.monotonic()
    while True:
        item = inbox.get()
        if item is None:
            break
        header, pcm = item
        key = header["key"]
        if header["t"] == "audio":
            samples = np.frombuffer(pcm, dtype=np.int16)
            audio_s += len(samples) / SAMPLE_RATE
            speaker = streams.get(key)
            if speaker is None:
                speaker = streams[key] = SpeakerStream(engine.open_stream())
                if behind:
                    speaker.stream.set_update_interval(BEHIND_UPDATE_S)
            send_lines(key, speaker, speaker.add(header["ms"], samples))
        elif header["t"] == "end" and key in streams:
            speaker = streams.pop(key)
            send_lines(key, speaker, speaker.stream.close())
        # A backlog of 100 ms frames: how much audio waits behind this one.
        backlog_s = inbox.qsize() * 0.1
        if (not behind and backlog_s > BEHIND_S) or (behind and backlog_s < CAUGHT_UP_S):
            behind = not behind
            for speaker in streams.values():
                speaker.stream.set_update_interval(BEHIND_UPDATE_S if behind else CALM_UPDATE_S)
            emit({"t": "status", "behind": behind, "backlog_s": round(backlog_s, 1)})
        if time.monotonic() - last_stats >= STATS_EVERY_S:
            last_stats = time.monotonic()
            emit({"t": "stats", "audio_s": round(audio_s, 2), "cpu_s": round(time.process_time(), 2)})


def send_lines(key: str, speaker: SpeakerStream, lines: list[Line]) -> None:
    for line in lines:
        emit(
            {
                "t": "line",
                "key": key,
                "line": line.line_id,
                "text": line.text,
                "start_ms": speaker.space_ms(line.start_s),
                "end_ms": speaker.space_ms(line.end_s),
                "final": line.final,
            }
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="moonshine")
    parser.add_argument("--model-dir", default="", help="a local model folder (faster-whisper)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (faster-whisper)")
    args = parser.parse_args()
    serve(args.engine, args.model_dir, args.device)
