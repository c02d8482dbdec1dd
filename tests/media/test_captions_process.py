"""The captions process on its own: it says when it is behind and when it has caught up; the feed
starts another when one dies; a stale offer is not answered."""

import asyncio
import json
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from channels.layers import get_channel_layer

from media import signalling
from media.captions import feed as feed_module
from media.captions.feed import ROOT, CaptionsFeed
from media.worker import MediaWorker
from tests.media.speech import TWO_CITIES_S, speech_wav


def speech_chunks(tmp_path: Path) -> list[bytes]:
    path = speech_wav(tmp_path / "speech.wav", "two_cities.wav", TWO_CITIES_S, silence_after=1.0)
    with wave.open(str(path)) as source:
        samples = np.frombuffer(source.readframes(source.getnframes()), dtype=np.int16)
    usable = len(samples) - len(samples) % 3
    mono = (samples[:usable].astype(np.int32).reshape(-1, 3).sum(axis=1) // 3).astype(np.int16)
    return [mono[i : i + 1600].tobytes() for i in range(0, len(mono), 1600)]


def frame(header: dict, pcm: bytes = b"") -> bytes:
    body = json.dumps(header).encode() + b"\n" + pcm
    return struct.pack(">I", len(body)) + body


def test_a_backlog_is_announced_as_behind_then_caught_up_and_finals_still_come(tmp_path):
    # given: the captions process
    child = subprocess.Popen(
        [sys.executable, "-m", "media.captions.child", "--engine", "moonshine"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert json.loads(child.stdout.readline())["t"] == "ready"

        # when: 14 s of one speaker's audio arrive at once (far more than it recognises in real time)
        child.stdin.write(
            b"".join(
                frame({"t": "audio", "key": "1:2", "ms": i * 100}, pcm) for i, pcm in enumerate(speech_chunks(tmp_path))
            )
        )
        child.stdin.write(frame({"t": "end", "key": "1:2"}))
        child.stdin.flush()
        messages = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = json.loads(child.stdout.readline())
            messages.append(message)
            if message["t"] == "line" and message["final"] and "incredulity" in message["text"].lower():
                break
    finally:
        child.stdin.close()
        child.wait(timeout=10)

    # then: it said it was behind, then that it caught up, and the final lines came
    statuses = [m["behind"] for m in messages if m["t"] == "status"]
    assert statuses[:2] == [True, False]
    finals = [m for m in messages if m["t"] == "line" and m["final"]]
    assert finals and all(m["key"] == "1:2" and m["start_ms"] <= m["end_ms"] for m in finals)


async def test_the_feed_starts_another_captions_process_when_one_dies(monkeypatch):
    monkeypatch.setattr(feed_module, "RESTART_EVERY_S", 0.0)
    received: list[dict] = []
    captions = CaptionsFeed("moonshine", received.append, asyncio.get_running_loop())
    silence = np.zeros(1920, dtype=np.int16)
    try:
        captions.audio("1:2", 0, silence)
        first = captions.process
        first.kill()
        first.wait(timeout=10)

        captions.audio("1:2", 20, silence)

        assert captions.process is not first and captions.process.poll() is None
    finally:
        captions.close()


@pytest.mark.django_db(transaction=True)
async def test_an_offer_that_waited_past_its_age_is_not_answered():
    layer = get_channel_layer()
    reply_to = await layer.new_channel()
    media = MediaWorker("media.worker.stale", layer)

    await media.offer(
        {
            "type": signalling.OFFER,
            "space_id": 1,
            "user_id": None,
            "reply_to": reply_to,
            "sdp": "v=0",
            "publish": False,
            "sent_at": time.time() - signalling.OFFER_MAX_AGE_S - 1,
        }
    )

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(layer.receive(reply_to), timeout=0.5)
