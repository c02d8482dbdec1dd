"""The media worker's side of its captions process: audio out, lines back, never waiting.

`CaptionsFeed.audio()` is called from the room's 20 ms tick with a speaker's
decoded frame (48 kHz stereo int16). It keeps the left channel, averages
each three samples down to 16 kHz, gathers 100 ms per speaker and queues the
chunk for a writer thread; a full queue drops the chunk (counted in
`dropped`) rather than hold up the tick. A reader thread hands each line the
child sends back to the event loop (`on_message`). A child that dies is
started again on the next audio, at most every `RESTART_EVERY_S`.
"""

import contextlib
import json
import logging
import os
import queue
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
CHUNK_FRAMES = 5  # 100 ms per write
QUEUE_CHUNKS = 600  # a minute of one speaker's audio
RESTART_EVERY_S = 5.0


def to_16k_mono(stereo_48k: np.ndarray) -> np.ndarray:
    left = stereo_48k[::2].astype(np.int32)
    usable = len(left) - len(left) % 3
    return (left[:usable].reshape(-1, 3).sum(axis=1) // 3).astype(np.int16)


class CaptionsFeed:
    def __init__(
        self, engine: str, on_message: Callable[[dict], None], loop, *, model_dir: str = "", device: str = "cpu"
    ) -> None:
        self.engine = engine
        self.engine_args = ["--engine", engine, "--model-dir", model_dir, "--device", device]
        self.on_message = on_message
        self.loop = loop
        self.process: subprocess.Popen | None = None
        self.outbox: queue.Queue = queue.Queue(maxsize=QUEUE_CHUNKS)
        self.pending: dict[str, tuple[int, list[np.ndarray]]] = {}
        self.started_at = 0.0
        self.frames_sent = 0  # 20 ms frames handed to the captions process
        self.dropped = 0

    # Called from the tick

    def audio(self, key: str, ms: int, stereo_48k: np.ndarray) -> None:
        if not self._running():
            return
        first_ms, frames = self.pending.get(key, (ms, []))
        frames.append(to_16k_mono(stereo_48k))
        self.frames_sent += 1
        if len(frames) >= CHUNK_FRAMES:
            self.pending.pop(key, None)
            self._queue({"t": "audio", "key": key, "ms": first_ms}, np.concatenate(frames).tobytes())
        else:
            self.pending[key] = (first_ms, frames)

    def end(self, key: str) -> None:
        """The speaker stopped (muted, left, captions off): finish their line."""
        if self.process is None:
            return
        first_ms, frames = self.pending.pop(key, (0, []))
        if frames:
            self._queue({"t": "audio", "key": key, "ms": first_ms}, np.concatenate(frames).tobytes())
        self._queue({"t": "end", "key": key}, b"")

    def _queue(self, header: dict, pcm: bytes) -> None:
        try:
            self.outbox.put_nowait(json.dumps(header).encode() + b"\n" + pcm)
        except queue.Full:
            self.dropped += 1

    # The process

    def _running(self) -> bool:
        if self.process is not None and self.process.poll() is None:
            return True
        if time.monotonic() - self.started_at < RESTART_EVERY_S:
            return False
        self._start()
        return True

    def _start(self) -> None:
        if self.process is not None:
            log.warning("captions process exited with %s; starting another", self.process.returncode)
        self.started_at = time.monotonic()
        self.pending.clear()
        self.outbox = queue.Queue(maxsize=QUEUE_CHUNKS)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "media.captions.child", *self.engine_args],
            cwd=ROOT,
            env={**os.environ, "MOONSHINE_ORT_SINGLE_THREAD": "1"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        threading.Thread(target=self._write, args=(self.process, self.outbox), daemon=True).start()
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()

    def _write(self, process: subprocess.Popen, outbox: queue.Queue) -> None:
        try:
            while (frame := outbox.get()) is not None:
                process.stdin.write(struct.pack(">I", len(frame)) + frame)
                process.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            return  # the child died; the next audio starts another

    def _read(self, process: subprocess.Popen) -> None:
        for raw in process.stdout:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            try:
                self.loop.call_soon_threadsafe(self.on_message, message)
            except RuntimeError:
                return  # the worker's event loop has closed (it is stopping): nobody to tell

    def close(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(queue.Full):
            self.outbox.put_nowait(None)  # or closing stdin below ends the writer
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.process = None
