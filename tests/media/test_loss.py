"""Loss on a speaker's leg, with aiortc clients on loopback: no silent gaps, FEC asked for, receiver reports sent."""

import asyncio

import numpy as np
import pytest
from aiortc import RTCPeerConnection
from channels.db import database_sync_to_async

from rooms.models import Role
from tests.factories import UserFactory
from tests.media.clients import SLOTS, join_as_listener, join_as_speaker, negotiate, peaks, wait_connected, write_tone
from tests.media.impaired import FecMicrophone, Impairment, add_microphone, impair, remote_inbound
from tests.rooms.scene import make_space, seat
from tests.rooms.ws import connect

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]
db = database_sync_to_async


def tone(frequency: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 48_000)) / 48_000
    return (np.sin(2 * np.pi * frequency * t) * 12_000).astype(np.int16)


async def join_as_lossy_speaker(socket, microphone: FecMicrophone, impairment: Impairment):
    pc = RTCPeerConnection()
    add_microphone(pc, microphone)
    for _ in range(SLOTS):
        pc.addTransceiver("audio", direction="recvonly")
    impair(pc, impairment)
    return pc, await negotiate(socket, pc, publish=True)


def tone_gaps_ms(
    samples: np.ndarray, frequency: float, *, floor: float, window: int = 480, hop: int = 240
) -> list[float]:
    """Runs (ms) where the `frequency` component falls under `floor` x its median strength (10 ms windows, 5 ms hop)."""
    count = (len(samples) - window) // hop
    taper = np.hanning(window)
    probe = np.exp(-2j * np.pi * frequency * np.arange(window) / 48_000) * taper
    strength = np.abs(np.array([np.dot(samples[i * hop : i * hop + window], probe) for i in range(count)]))
    weak = strength < floor * np.median(strength)
    runs, run = [], 0
    for is_weak in [*weak, False]:
        if is_weak:
            run += 1
        elif run:
            runs.append(((run - 1) * hop + window) / 48.0)
            run = 0
    return runs


async def test_at_ten_percent_loss_a_mixed_tone_reaches_the_listener_without_a_silent_gap(loopback, tmp_path):
    # given: two speakers, so the room mixes: one at 440 Hz whose packets are lost at random, one in
    # ten, and a clean one at 880 Hz; and a listener
    space = await db(make_space)()
    alto, bass, fan = await db(UserFactory)(), await db(UserFactory)(), await db(UserFactory)()
    await db(seat)(space, alto, Role.SPEAKER, muted=False)
    await db(seat)(space, bass, Role.SPEAKER, muted=False)
    alto_socket, _ = await connect(space.pk, alto)
    bass_socket, _ = await connect(space.pk, bass)
    fan_socket, _ = await connect(space.pk, fan)
    lossy = Impairment(loss=0.10, seed=14)
    alto_pc, _ = await join_as_lossy_speaker(alto_socket, FecMicrophone(tone(440, 1), loop=True), lossy)
    bass_pc, _, _ = await join_as_speaker(bass_socket, write_tone(tmp_path / "a880.wav", 880))
    fan_pc, fan_heard, _ = await join_as_listener(fan_socket)
    for pc in (alto_pc, bass_pc, fan_pc):
        await wait_connected(pc)
    await asyncio.sleep(1.5)

    # when: the listener records five seconds
    dropped_before = lossy.dropped
    heard = await fan_heard.record(5.0)

    # then: about 25 of the 440 Hz packets were lost on the way, and the 440 Hz tone never dropped
    # out at the listener for more than 20 ms: each lost frame was rebuilt or concealed
    assert lossy.dropped - dropped_before >= 10
    assert sorted(peaks(heard, count=2)) == [440, 880]
    # (silence: under 1 % of the tone's usual strength, -40 dB. 20 ms of zeros per lost frame, as
    # before, showed here as one 20 ms gap per loss, about 25. Now a short dip at most: one 10 ms
    # window under -40 dB in a CI run; 2 of 10 runs at 0d67a93 had at least one)
    silences = tone_gaps_ms(heard, 440, floor=0.01)
    assert max(silences, default=0.0) <= 20.0
    assert len(silences) <= 2, silences

    for pc in (alto_pc, bass_pc, fan_pc):
        await pc.close()
    for socket in (alto_socket, bass_socket, fan_socket):
        await socket.disconnect()


async def test_a_speaker_is_asked_for_fec_and_told_of_the_loss_in_receiver_reports(loopback):
    # given: a speaker whose packets are lost at random, one in ten
    space = await db(make_space)()
    singer = await db(UserFactory)()
    await db(seat)(space, singer, Role.SPEAKER, muted=False)
    singer_socket, _ = await connect(space.pk, singer)
    microphone = FecMicrophone(tone(440, 1), loop=True)

    # when: they publish for a few seconds
    singer_pc, answer = await join_as_lossy_speaker(singer_socket, microphone, Impairment(loss=0.10, seed=3))
    await wait_connected(singer_pc)
    reports = []
    async with asyncio.timeout(8):
        while not (any(r.fractionLost > 0 for r in reports) and microphone.encoder.expected_loss_pct > 0):
            await asyncio.sleep(0.25)
            reports = await remote_inbound(microphone.sender)

    # then: the answer asked for in-band FEC, the worker reported the loss, and the encoder now spends bits on FEC
    assert answer["type"] == "media.answer", answer
    opus_fmtp = [line for line in answer["sdp"].splitlines() if line.startswith("a=fmtp:") and "useinbandfec" in line]
    assert opus_fmtp and "useinbandfec=1" in opus_fmtp[0] and "minptime=10" in opus_fmtp[0]
    assert reports[0].packetsLost > 0
    assert 0 < reports[0].fractionLost < 256 * 0.3
    assert microphone.encoder.expected_loss_pct > 0

    await singer_pc.close()
    await singer_socket.disconnect()
