"""A speaker on a bad network, for loss tests and `bench/media_quality.py`: an FEC microphone and a lossy, jittery leg.

This kernel has no netem, so the network is impaired in the sending process:
`impair` wraps the ICE transport's send of one peer connection and drops or
delays its RTP packets (after SRTP, as a network would; DTLS, STUN and RTCP
pass untouched).

`FecMicrophone` plays samples as a browser's microphone would send them: Opus
20 ms frames at real-time pace, with in-band FEC, and the expected loss it
encodes for taken from the receiver reports its sender gets (as Chrome does
once the answer says `useinbandfec=1`). It keeps the send time of every frame.
"""

import asyncio
import contextlib
import fractions
import random
import time
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

from media.opus import FRAME_SAMPLES, SAMPLE_RATE, OpusEncoder

FRAME_S = 0.020


@dataclass
class Impairment:
    """Random loss (a share of RTP packets) and a random extra delay per packet, uniform in `delay_s`."""

    loss: float = 0.0
    delay_s: tuple[float, float] = (0.0, 0.0)
    seed: int = 1
    sent: int = 0
    dropped: int = 0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    @property
    def mean_delay_s(self) -> float:
        return sum(self.delay_s) / 2


def _is_rtp(data: bytes) -> bool:
    # RTP and RTCP start with version 2 (0b10......); RTCP's packet types are 192-223.
    return len(data) > 1 and 128 <= data[0] <= 191 and not 192 <= data[1] <= 223


def impair(pc: RTCPeerConnection, impairment: Impairment) -> None:
    """Drop and delay the RTP packets `pc` sends (call once its transceivers exist)."""
    ice = pc.getTransceivers()[0].sender.transport.transport
    send = ice._send
    loop = asyncio.get_running_loop()
    low, high = impairment.delay_s

    async def impaired_send(data: bytes) -> None:
        if not _is_rtp(data):
            await send(data)
            return
        impairment.sent += 1
        if impairment.rng.random() < impairment.loss:
            impairment.dropped += 1
            return
        delay = impairment.rng.uniform(low, high) if high > 0 else 0.0
        if delay <= 0:
            await send(data)
        else:
            loop.call_later(delay, lambda: loop.create_task(_send_quietly(send, data)))

    ice._send = impaired_send


async def _send_quietly(send, data: bytes) -> None:
    with contextlib.suppress(ConnectionError):  # closed meanwhile
        await send(data)


class FecMicrophone(MediaStreamTrack):
    """Mono int16 samples at 48 kHz, sent as Opus with FEC at real-time pace (silence after the end unless `loop`).

    With `wait=True` it sends silence until `play()`; `started_at` is then the index of the first frame of the samples.
    """

    kind = "audio"

    def __init__(self, samples: np.ndarray, *, loop: bool = False, bitrate: int = 32_000, wait: bool = False) -> None:
        super().__init__()
        self.started_at: int | None = None if wait else 0
        frames = len(samples) // FRAME_SAMPLES
        self.frames = samples[: frames * FRAME_SAMPLES].astype(np.int16).reshape(frames, FRAME_SAMPLES)
        self.loop = loop
        self.encoder = OpusEncoder(channels=1, bitrate=bitrate)
        self.sender: RTCRtpSender | None = None
        self.sent_at: list[float] = []  # monotonic time each frame left, by frame index
        self._start: float | None = None
        self._last_stats = 0.0

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        index = len(self.sent_at)
        if self._start is None:
            self._start = time.monotonic()
        wait = self._start + index * FRAME_S - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        await self._follow_reports()
        position = None if self.started_at is None else index - self.started_at
        if position is not None and (position < len(self.frames) or self.loop):
            samples = self.frames[position % len(self.frames)]
        else:
            samples = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        payload = self.encoder.encode(samples)
        self.sent_at.append(time.monotonic())
        packet = av.Packet(payload)
        packet.pts = index * FRAME_SAMPLES
        packet.time_base = fractions.Fraction(1, SAMPLE_RATE)
        return packet

    def play(self) -> None:
        """Start the samples with the next frame."""
        self.started_at = len(self.sent_at)

    async def _follow_reports(self) -> None:
        """Encode for the loss the receiver reports (RTCP RR fraction lost), as a browser does."""
        now = time.monotonic()
        if self.sender is None or now - self._last_stats < 0.5:
            return
        self._last_stats = now
        for stats in (await self.sender.getStats()).values():
            if stats.type == "remote-inbound-rtp":
                self.encoder.set_expected_loss(round(stats.fractionLost * 100 / 256))


def add_microphone(pc: RTCPeerConnection, microphone: FecMicrophone) -> None:
    transceiver = pc.addTransceiver(microphone, direction="sendonly")
    microphone.sender = transceiver.sender


async def remote_inbound(sender: RTCRtpSender) -> list:
    """The receiver reports this sender got, as aiortc's `remote-inbound-rtp` stats."""
    return [s for s in (await sender.getStats()).values() if s.type == "remote-inbound-rtp"]
