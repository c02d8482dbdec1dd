"""The worker's decode path: one frame held, losses skipped, a settled backlog trimmed."""

import numpy as np

from media.mixer import RESYNC_TICKS, Mixer, SpeakerInput


def tone_packets(count: int, frequency: float = 440) -> list[bytes]:
    mixer = Mixer()
    t = np.arange(960) / 48_000
    frame = (np.sin(2 * np.pi * frequency * t) * 8000).astype(np.int16).repeat(2)
    return [mixer.encode(frame)[0] for _ in range(count)]


def test_a_backlog_left_by_a_hiccup_is_trimmed_to_one_frame():
    # given: three frames arrived at once (a hiccup), then one per tick
    packets = tone_packets(3 + 3 * RESYNC_TICKS)
    speaker = SpeakerInput()
    for seq in range(3):
        speaker.push(seq, packets[seq])

    # when
    left_after_pull = []
    for tick in range(3 * RESYNC_TICKS):
        speaker.push(3 + tick, packets[3 + tick])
        assert speaker.pull() is not None
        left_after_pull.append(len(speaker.pending))

    # then: two frames waited at first; after the resync only the one being played
    assert left_after_pull[0] == 2
    assert left_after_pull[-RESYNC_TICKS:] == [0] * RESYNC_TICKS
    assert speaker.resyncs >= 1


def test_a_lost_frame_is_skipped_at_the_next_tick():
    packets = tone_packets(5)
    speaker = SpeakerInput()
    speaker.push(0, packets[0])
    assert speaker.pull() is not None
    speaker.push(2, packets[2])  # 1 never arrives

    assert speaker.pull() is not None
    assert (speaker.next_seq, speaker.lost) == (3, 1)


def test_mixing_sums_and_clips():
    mixer = Mixer()
    loud = np.full(1920, 30_000, dtype=np.int16)

    mixed = mixer.mix([loud, loud])

    assert mixed.dtype == np.int16 and mixed.max() == 32_767
    assert (mixer.mix([]) == 0).all()
