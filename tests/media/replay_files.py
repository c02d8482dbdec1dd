"""Finished recordings for tests of the replay: real Ogg Opus files of tones, encoded as a room's mix is."""

import io
from datetime import timedelta

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from media.mixer import CHANNELS, FRAME_SAMPLES, SAMPLE_RATE, Mixer
from media.models import Recording, RecordingState
from media.recording.ogg import OggOpusWriter
from rooms.models import Space


def _tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    return (np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16)


def opus_file(*segments: tuple[float, float]) -> bytes:
    """An Ogg Opus file of (hz, seconds) segments (hz 0: silence), encoded once like a room's mix."""
    mono = np.concatenate(
        [_tone(hz, seconds) if hz else np.zeros(int(SAMPLE_RATE * seconds), np.int16) for hz, seconds in segments]
    )
    mixer, buffer = Mixer(), io.BytesIO()
    writer = OggOpusWriter(buffer, head=mixer.opus_head())
    for start in range(0, len(mono) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
        for packet in mixer.encode(np.repeat(mono[start : start + FRAME_SAMPLES], CHANNELS)):
            writer.write(packet)
    writer.close()
    return buffer.getvalue()


def recording_of(space: Space, *segments: tuple[float, float], offset_ms: int = 0, days: int = 30) -> Recording:
    """A finished recording of `space` in the default storage."""
    data = opus_file(*segments)
    name = default_storage.save(f"recordings/space-{space.pk}/test.ogg", ContentFile(data))
    duration_ms = round(sum(seconds for _, seconds in segments) * 1000) - 7
    now = timezone.now()
    return Recording.objects.create(
        space=space,
        state=RecordingState.READY,
        file=name,
        started_at=now - timedelta(milliseconds=duration_ms),
        ended_at=now,
        offset_ms=offset_ms,
        duration_ms=duration_ms,
        size_bytes=len(data),
        expires_at=now + timedelta(days=days),
    )


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[np.argmax(spectrum)])
