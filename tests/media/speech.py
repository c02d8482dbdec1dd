"""Human speech for caption tests: recordings that ship inside the `moonshine-voice` wheel, and word error rate."""

import re
import wave
from pathlib import Path

import moonshine_voice
import numpy as np

ASSETS = Path(moonshine_voice.get_assets_path())

# The opening of A Tale of Two Cities, as read in two_cities.wav (0 to 13.4 s).
TWO_CITIES = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, "
    "it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity"
)
TWO_CITIES_S = (0.0, 13.4)
# Worstward Ho, as read in beckett.wav (the whole 10 s).
BECKETT = "Ever tried. Ever failed. No matter. Try again. Fail again. Fail better."
BECKETT_S = (0.0, 10.0)


def speech_wav(path: Path, source: str, span: tuple[float, float], *, silence_after: float = 6.0) -> Path:
    """A 48 kHz mono WAV of `span` seconds of an asset recording, then silence (lines end on a pause)."""
    with wave.open(str(ASSETS / source)) as recording:
        rate, channels = recording.getframerate(), recording.getnchannels()
        samples = np.frombuffer(recording.readframes(recording.getnframes()), dtype=np.int16)
    samples = samples.reshape(-1, channels)[:, 0]
    samples = samples[int(span[0] * rate) : int(span[1] * rate)]
    if rate != 48_000:
        positions = np.arange(0, len(samples), rate / 48_000)
        samples = np.interp(positions, np.arange(len(samples)), samples).astype(np.int16)
    samples = np.concatenate([samples, np.zeros(int(silence_after * 48_000), dtype=np.int16)])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48_000)
        out.writeframes(samples.tobytes())
    return path


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def word_error_rate(heard: str, reference: str) -> float:
    """Word-level Levenshtein distance over the reference's length."""
    hyp, ref = words(heard), words(reference)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[len(hyp)] / max(1, len(ref))
