"""Voice quality under loss and jitter: human speech through the media worker, scored with PESQ-WB at the listener.

    .venv/bin/python bench/media_quality.py [--seconds 24] [--paths forward,mix] [--conditions clean,loss2,...]
        [--parallel 1] [--seed 1] [--repeats 1]

Everything runs in this one process over 127.0.0.1: one `media.room.Room`
with the worker's own `answer_speaker` / `answer_listener`, `tap_receiver`
and `ListenerSink` (as `bench/media_fanout_worker.py` hosts it), an aiortc
speaker and an aiortc listener.

- The speaker (`tests.media.impaired.FecMicrophone`) sends `--seconds` of a
  human reading (two_cities.wav, shipped in the moonshine-voice wheel) as
  Opus at 32 kbps with in-band FEC, the expected loss taken from the worker's
  receiver reports, as a browser does once asked for `useinbandfec=1`.
- Its leg is impaired in the sending process (this kernel has no netem):
  random loss and/or a uniform extra delay per packet (`impair`), so jitter
  reorders packets as a real network does.
- The listener taps its receiver and plays the packets through the same
  receiver a browser has in kind (jitter buffer, FEC, PLC): `SpeakerInput` on
  its own 20 ms clock. Its leg is clean.

Two paths through the room: `forward` is the room as it runs (one voice:
its packets are forwarded to listeners untouched, so the listener's receiver
conceals); `mix` forces the mix (the worker's `SpeakerInput` conceals, the
mix is encoded again), what listeners get while several people speak.

For each condition: PESQ-WB (`pesq`, 16 kHz) of what the listener played
against the speech sent, and the latency from a frame leaving the speaker to
the listener playing it (median, by aligning 1 s stretches of the two),
with `added_ms` = that minus the clean run's minus the injected mean delay
(the phase between the speaker's, the room's and the listener's 20 ms clocks
moves it by up to 20 ms per clock from run to run), and `held_extra_ms`: how
long, on average, each jitter buffer (the worker's, the listener's) held a
frame beyond the first tick after it arrived (0 = today's one-frame path).
With `--repeats N`, each condition runs N times with other loss and jitter
draws and the medians are reported (a shared 2-core machine moves PESQ by a
few tenths from run to run).
Progress goes to stdout; the last line is one JSON object with the figures
and the goals.
"""

import argparse
import asyncio
import json
import os
import random
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from media_fanout_common import ROOT, loopback_only

GOAL = {
    "pesq_wb_loss5_min": 3.5,
    "pesq_wb_jitter_min": 3.5,
    "pesq_wb_loss10_min": 3.3,
    "pesq_wb_loss5_jitter_min": 3.3,
    "clean_latency": "unchanged",
}
# name: (loss, extra delay range in seconds): 30 +/- 20 ms of jitter is a delay uniform in 10-50 ms.
CONDITIONS = {
    "clean": (0.0, (0.0, 0.0)),
    "loss2": (0.02, (0.0, 0.0)),
    "loss5": (0.05, (0.0, 0.0)),
    "loss10": (0.10, (0.0, 0.0)),
    "jitter30": (0.0, (0.010, 0.050)),
    "loss5_jitter30": (0.05, (0.010, 0.050)),
}
GOAL_OF = {"loss5": 3.5, "jitter30": 3.5, "loss10": 3.3, "loss5_jitter30": 3.3}
SLOTS = 12
FRAME_S = 0.020
SETTLE_S = 1.0
TAIL_S = 1.0
CONNECT_TIMEOUT_S = 15.0


def say(message: str) -> None:
    print(f"[media_quality {time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_speech(seconds: float) -> np.ndarray:
    import moonshine_voice

    with wave.open(str(Path(moonshine_voice.get_assets_path()) / "two_cities.wav")) as recording:
        assert recording.getframerate() == 48_000 and recording.getnchannels() == 1
        samples = np.frombuffer(recording.readframes(recording.getnframes()), dtype=np.int16)
    return samples[: int(seconds * 48_000)]


def to_16k(samples: np.ndarray) -> np.ndarray:
    import av

    resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
    frame = av.AudioFrame.from_ndarray(samples.astype(np.int16).reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 48_000
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.float32)


def best_lag(reference: np.ndarray, degraded: np.ndarray) -> int:
    """Samples by which `degraded` trails `reference` (FFT cross-correlation)."""
    size = 1 << int(np.ceil(np.log2(len(reference) + len(degraded))))
    spectrum = np.fft.rfft(degraded, size) * np.conj(np.fft.rfft(reference, size))
    correlation = np.fft.irfft(spectrum, size)
    lag = int(np.argmax(correlation))
    return lag if lag < size // 2 else lag - size


@dataclass
class Playout:
    """What the listener played: one frame per tick, with the tick's time."""

    times: list
    frames: list


async def listener_clock(listener_input, playout: Playout, stop: asyncio.Event) -> None:
    from media.mixer import CHANNELS, FRAME_SAMPLES

    loop = asyncio.get_running_loop()
    silence = np.zeros(FRAME_SAMPLES * CHANNELS, dtype=np.int16)
    next_at = loop.time()
    while not stop.is_set():
        next_at += FRAME_S
        samples = listener_input.pull()
        playout.times.append(time.monotonic())
        playout.frames.append(silence if samples is None else samples)
        await asyncio.sleep(max(0.0, next_at - loop.time()))


async def wait_connected(*pcs) -> None:
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        while any(pc.connectionState != "connected" for pc in pcs):
            await asyncio.sleep(0.05)


async def run_condition(name: str, path: str, speech: np.ndarray, seed: int) -> dict:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from media.aiortc_bridge import ListenerSink, tap_receiver
    from media.mixer import SpeakerInput
    from media.peer import answer_listener, answer_speaker
    from media.room import Listener, Room, Speaker
    from tests.media.impaired import FecMicrophone, Impairment, add_microphone, impair

    loss, delay = CONDITIONS[name]
    room = Room(1, ssrc=random.getrandbits(32), emit=lambda event: None)
    if path == "mix" and hasattr(room, "_forward_target"):
        room._forward_target = lambda: None  # several voices: never forward
    room.start()
    config = RTCConfiguration(iceServers=[])

    # The speaker, on an impaired leg.
    speaker_pc = RTCPeerConnection(config)
    microphone = FecMicrophone(speech, wait=True)
    add_microphone(speaker_pc, microphone)
    for _ in range(SLOTS):
        speaker_pc.addTransceiver("audio", direction="recvonly")
    impairment = Impairment(loss=loss, delay_s=delay, seed=seed)
    impair(speaker_pc, impairment)
    await speaker_pc.setLocalDescription(await speaker_pc.createOffer())
    pc, mic, slots, answer = await answer_speaker(speaker_pc.localDescription.sdp)
    speaker = Speaker(user_id=1, username="speaker", pc=pc, slots=slots, muted=False)
    tap_receiver(mic.receiver, lambda packet: room.on_speaker_packet("speaker", packet))
    room.add_speaker("speaker", speaker)
    await speaker_pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    # The listener: a browser-like receiver (jitter buffer, FEC, PLC) on its own clock.
    listener_pc = RTCPeerConnection(config)
    listener_transceiver = listener_pc.addTransceiver("audio", direction="recvonly")
    heard = SpeakerInput()
    tap_receiver(listener_transceiver.receiver, lambda packet: heard.push(packet.sequence_number, packet.payload))
    await listener_pc.setLocalDescription(await listener_pc.createOffer())
    lpc, transceiver, answer = await answer_listener(listener_pc.localDescription.sdp, ssrc=room.ssrc)
    room.add_listener("listener", Listener(key="listener", pc=lpc, sink=ListenerSink(transceiver)))
    await listener_pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    playout = Playout([], [])
    stop = asyncio.Event()
    clock = None
    try:
        await wait_connected(speaker_pc, listener_pc, pc, lpc)
        clock = asyncio.get_running_loop().create_task(listener_clock(heard, playout, stop))
        await asyncio.sleep(SETTLE_S)
        first_tick = len(playout.times)
        microphone.play()
        await asyncio.sleep(len(speech) / 48_000 + TAIL_S)
    finally:
        stop.set()
        if clock is not None:
            await clock
        await room.close()
        for peer in (speaker_pc, listener_pc):
            await peer.close()

    return {
        "name": name,
        "path": path,
        "sent_at": microphone.sent_at,
        "started_at": microphone.started_at,
        "times": playout.times[first_tick:],
        "frames": playout.frames[first_tick:],
        "dropped": impairment.dropped,
        "sent": impairment.sent,
        "mean_delay_ms": impairment.mean_delay_s * 1000,
        "worker": input_stats(speaker.input),
        "listener": input_stats(heard),
        "forwarded": getattr(room, "forwarded", None),
        "encodes": room.mixer.encodes,
    }


def input_stats(speaker_input) -> dict:
    """What a `SpeakerInput` counted (what its jitter buffer counted, where it has one)."""
    buffer = getattr(speaker_input, "buffer", None)
    figures = {"received": speaker_input.received, "lost": speaker_input.lost}
    if buffer is not None:
        figures.update(
            recovered=buffer.recovered,
            late=buffer.late,
            stretched=buffer.stretched,
            trimmed=buffer.trimmed,
            wait_ms=round(buffer.wait_s * 1000, 1),
            held_extra_ms=round(buffer.held_extra_ms, 1),
        )
    return figures


def score(run: dict, speech: np.ndarray) -> dict:
    from pesq import pesq

    played = np.concatenate(run["frames"]).reshape(-1, 2)[:, 0]
    reference16, played16 = to_16k(speech), to_16k(played)
    lag16 = best_lag(reference16, played16)
    aligned = played16[max(0, lag16) : max(0, lag16) + len(reference16)]
    reference16 = reference16[: len(aligned)]
    quality = pesq(16_000, reference16, aligned, "wb")
    # Latency: for each 1 s stretch, its own lag (within 100 ms of the global one), then
    # time played - time sent of the frame it plays.
    lag48 = lag16 * 3
    latencies = []
    chunk = 48_000
    for start in range(0, len(speech) - chunk, chunk):
        if np.sqrt(np.mean(speech[start : start + chunk].astype(np.float64) ** 2)) < 300:
            continue
        window = played[max(0, start + lag48 - 4_800) : start + lag48 + chunk + 4_800].astype(np.float32)
        local = best_lag(speech[start : start + chunk].astype(np.float32), window) + max(0, start + lag48 - 4_800)
        frame_played = local // 960
        frame_sent = run["started_at"] + start // 960
        if 0 <= frame_played < len(run["times"]) and frame_sent < len(run["sent_at"]):
            latencies.append(run["times"][frame_played] - run["sent_at"][frame_sent] + (local % 960) / 48_000)
    return {
        "pesq_wb": round(float(quality), 2),
        "latency_ms_p50": round(float(np.median(latencies)) * 1000, 1) if latencies else None,
    }


def median_of(runs: list[dict], key: str):
    values = [run[key] for run in runs if run.get(key) is not None]
    return round(float(np.median(values)), 2) if values else None


async def main(args: argparse.Namespace) -> dict:
    loopback_only()
    speech = load_speech(args.seconds)
    runs_of: dict[str, list[dict]] = {}
    for path in args.paths:
        for repeat in range(args.repeats):
            seed = args.seed + repeat
            names = list(args.conditions)
            while names:
                batch, names = names[: args.parallel], names[args.parallel :]
                say(f"{path}, seed {seed}: {', '.join(batch)} ({len(speech) / 48_000:.0f} s of speech each)")
                runs = await asyncio.gather(*(run_condition(name, path, speech, seed) for name in batch))
                for run in runs:
                    figures = score(run, speech)
                    figures.update(
                        seed=seed,
                        loss_pct=round(100 * run["dropped"] / max(1, run["sent"]), 1),
                        mean_delay_ms=round(run["mean_delay_ms"], 1),
                        worker=run["worker"],
                        listener=run["listener"],
                        forwarded=run["forwarded"],
                        encodes=run["encodes"],
                    )
                    runs_of.setdefault(f"{path}.{run['name']}", []).append(figures)
                    say(f"{path}.{run['name']}: {json.dumps(figures)}")
    results: dict[str, dict] = {}
    for path in args.paths:
        clean = median_of(runs_of.get(f"{path}.clean", []), "latency_ms_p50")
        for name in args.conditions:
            runs = runs_of[f"{path}.{name}"]
            figures = results[f"{path}.{name}"] = {
                "pesq_wb": median_of(runs, "pesq_wb"),
                "pesq_wb_runs": [run["pesq_wb"] for run in runs],
                "latency_ms_p50": median_of(runs, "latency_ms_p50"),
                "loss_pct": median_of(runs, "loss_pct"),
                "mean_delay_ms": runs[0]["mean_delay_ms"],
                "worker_held_extra_ms": median_of([run["worker"] for run in runs], "held_extra_ms"),
                "listener_held_extra_ms": median_of([run["listener"] for run in runs], "held_extra_ms"),
            }
            if clean is not None and figures["latency_ms_p50"] is not None:
                figures["added_ms"] = round(figures["latency_ms_p50"] - clean - figures["mean_delay_ms"], 1)
            if name in GOAL_OF:
                figures["goal_pesq_wb"] = GOAL_OF[name]
                figures["meets_goal"] = figures["pesq_wb"] >= GOAL_OF[name]
    return {
        "benchmark": "media_quality",
        "speech_s": round(len(speech) / 48_000, 1),
        "seeds": [args.seed + repeat for repeat in range(args.repeats)],
        "results": results,
        "goal": GOAL,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=24.0, help="seconds of speech per run")
    parser.add_argument("--paths", type=lambda s: s.split(","), default=["forward", "mix"])
    parser.add_argument("--conditions", type=lambda s: s.split(","), default=list(CONDITIONS))
    parser.add_argument("--parallel", type=int, default=1, help="conditions run at once (more is faster, noisier)")
    parser.add_argument("--seed", type=int, default=1, help="loss and jitter draws of the first repeat")
    parser.add_argument("--repeats", type=int, default=1, help="runs per condition (seeds seed, seed+1, ...): medians")
    args = parser.parse_args()
    unknown = [c for c in args.conditions if c not in CONDITIONS]
    if unknown:
        parser.error(f"unknown conditions: {unknown}")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spaces_site.settings")
    os.environ["DEBUG"] = "1"
    import logging

    import django

    logging.basicConfig(stream=sys.stderr, level=logging.ERROR)
    django.setup()
    started = time.monotonic()
    runs = len(args.paths) * len(args.conditions) * args.repeats
    bound_s = 120 + runs * (args.seconds + SETTLE_S + TAIL_S + 15) / max(1, args.parallel)
    summary = asyncio.run(asyncio.wait_for(main(args), timeout=bound_s))
    summary["wall_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary), flush=True)
    os._exit(0)  # aiortc's decoder threads are not daemons
