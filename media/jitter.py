"""An adaptive jitter buffer for one speaker's Opus frames: how long to wait for one, what to do when it doesn't come.

The room's clock asks for one frame every 20 ms (`JitterBuffer.next`); the
buffer answers with a `Step`: play this frame, rebuild the missing one from the
FEC copy in the next packet (`recover`), or conceal it (`conceal`, libopus
PLC), or nothing at all when the speaker has stopped sending. No tick is ever
20 ms of digital zeros while a speaker is talking.

How long to wait. Frame `n` is nominally due at `base + n x 20 ms`, where
`base` is the fastest transit seen (arrival - n x 20 ms, the minimum over the
last `WINDOW` packets); a packet's *lateness* is its arrival after that. A
missing frame is waited for until its nominal time plus `wait`, the
`LATENESS_PERCENTILE`-th percentile of the lateness over those packets (RFC 3550's
interarrival jitter is kept too, for reports): on a clean network that is a
millisecond or two, so a frame is played at the first tick after it arrives,
as before (one frame of delay at most). Once more than 1 % of the frames are
lost and the speaker's packets carry in-band FEC, `wait` grows by one frame
(until no frame was lost for `WINDOW` frames), so that the next packet is
usually there to rebuild a lost one from. Packets read late because this
process's loop stalled (the clock's ticks came late or bunched) don't count
as lateness.

- The frame is there: play it.
- It is there but early (more than `HYSTERESIS_S` ahead of the delay the
  jitter needs: at the start, or after `wait` grew) and the last frame played
  was quiet: play one frame of PLC (as quiet) and keep the frame. That is how
  the delay grows, in a pause, where the shift is not heard.
- It is missing and not overdue: conceal one frame and keep waiting for it
  (the delay grows by a frame, mid-word if it must).
- It is missing and overdue: it is lost. Rebuild it from the next packet's
  FEC if that packet is here, otherwise conceal; a packet that comes later
  still is dropped as late.
- Played a whole frame later than needed at every tick for `TRIM_TICKS`
  ticks (the jitter or the loss has passed): drop one frame, preferably a
  quiet one. That is how the delay shrinks. `MAX_EXCESS_S` or more later
  than needed (a stall of this process, a burst): drop the excess at once.

`pending` is the dict of frames waiting (sequence number → payload); the room
clears it when a speaker is muted. A jump of `RESTART_GAP` frames or more
(unmuted after a while, a new stream) starts afresh rather than counting a loss.
"""

import math
from collections import deque
from dataclasses import dataclass, replace

from media.opus import has_fec

FRAME_S = 0.020
WINDOW = 500  # packets (10 s) the timing and loss statistics look back over: the wait rises at once, falls slowly
LATENESS_PERCENTILE = 97
MAX_WAIT_S = 0.200  # never wait longer than this for a late frame
FEC_LOSS = 0.01  # once more than this share of frames is lost (and FEC comes), wait one frame more ...
FEC_MIN_SLOTS = 250  # ... counted over at least this many frames (a start's late frame or two is no loss rate)
FEC_RECENT = 50  # packets: FEC "comes" if one of the last this many carried some
# ... until no frame at all was lost in the window: a loss rate hovering about FEC_LOSS would
# otherwise grow and shrink the delay over and over (each change a shift PESQ-WB hears).
MAX_CONCEAL = 5  # frames concealed in a row with nothing newer: the speaker stopped; go quiet
TRIM_TICKS = 100  # a frame later than needed at every tick of a window this long (2 s): drop one
TRIM_FORCE_TICKS = 250  # ... in a pause; even a loud one if none comes for this long (5 s)
MAX_FRAMES = 16  # frames held at most (320 ms)
RESTART_GAP = 50  # frames (1 s): a jump this far is a new start, not a loss
STATS_EVERY = 10  # ticks between recomputing the wait
MAX_EXCESS_S = 0.060  # this much later than the jitter needs: drop the excess at once
HYSTERESIS_S = 0.005  # the delay grows only when 5 ms short of the wait, shrinks only when 5 ms over a frame
CATCH_UP_GAP_S = 0.005  # ticks closer than this: the room's clock is catching up after a stall
STALL_GAP_S = 0.045  # ticks further apart than this: the loop stalled


def seq_delta(a: int, b: int) -> int:
    """`a - b` for 16-bit RTP sequence numbers, in -32768 … 32767."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


@dataclass(frozen=True)
class Step:
    """What to give the mixer this tick.

    kind: "play" (decode `payload`, frame `sequence_number`), "recover" (FEC-decode `payload`, the
    next packet, for the lost frame `sequence_number`), "conceal" (PLC), or "none" (nothing due).
    `discard`: a frame to decode first and throw away (a trimmed frame: keeps the decoder continuous).
    """

    kind: str
    sequence_number: int | None = None
    payload: bytes | None = None
    discard: bytes | None = None


NOTHING = Step("none")


class JitterBuffer:
    def __init__(self) -> None:
        self.pending: dict[int, bytes] = {}
        self.next_seq: int | None = None
        # counters
        self.received = 0
        self.lost = 0  # frames that never came in time (recovered + concealed + skipped in a jump)
        self.recovered = 0  # ... of which rebuilt from FEC
        self.late = 0  # packets that came after their frame's time
        self.stretched = 0  # frames of PLC played while waiting for a late frame (the delay grew)
        self.trimmed = 0  # frames dropped to shrink the delay
        self.restarts = 0
        self.played = 0
        self.held_ticks = 0  # ticks frames waited beyond the first tick after they arrived, summed
        self.wait_s = 0.0
        self.jitter_s = 0.0  # RFC 3550 interarrival jitter
        self._last_now: float | None = None
        self._untimed_until = -math.inf
        self._timed_since_pull = 0
        self._reset_timing()

    def _reset_timing(self) -> None:
        self._next_ext = 0  # next_seq, unwrapped
        self._newest_seq: int | None = None
        self._newest_ext = 0
        self._last_fec_ext: int | None = None
        self._transits: deque[float] = deque(maxlen=WINDOW)
        self._base = math.inf
        self._last_arrival: float | None = None
        self._slots: deque[int] = deque(maxlen=WINDOW)  # 1 per lost frame, 0 per played
        self._lost_in_window = 0
        self._fec_wait = False
        self._stats_in = 0
        self._concealed_run = 0
        self._trailing_lost = 0  # frames counted lost in this run of concealment with nothing newer
        self._lag_min = math.inf
        self._lag_ticks = 0
        self._excess_since: int | None = None  # plays since a whole frame of excess delay was seen
        self._arrivals: dict[int, float] = {}

    # Packets in

    def push(self, sequence_number: int, payload: bytes, arrival: float) -> None:
        if self.next_seq is not None:
            ahead = seq_delta(sequence_number, self.next_seq)
            if abs(ahead) >= RESTART_GAP:
                self._restart()
            elif ahead < 0:
                self.late += 1
                self._time(sequence_number, arrival)
                self._unslot(self._ext(sequence_number))
                return
        if sequence_number in self.pending:
            return
        self._time(sequence_number, arrival)
        if has_fec(payload):
            self._last_fec_ext = self._ext(sequence_number)
        self.pending[sequence_number] = payload
        if len(self._arrivals) > 2 * MAX_FRAMES:  # the room cleared `pending` (a mute)
            self._arrivals = {seq: at for seq, at in self._arrivals.items() if seq in self.pending}
        self._arrivals[sequence_number] = arrival
        self.received += 1
        if self.next_seq is None:
            self.next_seq = sequence_number
            self._next_ext = self._ext(sequence_number)
        if len(self.pending) > MAX_FRAMES:
            # The clock fell far behind this speaker: let the oldest go, and play on from the next.
            oldest = min(self.pending, key=lambda s: seq_delta(s, self.next_seq))
            del self.pending[oldest]
            self._arrivals.pop(oldest, None)
            self.trimmed += 1
            self._advance(seq_delta(oldest, self.next_seq) + 1)

    def _ext(self, sequence_number: int) -> int:
        return self._newest_ext + seq_delta(sequence_number, self._newest_seq)

    def _time(self, sequence_number: int, arrival: float) -> None:
        """Record when this frame came: its transit (for the base and lateness) and RFC 3550 jitter."""
        if self._newest_seq is None:
            self._newest_seq, self._newest_ext = sequence_number, 0
        ext = self._ext(sequence_number)
        timed = arrival > self._untimed_until
        if timed:
            transit = arrival - ext * FRAME_S
            self._transits.append(transit)
            self._timed_since_pull += 1
            self._base = min(self._base, transit)
        if ext > self._newest_ext:
            if self._last_arrival is not None and timed:
                d = (arrival - self._last_arrival) - (ext - self._newest_ext) * FRAME_S
                self.jitter_s += (abs(d) - self.jitter_s) / 16
            self._last_arrival = arrival
            self._newest_seq, self._newest_ext = sequence_number, ext

    def _update_wait(self) -> None:
        if not self._transits:
            return
        self._base = min(self._transits)
        lateness = sorted(t - self._base for t in self._transits)
        wait = lateness[(len(lateness) - 1) * LATENESS_PERCENTILE // 100]
        fec_comes = self._last_fec_ext is not None and self._newest_ext - self._last_fec_ext < FEC_RECENT
        if not fec_comes or self._lost_in_window == 0:
            self._fec_wait = False
        elif self._lost_in_window > FEC_LOSS * max(len(self._slots), FEC_MIN_SLOTS):
            self._fec_wait = True
        if self._fec_wait:
            wait += FRAME_S
        self.wait_s = min(wait, MAX_WAIT_S)

    def _restart(self) -> None:
        self.pending.clear()
        self.next_seq = None
        self.restarts += 1
        self._reset_timing()

    # The clock

    def waiting(self) -> list[tuple[int, bytes]]:
        """Frames pushed and not yet played, oldest first."""
        if self.next_seq is None:
            return []
        return sorted(self.pending.items(), key=lambda item: seq_delta(item[0], self.next_seq))

    @property
    def loss_rate(self) -> float:
        return self._lost_in_window / len(self._slots) if self._slots else 0.0

    def next(self, now: float, *, quiet: bool = True) -> Step:
        """The step for the tick at `now` (same clock as the arrivals); `quiet`: the last frame played was soft."""
        # A tick right after another (the clock catching up) or long after it: this process's own
        # loop stalled. (Waiting for the frames still queued in it would stretch a word: they are
        # concealed like lost ones, but their lateness is ours, not the network's.)
        gap = None if self._last_now is None else now - self._last_now
        irregular = gap is not None and (gap < CATCH_UP_GAP_S or gap > STALL_GAP_S)
        self._last_now = now
        if irregular:
            # Packets read since the last tick, and for two frames on, came late because of us: they say
            # nothing of the network's jitter.
            for _ in range(min(self._timed_since_pull, len(self._transits))):
                self._transits.pop()
            self._untimed_until = now + 2 * FRAME_S
        self._timed_since_pull = 0
        if self.next_seq is None:
            return NOTHING
        self._stats_in -= 1
        if self._stats_in <= 0:
            self._stats_in = STATS_EVERY
            self._update_wait()
        seq = self.next_seq
        # How much later than the jitter needs this frame is played: < 0 is too early for a late packet.
        lag = now - (self._base + self._next_ext * FRAME_S + self.wait_s)
        if lag < -HYSTERESIS_S and quiet and seq in self.pending:
            # Ahead of the delay the jitter (or FEC) needs, in a pause: grow it by one frame now,
            # before a late frame mid-word has to (a shift in speech costs PESQ-WB ~0.15).
            self.stretched += 1
            self._lag_ticks, self._lag_min, self._excess_since = 0, math.inf, None
            return Step("conceal")
        discard = None
        if lag >= MAX_EXCESS_S and not irregular:
            # Far later than the jitter needs (the loop stalled and the clock skipped ticks, or a burst
            # came): drop what is too old at once rather than a frame every few seconds. (Not while the
            # clock is catching up: its extra ticks play the backlog.)
            while lag >= FRAME_S and seq in self.pending and ((seq + 1) & 0xFFFF) in self.pending:
                discard = self.pending.pop(seq)
                self._arrivals.pop(seq, None)
                self.trimmed += 1
                self._advance(1)
                self._slot(0)
                seq, lag = self.next_seq, lag - FRAME_S
        payload = self.pending.pop(seq, None)
        if payload is not None:
            self._held(seq, now)
            step = self._play(seq, payload, lag, quiet)
            return step if discard is None or step.discard is not None else replace(step, discard=discard)

        if not self.pending:
            if self._concealed_run >= MAX_CONCEAL:
                # The speaker stopped sending (left, paused): quiet, and a fresh start when they resume.
                # The frames concealed since were not lost, the stream ended.
                self.lost -= self._trailing_lost
                self._restart()
                return NOTHING
        else:
            oldest = min(self.pending, key=lambda s: seq_delta(s, seq))
            gap = seq_delta(oldest, seq)
            if gap > MAX_CONCEAL:
                # Far behind what has arrived (after a mute, a burst of loss): jump to it.
                self._count_lost(gap)
                self._advance(gap)
                self._held(oldest, now)
                return self._play(oldest, self.pending.pop(oldest), lag, quiet)
        self._concealed_run += 1
        if lag < 0:
            # Not overdue: it may come yet (jitter, or the clock's phase right on the arrivals): wait
            # for it behind one frame of PLC. After a stretch the phase is a frame safer.
            self.stretched += 1
            self._lag_ticks, self._lag_min, self._excess_since = 0, math.inf, None
            return Step("conceal")
        # Lost (or too late for speech that won't wait): rebuild it from the next packet, or conceal.
        self._count_lost(1)
        self._trailing_lost = 0 if self.pending else self._trailing_lost + 1
        self._advance(1)
        following = self.pending.get(self.next_seq)
        if following is not None:
            if has_fec(following):
                self.recovered += 1
            return Step("recover", seq, following)
        return Step("conceal", seq)

    @property
    def held_extra_ms(self) -> float:
        """Mean time a frame waited beyond the first tick after it arrived (0 on a clean network, as before)."""
        return 1000 * FRAME_S * self.held_ticks / self.played if self.played else 0.0

    def _held(self, seq: int, now: float) -> None:
        arrival = self._arrivals.pop(seq, None)
        if arrival is not None:
            self.played += 1
            self.held_ticks += max(0, int((now - arrival) / FRAME_S))

    def _play(self, seq: int, payload: bytes, lag: float, quiet: bool) -> Step:
        self._concealed_run = self._trailing_lost = 0
        self._advance(1)
        self._slot(0)
        # Each TRIM_TICKS plays: was every frame played a whole frame later than the jitter needs?
        self._lag_min = min(self._lag_min, lag)
        self._lag_ticks += 1
        if self._lag_ticks >= TRIM_TICKS:
            if self._lag_min >= FRAME_S + HYSTERESIS_S and self._excess_since is None:
                self._excess_since = 0
            self._lag_ticks, self._lag_min = 0, math.inf
        if self._excess_since is not None:
            self._excess_since += 1
            following = self.pending.get(self.next_seq)
            if following is not None and (quiet or self._excess_since >= TRIM_FORCE_TICKS):
                # One frame more delay than needed, for a second or more: drop this one, in a pause if we can.
                self._excess_since = None
                self._lag_ticks, self._lag_min = 0, math.inf
                self.trimmed += 1
                del self.pending[self.next_seq]
                self._arrivals.pop(self.next_seq, None)
                discard, seq, payload = payload, self.next_seq, following
                self._advance(1)
                return Step("play", seq, payload, discard=discard)
        return Step("play", seq, payload)

    def _advance(self, frames: int) -> None:
        self.next_seq = (self.next_seq + frames) & 0xFFFF
        self._next_ext += frames

    def _count_lost(self, frames: int) -> None:
        self.lost += frames
        for _ in range(min(frames, WINDOW)):
            self._slot(1)
        self._update_wait()  # at once: the next loss may already be rebuilt from FEC

    def _unslot(self, ext: int) -> None:
        """A frame counted lost came after all: late, not lost, as far as the FEC wait is concerned."""
        back = self._next_ext - 1 - ext
        if 0 <= back < len(self._slots) and self._slots[-1 - back]:
            self._slots[-1 - back] = 0
            self._lost_in_window -= 1

    def _slot(self, lost: int) -> None:
        if len(self._slots) == self._slots.maxlen:
            self._lost_in_window -= self._slots[0]
        self._slots.append(lost)
        self._lost_in_window += lost
