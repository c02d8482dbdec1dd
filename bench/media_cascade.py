"""The cascade run of `bench/media_fanout.py --cascade` (issue 14, 4c): one origin and two edge workers.

    .venv/bin/python bench/media_fanout.py --cascade [--cascade-listeners 200] [--window 10]

Separate processes on this machine, over 127.0.0.1: an origin worker
(`media_fanout_worker.py --mode room`) with the 3 aiortc speakers, one of them
speaking (the room forwards that voice), and two edge workers (`--mode edge`:
an edge room fed by its relay socket, as `media.worker` runs one), each with
its own listener process. The origin's CPU is measured with no edge, then
relaying to one and to two (plain RTP over UDP, `media.cascade`): its extra
CPU per edge. Then each edge gets `--cascade-listeners` listeners and its CPU
per listener is measured (against the same edge relayed to, with none), with
the loss its listeners saw (received / RTP sequence span, as the fan-out run
counts it). The result goes under "cascade" in the fan-out run's JSON line.
"""

import asyncio
import os
import time
from pathlib import Path

from media_fanout import CALL_TIMEOUT_S, CONNECT_TIMEOUT_S, SPEAKERS, Child, Deadline, r, say
from media_fanout_common import PACKETS_PER_S

EDGES = 2


async def cores(children: list[Child], window: float) -> dict[str, float]:
    """Each child's CPU over `window` seconds, in cores."""
    before = {c.name: c.cpu() for c in children}
    started = time.monotonic()
    await asyncio.sleep(window)
    elapsed = time.monotonic() - started
    return {c.name: (c.cpu() - before[c.name]) / elapsed for c in children}


def loss(before: dict, after: dict, sent_rate: float) -> float:
    """1 - delivered x the sender's rate: delivered = packets received / RTP sequence span, over the window."""
    got = sum(after["counts"][i] - before["counts"][i] for i in range(len(before["counts"])))
    span = sum(after["highs"][i] - before["highs"][i] for i in range(len(before["highs"])))
    return max(0.0, 1 - min(1.0, got / span) * min(1.0, sent_rate)) if span else 1.0


async def cascade(args, log_dir: Path, deadline: Deadline) -> dict:
    origin = Child("cascade-origin", "media_fanout_worker.py", ["--mode", "room"], log_dir)
    edges = [Child(f"cascade-edge{i}", "media_fanout_worker.py", ["--mode", "edge"], log_dir) for i in range(EDGES)]
    children = [origin, *edges]
    try:
        await asyncio.gather(*(c.start() for c in children))
        hellos = [await c.call("hello", timeout=deadline.left(60)) for c in children]
        speakers = Child(
            "cascade-speakers",
            "media_fanout_clients.py",
            ["--role", "speakers", "--port", str(hellos[0]["port"])],
            log_dir,
        )
        pools = [
            Child(
                f"cascade-listeners{i}",
                "media_fanout_clients.py",
                ["--role", "listeners", "--port", str(hello["port"]), "--name", str(i)],
                log_dir,
            )
            for i, hello in enumerate(hellos[1:])
        ]
        children += [speakers, *pools]
        await asyncio.gather(speakers.start(), *(p.start() for p in pools))
        for pool in pools:
            os.setpriority(os.PRIO_PROCESS, pool.pid, args.client_nice)
        joined = await speakers.call(
            "join", timeout=deadline.left(60), count=SPEAKERS, connect_timeout=CONNECT_TIMEOUT_S
        )
        if joined["connected"] != SPEAKERS:
            raise RuntimeError(f"cascade: only {joined['connected']} speakers connected")
        await speakers.call("voices", timeout=deadline.left(CALL_TIMEOUT_S), count=1)
        workers = [origin, *edges]

        # The origin relaying to no edge, one, two: its whole CPU (other work moves it too), and the
        # sends to the edges timed in place.
        by_edges = []
        for count in range(EDGES + 1):
            if count:
                await origin.call("relay", timeout=deadline.left(CALL_TIMEOUT_S), to=hellos[count]["relay"])
            await asyncio.sleep(deadline.left(args.settle))
            before = await origin.call("stats", timeout=deadline.left(CALL_TIMEOUT_S))
            started = time.monotonic()
            by_edges.append(await cores(workers, args.window))
            after = await origin.call("stats", timeout=deadline.left(CALL_TIMEOUT_S))
            if count == EDGES:
                send_cpu = after["relay_cpu"] - before["relay_cpu"]
                sends_per_edge = send_cpu / (time.monotonic() - started) / EDGES
                send_per_packet = send_cpu / max(1, after["relayed_out"] - before["relayed_out"])
            say(f"cascade: origin relaying to {count} edge(s): origin {by_edges[-1][origin.name] * 100:.1f}% of a core")
        origin_per_edge = (by_edges[EDGES][origin.name] - by_edges[0][origin.name]) / EDGES
        relayed = [await e.call("stats", timeout=deadline.left(CALL_TIMEOUT_S)) for e in edges]

        # Listeners on each edge.
        n = args.cascade_listeners
        timeout = deadline.left(max(60.0, 2 * CONNECT_TIMEOUT_S + n / 10))
        await asyncio.gather(
            *(
                p.call(
                    "grow", timeout, total=n, concurrency=args.connect_concurrency, connect_timeout=CONNECT_TIMEOUT_S
                )
                for p in pools
            )
        )
        await asyncio.sleep(deadline.left(args.settle))
        snaps0 = [await p.call("snapshot", timeout=deadline.left(CALL_TIMEOUT_S), since=time.time()) for p in pools]
        stats0 = [await e.call("stats", timeout=deadline.left(CALL_TIMEOUT_S)) for e in edges]
        started = time.monotonic()
        loaded = await cores([*workers, *pools, speakers], args.window)
        elapsed = time.monotonic() - started
        snaps1 = [await p.call("snapshot", timeout=deadline.left(CALL_TIMEOUT_S), since=time.time()) for p in pools]
        stats1 = [await e.call("stats", timeout=deadline.left(CALL_TIMEOUT_S)) for e in edges]

        per_edge = []
        for i, edge in enumerate(edges):
            sent_rate = (stats1[i]["sent"] - stats0[i]["sent"]) / max(1, stats1[i]["ready"]) / elapsed / PACKETS_PER_S
            per_listener = (loaded[edge.name] - by_edges[EDGES][edge.name]) / n
            per_edge.append(
                {
                    "listeners": stats1[i]["ready"],
                    "cpu_cores_relayed_no_listeners": r(by_edges[EDGES][edge.name], 4),
                    "cpu_cores_with_listeners": r(loaded[edge.name], 3),
                    "cpu_us_per_listener_per_s": r(per_listener * 1e6, 0),
                    "implied_listeners_per_core": round(1 / per_listener) if per_listener > 0 else None,
                    "loss_pct": r(loss(snaps0[i], snaps1[i], sent_rate) * 100, 3),
                    "relayed_packets_in": relayed[i]["relayed_in"],
                }
            )
            say(f"cascade: edge {i}: {per_edge[-1]}")
        figures = {
            "edges": EDGES,
            "voices": 1,
            "window_s": args.window,
            "origin_cpu_cores_by_edges": [r(c[origin.name], 4) for c in by_edges],
            "origin_extra_cpu_per_edge_cores": r(origin_per_edge, 5),
            "origin_extra_cpu_per_edge_us_per_s": r(origin_per_edge * 1e6, 0),
            "origin_relay_send_cpu_per_edge_us_per_s": r(sends_per_edge * 1e6, 1),
            "origin_relay_send_us_per_packet": r(send_per_packet * 1e6, 2),
            "edges_detail": per_edge,
            "clients_cpu_cores": r(sum(loaded[p.name] for p in pools) + loaded[speakers.name], 2),
        }
        say(
            f"cascade: the origin's extra CPU per edge {figures['origin_extra_cpu_per_edge_us_per_s']} µs/s (whole "
            f"process), {figures['origin_relay_send_cpu_per_edge_us_per_s']} µs/s in its sends (timed in place)"
        )
        return figures
    finally:
        await asyncio.gather(*(c.stop() for c in children), return_exceptions=True)
