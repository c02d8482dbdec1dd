"""Speech-recognition engines behind one small interface: a stream per speaker, audio in, lines out.

An engine is loaded once per captions process (`load_engine(name)`); each
speaker gets a `Stream` from `engine.open_stream()`. `Stream.add(samples)`
takes 16 kHz mono int16 samples and returns the lines that changed:
`Line(line_id, text, start_s, end_s, final)`, times in seconds of that
stream's audio. `Stream.close()` finishes the line in progress and returns
it final. Nothing here imports Django: the captions process stays light.

Engines:
- `moonshine` (default): Moonshine tiny-en from `moonshine-voice` 0.1.0, whose
  wheel carries the model (later versions download it at run time), run on
  onnxruntime with one thread per process.
- `pocketsphinx`: CMU PocketSphinx 5 with the US English model its wheel
  carries; lighter and much less accurate. `pip install pocketsphinx==5.1.1`.
- `faster-whisper`: Whisper on CTranslate2, from a local model folder
  (`model_dir`, nothing is downloaded) on the CPU or, with `device="cuda"`,
  a GPU: how a deployment runs a bigger model.
  Whisper decodes whole windows, so partials re-decode the line so far.
  `pip install faster-whisper`.
"""

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Line:
    line_id: str
    text: str
    start_s: float
    end_s: float
    final: bool


class Stream(ABC):
    @abstractmethod
    def add(self, samples: np.ndarray) -> list[Line]:
        """Take the next audio; return the lines that changed."""

    @abstractmethod
    def close(self) -> list[Line]:
        """Finish the line in progress (final)."""

    @abstractmethod
    def set_update_interval(self, seconds: float) -> None:
        """How often partial lines are worked out (the captions process slows them when behind)."""


class Engine(ABC):
    name = ""

    @abstractmethod
    def open_stream(self) -> Stream:
        """A recognition stream for one speaker."""


class MoonshineStream(Stream):
    def __init__(self, transcriber, update_interval: float) -> None:
        self.stream = transcriber.create_stream(update_interval=update_interval)
        self.changed: dict[str, Line] = {}
        self.stream.add_listener(self._on_event)
        self.stream.start()

    def _on_event(self, event) -> None:
        kind = type(event).__name__
        line = getattr(event, "line", None)
        if line is None or kind not in ("LineTextChanged", "LineCompleted", "LineUpdated"):
            return
        text = (line.text or "").strip()
        final = kind == "LineCompleted" or bool(getattr(line, "is_complete", False))
        if not text and not final:
            return
        key = str(line.line_id)
        if self.changed.get(key) and self.changed[key].final:
            return
        self.changed[key] = Line(key, text, line.start_time, line.start_time + line.duration, final)

    def add(self, samples: np.ndarray) -> list[Line]:
        self.stream.add_audio((samples.astype(np.float32) / 32768.0).tolist(), SAMPLE_RATE)
        return self._take()

    def close(self) -> list[Line]:
        self.stream.stop()
        lines = self._take()
        self.stream.close()
        return lines

    def set_update_interval(self, seconds: float) -> None:
        self.stream._update_interval = seconds  # moonshine-voice 0.1.0 has no setter for it

    def _take(self) -> list[Line]:
        lines = list(self.changed.values())
        self.changed.clear()
        return lines


class MoonshineEngine(Engine):
    name = "moonshine"

    def __init__(self, *, update_interval: float = 0.5, **options) -> None:
        # One thread per stream: the captions process scales by speakers, not by intra-op threads.
        os.environ.setdefault("MOONSHINE_ORT_SINGLE_THREAD", "1")
        import moonshine_voice

        model = os.path.join(moonshine_voice.get_assets_path(), "tiny-en")
        self.update_interval = update_interval
        self.transcriber = moonshine_voice.Transcriber(
            model, moonshine_voice.ModelArch.TINY, update_interval, options={"identify_speakers": "false"}
        )

    def open_stream(self) -> Stream:
        return MoonshineStream(self.transcriber, self.update_interval)


class PocketSphinxStream(Stream):
    """PocketSphinx's endpointer cuts the audio into utterances; each is a line, partial while it lasts."""

    def __init__(self, pocketsphinx, update_interval: float) -> None:
        self.endpointer = pocketsphinx.Endpointer(sample_rate=SAMPLE_RATE)
        self.decoder = pocketsphinx.Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
        self.buffer = b""
        self.in_line = False
        self.lines = 0
        self.start_s = 0.0
        self.update_every = max(1, int(update_interval / self.endpointer.frame_length))
        self.frames_since_update = 0

    def _key(self) -> str:
        return f"ps{self.lines}"

    def set_update_interval(self, seconds: float) -> None:
        self.update_every = max(1, int(seconds / self.endpointer.frame_length))

    def add(self, samples: np.ndarray) -> list[Line]:
        self.buffer += samples.astype(np.int16).tobytes()
        out: list[Line] = []
        size = self.endpointer.frame_bytes
        while len(self.buffer) >= size:
            frame, self.buffer = self.buffer[:size], self.buffer[size:]
            out += self._frame(self.endpointer.process(frame))
        return out

    def _frame(self, speech: bytes | None) -> list[Line]:
        if speech is None:
            return []
        if not self.in_line:
            self.in_line, self.start_s, self.frames_since_update = True, self.endpointer.speech_start, 0
            self.decoder.start_utt()
        self.decoder.process_raw(speech)
        if not self.endpointer.in_speech:
            return self._finish(self.endpointer.speech_end)
        self.frames_since_update += 1
        if self.frames_since_update >= self.update_every:
            self.frames_since_update = 0
            hyp = self.decoder.hyp()
            if hyp is not None and hyp.hypstr:
                return [Line(self._key(), hyp.hypstr, self.start_s, self.endpointer.speech_end, False)]
        return []

    def _finish(self, end_s: float) -> list[Line]:
        self.decoder.end_utt()
        self.in_line = False
        hyp = self.decoder.hyp()
        line = Line(self._key(), hyp.hypstr if hyp is not None else "", self.start_s, end_s, True)
        self.lines += 1
        return [line] if line.text else []

    def close(self) -> list[Line]:
        if not self.in_line:
            return []
        speech = self.endpointer.end_stream(self.buffer)
        if speech is not None:
            self.decoder.process_raw(speech)
        return self._finish(self.endpointer.speech_end)


class PocketSphinxEngine(Engine):
    name = "pocketsphinx"

    def __init__(self, *, update_interval: float = 0.5, **options) -> None:
        import pocketsphinx

        self.pocketsphinx = pocketsphinx
        self.update_interval = update_interval

    def open_stream(self) -> Stream:
        return PocketSphinxStream(self.pocketsphinx, self.update_interval)


class WhisperStream(Stream):
    """Whisper has no streaming: an energy gate cuts lines at pauses; the line so far is re-decoded
    every `update_interval` for a partial, and once more when the speaker pauses for the final."""

    PAUSE_S = 0.6
    SPEECH_RMS = 300.0
    MAX_LINE_S = 15.0

    def __init__(self, model, update_interval: float) -> None:
        self.model = model
        self.update_interval = update_interval
        self.audio = np.zeros(0, dtype=np.float32)
        self.stream_s = 0.0
        self.start_s = 0.0
        self.quiet_s = 0.0
        self.since_update = 0.0
        self.lines = 0

    def add(self, samples: np.ndarray) -> list[Line]:
        seconds = len(samples) / SAMPLE_RATE
        loud = float(np.sqrt(np.mean(samples.astype(np.float32) ** 2))) >= self.SPEECH_RMS
        self.stream_s += seconds
        if not len(self.audio) and not loud:
            return []
        if not len(self.audio):
            self.start_s = self.stream_s - seconds
        self.audio = np.concatenate([self.audio, samples.astype(np.float32) / 32768.0])
        self.quiet_s = 0.0 if loud else self.quiet_s + seconds
        self.since_update += seconds
        if self.quiet_s >= self.PAUSE_S or len(self.audio) / SAMPLE_RATE >= self.MAX_LINE_S:
            return self._finish()
        if self.since_update >= self.update_interval:
            self.since_update = 0.0
            text = self._decode()
            if text:
                return [Line(f"fw{self.lines}", text, self.start_s, self.stream_s, False)]
        return []

    def set_update_interval(self, seconds: float) -> None:
        self.update_interval = max(seconds, 1.0)

    def _decode(self) -> str:
        segments, _ = self.model.transcribe(self.audio, language="en", beam_size=1, condition_on_previous_text=False)
        return " ".join(segment.text.strip() for segment in segments).strip()

    def _finish(self) -> list[Line]:
        text = self._decode()
        line = Line(f"fw{self.lines}", text, self.start_s, self.stream_s - self.quiet_s, True)
        self.audio, self.quiet_s, self.since_update = np.zeros(0, dtype=np.float32), 0.0, 0.0
        self.lines += 1
        return [line] if text else []

    def close(self) -> list[Line]:
        return self._finish() if len(self.audio) else []


class FasterWhisperEngine(Engine):
    name = "faster-whisper"

    def __init__(self, *, update_interval: float = 0.5, model_dir: str = "", device: str = "cpu") -> None:
        from faster_whisper import WhisperModel

        if not model_dir or not os.path.isdir(model_dir):
            raise ValueError("faster-whisper needs SPACES_CAPTIONS_MODEL_DIR: a local CTranslate2 model folder.")
        compute_type = "float16" if device == "cuda" else "int8"
        self.model = WhisperModel(model_dir, device=device, compute_type=compute_type, cpu_threads=1)
        self.update_interval = max(update_interval, 1.0)  # each partial re-decodes the line

    def open_stream(self) -> Stream:
        return WhisperStream(self.model, self.update_interval)


ENGINES = {"moonshine": MoonshineEngine, "pocketsphinx": PocketSphinxEngine, "faster-whisper": FasterWhisperEngine}


def load_engine(name: str, *, update_interval: float, model_dir: str = "", device: str = "cpu") -> Engine:
    try:
        engine_class = ENGINES[name]
    except KeyError:
        raise ValueError(f"Unknown captions engine {name!r}; choose one of {', '.join(ENGINES)}.") from None
    return engine_class(update_interval=update_interval, model_dir=model_dir, device=device)
