"""The worker's decode path, with no network: the jitter buffer's waits, FEC and PLC, and the mix.

Time is given explicitly: packet k is sent at k x 20 ms, arrives `delay` later,
and the room's clock ticks every 20 ms at `PHASE` past each send.
"""

import random

import numpy as np

from media.jitter import MAX_CONCEAL, RESTART_GAP, JitterBuffer
from media.mixer import FRAME_SAMPLES, Mixer, SpeakerInput
from media.opus import OpusDecoder, OpusEncoder, has_fec

FRAME_S = 0.020
PHASE = 0.010


def voice_packets(count: int, *, expected_loss: int = 10) -> list[bytes]:
    """A voiced sound (a wobbling 220 Hz with some breath), encoded as a browser would with FEC on."""
    encoder = OpusEncoder(channels=1)
    encoder.set_expected_loss(expected_loss)
    t = np.arange(count * FRAME_SAMPLES) / 48_000
    noise = np.random.default_rng(1).normal(0, 300, len(t))
    samples = (np.sin(2 * np.pi * 220 * t) * 6000 * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + noise).astype(np.int16)
    return [encoder.encode(samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(count)]


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def play(packets, arrivals: dict[int, float], ticks: int, speaker: SpeakerInput | None = None):
    """Push each packet at its arrival time and pull at every tick; returns (speaker, [(pulled_seq, samples)])."""
    speaker = speaker or SpeakerInput()
    order = sorted(arrivals.items(), key=lambda item: item[1])
    out, i = [], 0
    for tick in range(ticks):
        now = tick * FRAME_S + PHASE
        while i < len(order) and order[i][1] <= now:
            seq, at = order[i]
            speaker.push(seq & 0xFFFF, packets[seq], arrival=at)
            i += 1
        out.append((speaker.pulled_seq if (samples := speaker.pull(now=now)) is not None else None, samples))
    return speaker, out


def test_on_a_clean_network_each_frame_is_played_at_the_first_tick_after_it_arrives():
    # given: packets that arrive 1 ms after they are sent, ticks 10 ms after each send
    packets = voice_packets(100)
    arrivals = {k: k * FRAME_S + 0.001 for k in range(100)}

    # when
    speaker, out = play(packets, arrivals, 100)

    # then: tick k plays frame k (it waited 9 ms), nothing concealed, nothing left waiting
    assert [seq for seq, _ in out] == list(range(100))
    assert all(len(samples) == FRAME_SAMPLES * 2 for _, samples in out)
    assert (speaker.lost, speaker.concealed, speaker.buffer.stretched) == (0, 0, 0)
    assert speaker.buffer.held_extra_ms == 0.0
    assert speaker.waiting() == []


def test_a_lost_frame_is_rebuilt_from_the_next_packets_fec_once_losses_make_the_buffer_wait_for_it():
    # given: 5 % of the packets lost, after the first second
    packets = voice_packets(300)
    lose = set(random.Random(2).sample(range(50, 300), 15))
    arrivals = {k: k * FRAME_S + 0.001 for k in range(300) if k not in lose}

    # when
    speaker, out = play(packets, arrivals, 310)

    # then: every lost frame was replaced (never a silent tick); those whose next packet came with
    # an FEC copy were rebuilt from it, but for the first two (until three losses, the buffer
    # doesn't hold a frame back for FEC)
    rebuildable = [k for k in sorted(lose) if k + 1 not in lose and has_fec(packets[k + 1])]
    assert speaker.lost == 15
    assert len(rebuildable) >= 5
    assert speaker.buffer.recovered >= len(rebuildable) - 2
    played = [samples for _, samples in out[:300]]
    assert all(samples is not None and rms(samples) > 100 for samples in played)
    assert not any(seq in lose for seq, _ in out)


def test_fec_recovers_what_plc_only_guesses():
    # given: a frame lost whose next packet carries its FEC copy
    packets = voice_packets(60)
    lost = next(k for k in range(20, 59) if has_fec(packets[k + 1]))
    reference, recovering, concealing = OpusDecoder(), OpusDecoder(), OpusDecoder()
    for k in range(lost):
        truth = reference.decode(packets[k])
        recovering.decode(packets[k])
        concealing.decode(packets[k])
    truth = reference.decode(packets[lost])

    # when
    recovered = recovering.recover(packets[lost + 1])
    concealed = concealing.conceal()

    # then: both sound (no zeros), and FEC is the closer of the two
    assert rms(recovered) > 500 and rms(concealed) > 500
    assert rms(recovered - truth) < rms(concealed - truth)


def test_reordered_packets_are_waited_for_as_long_as_the_measured_jitter_needs():
    # given: every packet delayed 10-50 ms at random (30 +/- 20 ms of jitter): they often come out of order
    packets = voice_packets(500)
    rng = random.Random(3)
    arrivals = {k: k * FRAME_S + rng.uniform(0.010, 0.050) for k in range(500)}

    # when
    speaker, out = play(packets, arrivals, 500)

    # then: it learned to wait about 40 ms (the spread of the delays), and after the first second
    # no frame came too late; no tick was silent once the first packet was in
    assert 0.030 <= speaker.buffer.wait_s <= 0.045
    assert [seq for seq, _ in out[50:]] == [seq for seq, _ in out[50:] if seq is not None]
    assert all(samples is not None for _, samples in out[3:])


def test_when_the_jitter_passes_the_delay_shrinks_again_in_a_pause():
    # given: 5 s of 10-50 ms delays, then a clean network; quiet frames now and then (a pause every second)
    packets = voice_packets(1200)
    silence = OpusEncoder(channels=1).encode(np.zeros(FRAME_SAMPLES, dtype=np.int16))
    packets = [silence if k % 50 < 10 else p for k, p in enumerate(packets)]
    rng = random.Random(4)
    arrivals = {k: k * FRAME_S + (rng.uniform(0.010, 0.050) if k < 250 else 0.010) for k in range(1200)}

    # when
    speaker, out = play(packets, arrivals, 1200)

    # then: frames were dropped in pauses until a frame is played at the first tick after it arrives again
    assert speaker.buffer.trimmed >= 1
    assert out[-1][0] is not None and 1199 - out[-1][0] <= 1


def test_packets_read_late_because_this_process_stalled_dont_make_the_buffer_wait_longer():
    # given: a speaker played for a second
    packets = voice_packets(100)
    speaker, _ = play(packets, {k: k * FRAME_S + 0.001 for k in range(50)}, 50)

    # when: the loop stalls for 100 ms; the clock catches up with ticks back to back, the first of
    # them before the packets that waited in the socket meanwhile are read
    resume = 55 * FRAME_S + PHASE
    speaker.pull(now=resume)
    for k in range(50, 56):
        speaker.push(k, packets[k], arrival=resume + 0.001)
    catch_up = [speaker.pull(now=resume + 0.002 * n) for n in range(1, 5)]
    for tick in range(56, 100):
        speaker.push(tick, packets[tick], arrival=tick * FRAME_S + 0.001)
        catch_up.append(speaker.pull(now=tick * FRAME_S + PHASE))

    # then: no silent tick, the extra ticks played the backlog (one frame lost, the one due before
    # the packets were read), and the stall's 100 ms were not taken for the network's jitter: no
    # frame waits more than one tick longer than before
    assert all(samples is not None for samples in catch_up)
    assert speaker.lost == 1
    assert speaker.buffer.wait_s < 0.005
    assert speaker.buffer.held_extra_ms <= 20


def test_a_backlog_left_by_a_long_stall_is_dropped_at_once_not_played_late_for_good():
    # given: a speaker heard for a second, then the loop stalls 300 ms; the clock skips the missed
    # ticks (`Room._run`) and the packets that waited in the socket all come at once
    packets = voice_packets(150)
    speaker, _ = play(packets, {k: k * FRAME_S + 0.001 for k in range(50)}, 50)
    resume = 65 * FRAME_S + 0.005
    for k in range(50, 66):
        speaker.push(k, packets[k], arrival=resume)

    # when: the clock goes on
    played = []
    for tick in range(66, 150):
        speaker.push(tick, packets[tick], arrival=tick * FRAME_S + 0.001)
        speaker.pull(now=tick * FRAME_S + PHASE)
        played.append(speaker.pulled_seq)

    # then: within a few ticks each frame is played at the first tick after it arrives again
    assert speaker.buffer.trimmed >= 10
    assert played[-50:] == list(range(100, 150))
    assert len(speaker.pending) == 0


def test_a_speaker_who_stops_sending_fades_out_then_gives_nothing_and_no_loss_is_counted():
    packets = voice_packets(50)
    arrivals = {k: k * FRAME_S + 0.001 for k in range(50)}

    speaker, out = play(packets, arrivals, 50 + MAX_CONCEAL + 5)

    after = [samples for _, samples in out[50:]]
    assert all(samples is not None for samples in after[:MAX_CONCEAL])
    assert after[MAX_CONCEAL:] == [None] * 5
    assert speaker.lost == 0


def test_after_a_mute_the_speaker_starts_afresh_instead_of_counting_the_gap_as_lost():
    # given: a speaker played for a second, then was muted (the room clears what waits)
    packets = voice_packets(200)
    speaker, _ = play(packets, {k: k * FRAME_S + 0.001 for k in range(50)}, 50)
    speaker.pending.clear()

    # when: they come back two seconds of sequence numbers later
    later = {k: k * FRAME_S + 0.001 for k in range(150, 200)}
    speaker, out = play(packets, later, 200, speaker)

    # then
    assert speaker.buffer.restarts >= 1
    assert speaker.lost == 0
    assert out[-1][0] == 199 or out[-2][0] == 199


def test_waiting_lists_frames_oldest_first_across_the_wrap():
    buffer = JitterBuffer()
    for seq in (65534, 1, 65535, 0):
        buffer.push(seq, b"\xf8\xff\xfe", arrival=0.0)

    assert [seq for seq, _ in buffer.waiting()] == [65534, 65535, 0, 1]
    assert buffer.next(now=0.01).sequence_number == 65534
    assert [seq for seq, _ in buffer.waiting()] == [65535, 0, 1]
    assert RESTART_GAP > 4


def test_mixing_sums_and_clips():
    mixer = Mixer()
    loud = np.full(1920, 30_000, dtype=np.int16)

    mixed = mixer.mix([loud, loud])

    assert mixed.dtype == np.int16 and mixed.max() == 32_767
    assert (mixer.mix([]) == 0).all()
