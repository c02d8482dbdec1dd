"""Live captions benchmark: N speakers talking at once in one room, on one media worker and its captions process.

    .venv/bin/python bench/captions.py [--speakers 1,2,4,8]

This process hosts the real `media.worker.MediaWorker` (in-memory channel
layer, a throwaway SQLite database, the default engine) with a small TCP
signalling server in front of it, so nothing but the worker and its captions
process shares the CPU with the room. The clients run in a process of their
own (`bench/captions_clients.py`): N aiortc speakers each reading the same
13.4 s of human speech (the opening of A Tale of Two Cities, from the
`moonshine-voice` wheel) at real-time pace, a probe speaker sending a loud
click every 500 ms, and a listener timing each click in the room's mix.

For each N it runs the room twice, captions off then on, and reports:
- partial latency p50/p95: for each word, from the moment its audio left the
  speaker (the speaker's first frame's wall time plus the word's end in the
  recording: an offline pass of the same engine gives each line's span, and
  words end in proportion to their letters) to the first caption event in the
  captions group that shows that many words of the speaker's text; a partial
  can run a little ahead of that estimate, so small negative values occur;
- final latency p50/p95: for each line, from the end of its last word's audio
  to its final line (a line is final once the speaker pauses);
- WER of each speaker's joined final lines against the text;
- the captions process's CPU seconds per second of speech per speaker;
- the worker's late ticks, each tick's duration p95, and the click latency
  p95 (speaker -> listener through the mix, the listener's 80 ms aiortc
  jitter buffer included) with captions off and on, and the `captions.status`
  events saying captions fell behind.

Progress goes to stdout; the last line is one JSON object with the figures and
the goals. Everything stops by itself (the clients exit when stdin closes).
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GOAL = {
    "partial_p95_s_at_1_to_4": 1.0,
    "final_p95_s_at_1_to_4": 2.0,
    "wer_at_1_to_4": 0.12,
    # What captions add to the audio path: each 20 ms tick's own duration, p95, on vs off. The click's
    # end-to-end p95 is reported too, but varies by 10-15 ms between identical runs on a shared 2-core
    # machine (the listener's jitter buffer and scheduling), so it can't show a 2 ms difference.
    "tick_ms_p95_added_at_1_to_4": 2.0,
}
SPEECH_S = 13.4
SILENCE_S = 2.0
FINALS_WAIT_S = 20.0


def say(message: str) -> None:
    print(f"[captions {time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def word_timeline(wav: Path) -> list[float]:
    """When each word of the recording ends (s): the engine's own offline pass gives each line's span
    (this model has no word timestamps), and each word ends in proportion to its characters."""
    import wave

    import moonshine_voice
    import numpy as np

    from tests.media.speech import words

    with wave.open(str(wav)) as source:
        samples = np.frombuffer(source.readframes(source.getnframes()), dtype=np.int16)
    audio = (samples[::3].astype(np.float32) / 32768.0).tolist()
    transcriber = moonshine_voice.Transcriber(
        os.path.join(moonshine_voice.get_assets_path(), "tiny-en"),
        moonshine_voice.ModelArch.TINY,
        options={"identify_speakers": "false"},
    )
    ends: list[float] = []
    for line in transcriber.transcribe_without_streaming(audio, 16_000).lines:
        spoken = words(line.text)
        total = sum(len(w) + 1 for w in spoken)
        done = 0
        for word in spoken:
            done += len(word) + 1
            ends.append(line.start_time + line.duration * done / total)
    return ends


def caption_latencies(events: list[tuple[float, dict]], start: float, ends: list[float]) -> tuple[list, list]:
    """Per word, seconds from its audio leaving the speaker to the first caption event showing it;
    per line, seconds from the end of its last word's audio to its final line."""
    from tests.media.speech import words

    shown: dict[int, float] = {}
    finals: list[float] = []
    finished_words = 0
    for arrival, event in events:
        count = min(finished_words + len(words(event["text"])), len(ends))
        for k in range(count):
            shown.setdefault(k, arrival)
        if event["type"] == "caption.final":
            if count:
                finals.append(arrival - (start + ends[count - 1]))
            finished_words = count
    partial = [shown[k] - (start + ends[k]) for k in shown]
    return partial, finals


async def drive(steps: list[int], workdir: Path) -> dict:
    from channels.db import database_sync_to_async
    from channels.layers import get_channel_layer

    from accounts.models import User
    from media import signalling
    from media.room import Room
    from media.worker import MediaWorker
    from rooms.events import captions_group, event_of
    from rooms.models import Participant, Role, Space
    from tests.media.speech import TWO_CITIES, TWO_CITIES_S, speech_wav, word_error_rate

    layer = get_channel_layer()
    worker = MediaWorker("media.worker.0", layer)
    worker_task = asyncio.get_running_loop().create_task(worker.run())
    current = {"space": 0}

    async def signal(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = json.loads(await reader.readline())
        reply_to = await layer.new_channel()
        await layer.send(
            signalling.worker_channel_for_index(0),
            {
                "type": signalling.OFFER,
                "space_id": current["space"],
                "user_id": request["user_id"],
                "reply_to": reply_to,
                "sdp": request["sdp"],
                "publish": request["publish"],
            },
        )
        answer = await asyncio.wait_for(layer.receive(reply_to), 15)
        writer.write((json.dumps(answer) + "\n").encode())
        await writer.drain()
        writer.close()

    # How long each of the room's 20 ms ticks takes (mix, encode, send, and the captions feed).
    tick_ms: dict[int, list[float]] = {}
    original_tick = Room.tick

    def timed_tick(room: Room) -> None:
        started = time.perf_counter()
        original_tick(room)
        tick_ms.setdefault(room.space_id, []).append((time.perf_counter() - started) * 1000)

    Room.tick = timed_tick
    server = await asyncio.start_server(signal, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    @database_sync_to_async
    def people() -> tuple[User, list[User], User, User]:
        host = User.objects.create(username="bench_host", hosting_granted=True)
        speakers = [User.objects.create(username=f"bench_s{n}") for n in range(max(steps))]
        return host, speakers, User.objects.create(username="bench_probe"), User.objects.create(username="bench_ear")

    @database_sync_to_async
    def open_space(host, speakers, probe, captions: bool) -> int:
        from rooms import services

        Space.objects.filter(state="live").update(state="ended")
        space = services.space_create(host=host, title=f"captions bench {len(speakers)}", captions_enabled=captions)
        for person in [*speakers, probe]:
            Participant.objects.update_or_create(
                space=space, user=person, defaults={"role": Role.SPEAKER, "muted": False}
            )
        return space.pk

    host, speakers, probe, ear = await people()
    wav = speech_wav(workdir / "speech.wav", "two_cities.wav", TWO_CITIES_S, silence_after=SILENCE_S)
    say("offline pass for word timings")
    ends = await asyncio.get_running_loop().run_in_executor(None, word_timeline, wav)
    clients = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "captions_clients.py")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'bench'}:{ROOT}"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    results = []
    try:
        for n in steps:
            row: dict = {"speakers": n}
            for captions in (False, True):
                space_id = await open_space(host, speakers[:n], probe, captions)
                current["space"] = space_id
                inbox = await layer.new_channel()
                await layer.group_add(captions_group(space_id), inbox)
                events: list[tuple[float, dict]] = []

                async def collect(channel: str = inbox, into: list = events) -> None:
                    while True:
                        message = await layer.receive(channel)
                        into.append((time.time(), event_of(message)))

                collector = asyncio.get_running_loop().create_task(collect())
                feed_pid = worker.captions.process.pid if worker.captions and worker.captions.process else None
                cpu_before = cpu_seconds(feed_pid) if feed_pid else 0.0
                request = {
                    "port": port,
                    "speakers": [s.pk for s in speakers[:n]],
                    "probe": probe.pk,
                    "listener": ear.pk,
                    "wav": str(wav),
                    "seconds": SPEECH_S + SILENCE_S,
                }
                clients.stdin.write(json.dumps(request) + "\n")
                clients.stdin.flush()
                played = json.loads(await asyncio.get_running_loop().run_in_executor(None, clients.stdout.readline))
                room = worker.rooms[space_id]
                label = "on" if captions else "off"
                row[f"tick_ms_p95_{label}"] = percentile(tick_ms.pop(space_id, []), 0.95)
                row[f"late_ticks_{label}"] = room.late_ticks
                row[f"ticks_{label}"] = room.ticks
                row[f"audio_latency_p95_ms_{label}"] = percentile(played["click_latency_ms"], 0.95)
                row[f"clicks_heard_{label}"] = f"{len(played['click_latency_ms'])}/{played['clicks_sent']}"
                if captions:
                    deadline = time.monotonic() + FINALS_WAIT_S

                    def done(evs=events, n=n) -> bool:
                        finished = {e["speaker"]["username"] for _, e in evs if e["type"] == "caption.final"}
                        return len(finished) >= n and all(
                            any(
                                e["type"] == "caption.final" and "incredulity" in e["text"].lower()
                                for _, e in evs
                                if e.get("speaker", {}).get("username") == s.username
                            )
                            for s in speakers[:n]
                        )

                    while not done() and time.monotonic() < deadline:
                        await asyncio.sleep(0.25)
                    feed_pid = worker.captions.process.pid
                    cpu = cpu_seconds(feed_pid) - (cpu_before if cpu_before else 0.0)
                    partial, final, wers = [], [], []
                    for speaker in speakers[:n]:
                        mine = [(t, e) for t, e in events if e.get("speaker", {}).get("username") == speaker.username]
                        p, f = caption_latencies(mine, played["starts"][str(speaker.pk)], ends)
                        partial += p
                        final += f
                        text = " ".join(e["text"] for _, e in mine if e["type"] == "caption.final")
                        wers.append(word_error_rate(text, TWO_CITIES))
                    row.update(
                        partial_p50_s=percentile(partial, 0.5),
                        partial_p95_s=percentile(partial, 0.95),
                        final_p50_s=percentile(final, 0.5),
                        final_p95_s=percentile(final, 0.95),
                        wer=round(sum(wers) / len(wers), 3),
                        wer_worst=round(max(wers), 3),
                        final_lines=len(final),
                        captions_cpu_per_speaker=round(cpu / n / SPEECH_S, 3),
                        behind_events=sum(1 for _, e in events if e["type"] == "captions.status" and e["behind"]),
                    )
                collector.cancel()
                await worker._close_room(space_id)
            if row.get("tick_ms_p95_on") is not None and row.get("tick_ms_p95_off") is not None:
                row["tick_ms_p95_added"] = round(row["tick_ms_p95_on"] - row["tick_ms_p95_off"], 3)
            if row.get("audio_latency_p95_ms_on") is not None and row.get("audio_latency_p95_ms_off") is not None:
                row["audio_latency_p95_added_ms"] = round(
                    row["audio_latency_p95_ms_on"] - row["audio_latency_p95_ms_off"], 2
                )
            say(json.dumps(row))
            results.append(row)
    finally:
        clients.stdin.close()
        clients.wait(timeout=20)
        worker_task.cancel()
        await worker.close()
        server.close()
    return {"runs": results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speakers", default="1,2,4,8", help="speakers at once, a run each (default 1,2,4,8)")
    args = parser.parse_args()
    steps = [int(n) for n in args.speakers.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="captions-bench-"))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="spaces_site.settings",
        DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        DEBUG="1",
        SPACES_MEDIA_ICE_LOOPBACK="1",
        MEDIA_ROOT=str(workdir / "uploads"),
    )
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    say(f"speakers {steps}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}")
    result = {"bench": "captions", "engine": "moonshine", "cpus": os.cpu_count()}
    status = 1
    try:
        result.update(asyncio.run(drive(steps, workdir)))
        status = 0
    except Exception as error:  # noqa: BLE001 - reported in the JSON line
        say(f"FAILED: {type(error).__name__}: {error}")
        result["failed"] = f"{type(error).__name__}: {error}"
    small = [r for r in result.get("runs", []) if r["speakers"] <= 4]
    met = {
        "partial_p95_s_at_1_to_4": bool(small)
        and all((r.get("partial_p95_s") or 99) <= GOAL["partial_p95_s_at_1_to_4"] for r in small),
        "final_p95_s_at_1_to_4": bool(small)
        and all((r.get("final_p95_s") or 99) <= GOAL["final_p95_s_at_1_to_4"] for r in small),
        "wer_at_1_to_4": bool(small) and all((r.get("wer") or 1) <= GOAL["wer_at_1_to_4"] for r in small),
        "tick_ms_p95_added_at_1_to_4": bool(small)
        and all((r.get("tick_ms_p95_added") or 99) <= GOAL["tick_ms_p95_added_at_1_to_4"] for r in small),
    }
    result.update(goal=GOAL, goal_met=met, all_goals_met=all(met.values()))
    print(json.dumps(result), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
