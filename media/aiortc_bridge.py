"""The one place the media worker reaches below aiortc's public API (aiortc 1.16.0, pinned).

Four needs that the public API does not meet, each measured (docs/media.md):

1. **Encoded packets in.** `RTCRtpReceiver` always decodes, behind a jitter
   buffer that holds four frames (80 ms) and stalls after a loss. `tap_receiver`
   replaces the receiver's `_handle_rtp_packet` on that one receiver, so every
   RTP packet (already SRTP-decrypted and parsed by the DTLS transport) goes
   to our callback instead: we forward the Opus payload untouched to other
   speakers and decode it ourselves (`media.mixer.SpeakerInput`). The tap still
   feeds the receiver's per-SSRC statistics, which aiortc's own RTCP loop turns
   into receiver reports: that is how a speaker's browser learns its loss and
   spends more of its bitrate on FEC.
2. **One packet, many listeners.** An `RTCRtpSender` per listener costs an
   asyncio task and ~80 µs per packet. `ListenerSink` sends a serialized RTP
   packet to one listener with what is left of the work: SRTP protect
   (`RTCDtlsTransport._tx_srtp`) and a UDP `sendto` on the nominated ICE pair
   (`RTCIceTransport._connection._nominated`). The sender keeps its SSRC,
   payload type and header extensions from negotiation; we read them here.
3. **Opus FEC asked for.** aiortc answers Opus with no `a=fmtp` line, so a
   browser sends no in-band FEC. `request_opus_fec` sets `useinbandfec=1` and
   `minptime=10` on the negotiated codec (`RTCRtpTransceiver._codecs`) before
   the answer is written from it.
4. **Loopback ICE.** aioice leaves 127.0.0.1 out of its host candidates;
   `allow_loopback_candidates` puts it back (tests and benchmarks only,
   behind `SPACES_MEDIA_ICE_LOOPBACK`).

Everything else (negotiation, DTLS, RTCP) stays aiortc's.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aioice.ice
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

log = logging.getLogger(__name__)

PacketCallback = Callable[[RtpPacket], None]


# What the answer asks of a speaker's Opus encoder (RFC 7587): in-band FEC, which our decoder uses
# to rebuild a lost frame from the next packet; 10 ms frames allowed.
OPUS_FEC_PARAMETERS = {"useinbandfec": 1, "minptime": 10}


def request_opus_fec(transceiver: RTCRtpTransceiver) -> None:
    """Ask for in-band FEC in the answer: call after setRemoteDescription, before createAnswer."""
    for codec in transceiver._codecs:
        if codec.mimeType.lower() == "audio/opus":
            codec.parameters.update(OPUS_FEC_PARAMETERS)


def tap_receiver(receiver: RTCRtpReceiver, on_packet: PacketCallback) -> None:
    """Send every RTP packet of `receiver` to `on_packet` instead of aiortc's jitter buffer and decoder.

    Keeps what aiortc's receiver reports need: each packet of a known payload
    type is counted in the receiver's per-SSRC `StreamStatistics` (highest
    sequence number, loss, RFC 3550 jitter), which its RTCP task sends to the
    speaker as receiver reports every second or so.
    """
    codecs = receiver._RTCRtpReceiver__codecs
    streams = receiver._RTCRtpReceiver__remote_streams

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        codec = codecs.get(packet.payload_type)
        if codec is None:
            return  # a payload type never negotiated: aiortc drops it too
        stream = streams.get(packet.ssrc)
        if stream is None:
            stream = streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        stream.add(packet)
        if packet.payload:
            on_packet(packet)

    # An instance attribute shadows the method the DTLS transport's router calls.
    receiver._handle_rtp_packet = handle_rtp_packet


def watch_receiver(receiver: RTCRtpReceiver, on_packet: PacketCallback) -> None:
    """Show every RTP packet of `receiver` to `on_packet`, then let aiortc handle it as usual (decode and all).

    For tests and benchmarks: what a client's receiver got, sequence numbers and timestamps included.
    """
    handle = receiver._handle_rtp_packet

    async def handle_rtp_packet(packet: RtpPacket, arrival_time_ms: int) -> None:
        on_packet(packet)
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = handle_rtp_packet


def share_ssrc(transceiver: RTCRtpTransceiver, ssrc: int) -> None:
    """Send as `ssrc` (the room's): every listener of a room shares it, so one serialized packet serves
    them all. aiortc picks a random SSRC per sender and has no setter."""
    transceiver.sender._ssrc = ssrc


def client_sends(transceiver: RTCRtpTransceiver) -> bool:
    """Does the remote offer send on this transceiver? aiortc keeps the offer's direction, seen from our
    side (a client that sends offers what we receive), in `_offerDirection` only."""
    return transceiver._offerDirection in ("recvonly", "sendrecv")


class ParkedTrack(MediaStreamTrack):
    """A track that never yields: keeps a sender's own RTP loop asleep at no cost."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._never = asyncio.get_running_loop().create_future()

    async def recv(self):
        await self._never

    def stop(self) -> None:
        if not self._never.done():
            self._never.cancel()
        super().stop()


@dataclass
class RtpShape:
    """What negotiation fixed for one sender: identical shapes serialize to identical bytes."""

    ssrc: int
    payload_type: int
    mid: str | None
    extensions: tuple[tuple[str, int], ...]

    def key(self) -> tuple:
        return (self.ssrc, self.payload_type, self.mid, self.extensions)


def sender_shape(transceiver: RTCRtpTransceiver) -> RtpShape:
    """Read the SSRC, payload type, mid and header extension ids a started sender uses."""
    sender: RTCRtpSender = transceiver.sender
    codec = transceiver._codecs[0]
    extensions = tuple(sorted((ext.uri, ext.id) for ext in transceiver._headerExtensions))
    return RtpShape(ssrc=sender._ssrc, payload_type=codec.payloadType, mid=transceiver.mid, extensions=extensions)


def serialize(shape: RtpShape, *, payload: bytes, sequence_number: int, timestamp: int) -> bytes:
    """One RTP packet in the shape a sender negotiated."""
    packet = RtpPacket(payload_type=shape.payload_type, sequence_number=sequence_number, timestamp=timestamp)
    packet.ssrc = shape.ssrc
    packet.marker = 1
    packet.payload = payload
    packet.extensions.mid = shape.mid
    extension_map = HeaderExtensionsMap()
    extension_map.configure(_ExtensionParams(shape.extensions))
    return packet.serialize(extension_map)


class _ExtensionParams:
    """The shape `HeaderExtensionsMap.configure` reads: `.headerExtensions` with `.uri` and `.id`."""

    def __init__(self, extensions: tuple[tuple[str, int], ...]):
        self.headerExtensions = [_Extension(uri, ext_id) for uri, ext_id in extensions]


@dataclass
class _Extension:
    uri: str
    id: int


class ListenerSink:
    """Sends already-serialized RTP to one listener: SRTP protect and one `sendto`.

    The send path (the SRTP session's `protect`, the nominated pair's socket and
    address) is resolved once when the listener is connected and forgotten
    when its DTLS state changes: looking it up per packet cost a third of the time.
    """

    def __init__(self, transceiver: RTCRtpTransceiver):
        self.transceiver = transceiver
        self.dtls = transceiver.sender.transport
        self.sent = 0
        self._path = None
        self.dtls.on("statechange", self._forget_path)

    def _forget_path(self) -> None:
        self._path = None

    def _resolve_path(self):
        if self.dtls._tx_srtp is None or self.dtls.state != "connected":
            return None
        pair = self.dtls.transport._connection._nominated.get(1)
        if pair is None or pair.protocol.transport is None:
            return None
        self._path = (self.dtls._tx_srtp.protect, pair.protocol.transport.sendto, pair.remote_addr)
        return self._path

    def ready(self) -> bool:
        return (self._path or self._resolve_path()) is not None

    def send(self, data: bytes) -> bool:
        """Protect and send one packet; False if the listener is not connected (yet or any more)."""
        path = self._path or self._resolve_path()
        if path is None:
            return False
        protect, sendto, address = path
        try:
            sendto(protect(data), address)
        except (OSError, AttributeError):
            # The socket closed under us (AttributeError: asyncio's transport after close).
            self._path = None
            return False
        self.sent += 1
        return True


_original_get_host_addresses = aioice.ice.get_host_addresses


def allow_loopback_candidates() -> None:
    """Offer 127.0.0.1 as a host candidate too (aioice leaves it out)."""

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = _original_get_host_addresses(use_ipv4, use_ipv6)
        return [*addresses, "127.0.0.1"] if use_ipv4 and "127.0.0.1" not in addresses else addresses

    aioice.ice.get_host_addresses = with_loopback
