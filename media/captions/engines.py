"""Speech-recognition engines behind one small interface: a stream per speaker, audio in, lines out.

An engine is loaded once per captions process (`load_engine(name)`); each
speaker gets a `Stream` from `engine.open_stream()`. `Stream.add(samples)`
takes 16 kHz mono float32 samples and returns the lines that changed:
`Line(line_id, text, start_s, end_s, final)`, times in seconds of that
stream's audio. `Stream.close()` finishes the line in progress and returns
it final. Nothing here imports Django: the captions process stays light.

Engines:
- `moonshine` (default): Moonshine tiny-en from `moonshine-voice` 0.1.0, whose
  wheel carries the model (later versions download it at run time), run on
  onnxruntime with one thread per process.
"""

import os
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


class Stream:
    def add(self, samples: np.ndarray) -> list[Line]:
        raise NotImplementedError

    def close(self) -> list[Line]:
        raise NotImplementedError


class Engine:
    name = ""

    def open_stream(self) -> Stream:
        raise NotImplementedError


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
        self.stream.add_audio(samples.tolist(), SAMPLE_RATE)
        return self._take()

    def close(self) -> list[Line]:
        self.stream.stop()
        lines = self._take()
        self.stream.close()
        return lines

    def set_update_interval(self, seconds: float) -> None:
        self.stream._update_interval = seconds

    def _take(self) -> list[Line]:
        lines = list(self.changed.values())
        self.changed.clear()
        return lines


class MoonshineEngine(Engine):
    name = "moonshine"

    def __init__(self, update_interval: float = 0.5) -> None:
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


ENGINES = {"moonshine": MoonshineEngine}


def load_engine(name: str, *, update_interval: float) -> Engine:
    try:
        engine_class = ENGINES[name]
    except KeyError:
        raise ValueError(f"Unknown captions engine {name!r}; choose one of {', '.join(ENGINES)}.") from None
    return engine_class(update_interval=update_interval)
