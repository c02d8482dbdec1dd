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
   asyncio task and ~80 µs per packet. `SrtpFanout` sends a serialized RTP
   packet to each listener with what is left of the work: SRTP protect in the
   listener's session (`RTCDtlsTransport._tx_srtp`, called in libsrtp through
   pylibsrtp's binding without its per-call wrapper) and a UDP `sendto` on the
   nominated ICE pair (`RTCIceTransport._connection._nominated`). The sender
   keeps its SSRC, payload type and header extensions from negotiation; we
   read them here. Its RTCP task (a timer per listener) is parked: the room
   sends every listener's sender reports from one timer, with what that
   listener was really sent, and keeps the receiver reports' loss figures.
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
import contextlib
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass

import aioice.ice
from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.rtcrtpreceiver import StreamStatistics
from aiortc.rtp import HeaderExtensionsMap, RtcpByePacket, RtpPacket
from pylibsrtp import SRTP_MAX_SRTCP_TRAILER_LEN, Session
from pylibsrtp._binding import ffi as _ffi
from pylibsrtp._binding import lib as _srtp

_srtp_protect = _srtp.srtp_protect
_srtp_protect_rtcp = _srtp.srtp_protect_rtcp

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
    """One listener's end of the room's stream: where its packets go, and the room's RTCP to it.

    The send path (the DTLS transport's SRTP session and the nominated pair's
    socket and address) is resolved once the listener is connected and
    forgotten when its DTLS state changes; `on_change` (the room's) hears of
    both, so the room's fan-out lists are rebuilt only then. aiortc's own
    RTCP task for the sender is parked (`_park_sender_rtcp`): the room sends
    every listener's sender reports from one timer (`SrtpFanout.send_reports`),
    and the listener's receiver reports are only noted (`receiver_report`).
    """

    def __init__(self, transceiver: RTCRtpTransceiver):
        self.transceiver = transceiver
        self.dtls = transceiver.sender.transport
        self.on_change: Callable[[], None] | None = None
        # Where the room's stream counters stood when this listener's path was first resolved: its
        # sender reports count from there.
        self.counted_from: tuple[int, int] | None = None
        # The listener's latest receiver report: (fraction lost of 256, cumulative lost, jitter in samples).
        self.receiver_report: tuple[int, int, int] | None = None
        self._path: SendPath | None = None
        self._sdes: bytes | None = None
        self.dtls.on("statechange", self._forget_path)
        _park_sender_rtcp(transceiver.sender)
        _note_receiver_reports(transceiver.sender, self)

    def _forget_path(self) -> None:
        self._path = None
        if self.on_change is not None:
            self.on_change()

    def path(self) -> "SendPath | None":
        """How to send to this listener now, or None while it is not connected (yet or any more)."""
        if self._path is not None:
            return self._path
        session = self.dtls._tx_srtp
        if session is None or self.dtls.state != "connected":
            return None
        pair = self.dtls.transport._connection._nominated.get(1)
        if pair is None or pair.protocol.transport is None:
            return None
        self._path = send_path(session, pair.protocol.transport.sendto, pair.remote_addr)
        return self._path

    def ready(self) -> bool:
        return self.path() is not None

    def sdes(self) -> bytes | None:
        """The RTCP SDES chunk naming this sender (its CNAME), as aiortc's own reports carry it."""
        if self._sdes is None:
            cname = self.transceiver.sender._RTCRtpSender__cname
            if cname is not None:
                self._sdes = _sdes_cname(self.transceiver.sender._ssrc, cname.encode())
        return self._sdes

    @staticmethod
    def group(sinks: "list[ListenerSink]") -> "SrtpFanout":
        return SrtpFanout(sinks)


# One listener's send path: its SRTP session (context, buffer as cdata, as a Python buffer, a length
# cell, as a memoryview), the socket's `sendto` and the listener's address.
SendPath = tuple


def send_path(session: Session, sendto: Callable, address: tuple) -> SendPath:
    """What `SrtpFanout` needs to protect in `session`'s own buffer and send to `address`.

    The caller keeps `session` alive as long as the path (the path holds its raw context)."""
    return (
        session._srtp[0],
        session._cdata,
        session._buffer,
        _ffi.new("int *"),
        memoryview(session._buffer),
        sendto,
        address,
    )


# Room for the SRTP tag after a packet in a session's 1,500-byte buffer (pylibsrtp's own bound).
_SRTP_ROOM = 1500 - SRTP_MAX_SRTCP_TRAILER_LEN


class SrtpFanout:
    """One serialized RTP packet to many listeners: per listener, SRTP protect and one `sendto`.

    The per-listener cost is what a listener's packets cost the worker, so this
    loop is the whole of it: the packet is copied into the listener's SRTP
    session buffer, protected there by libsrtp (pylibsrtp's own call, without
    its per-call wrapper: a fresh length cell and two Python frames a packet)
    and handed to the socket as a view of that buffer (asyncio copies it only
    if it has to queue it).
    """

    def __init__(self, sinks: list[ListenerSink]):
        self.sinks: list[ListenerSink] = []
        self.paths: list[SendPath] = []
        for sink in sinks:
            path = sink.path()
            if path is not None:
                self.sinks.append(sink)
                self.paths.append(path)

    def __len__(self) -> int:
        return len(self.paths)

    def send(self, data: bytes) -> int:
        """Send `data` to every listener; returns how many it went to. A broken path is forgotten."""
        length = len(data)
        if length > _SRTP_ROOM:
            return 0
        sent = 0
        broken = None
        for path in self.paths:
            context, cdata, buffer, size, view, sendto, address = path
            buffer[0:length] = data
            size[0] = length
            if _srtp_protect(context, cdata, size):
                continue  # refused (a sequence number this listener already had): this packet only
            try:
                sendto(view[: size[0]], address)
            except (OSError, AttributeError):
                # The socket closed under us (AttributeError: asyncio's transport after close).
                broken = broken or []
                broken.append(path)
                continue
            sent += 1
        if broken:
            self._forget(broken)
        return sent

    def send_reports(self, part: int, parts: int, *, ntp: int, rtp_timestamp: int, counts: tuple[int, int]) -> None:
        """Sender reports (RTCP SR + SDES) to every `parts`-th listener from `part`: what each was sent."""
        packets, octets = counts
        broken = None
        for sink, path in zip(self.sinks[part::parts], self.paths[part::parts], strict=True):
            sdes = sink.sdes()
            if sdes is None or sink.counted_from is None:
                continue
            from_packets, from_octets = sink.counted_from
            report = _SR.pack(
                0x80,
                200,
                6,
                sink.transceiver.sender._ssrc,
                ntp >> 32,
                ntp & 0xFFFFFFFF,
                rtp_timestamp,
                (packets - from_packets) & 0xFFFFFFFF,
                (octets - from_octets) & 0xFFFFFFFF,
            )
            context, cdata, buffer, size, view, sendto, address = path
            data = report + sdes
            buffer[0 : len(data)] = data
            size[0] = len(data)
            if _srtp_protect_rtcp(context, cdata, size):
                continue
            try:
                sendto(view[: size[0]], address)
            except (OSError, AttributeError):
                broken = broken or []
                broken.append(path)
        if broken:
            self._forget(broken)

    def _forget(self, broken: list[SendPath]) -> None:
        for sink, path in zip(self.sinks, self.paths, strict=True):
            if path in broken:
                sink._forget_path()


_SR = struct.Struct("!BBHIIIIII")


def _sdes_cname(ssrc: int, cname: bytes) -> bytes:
    """An RTCP SDES packet with one chunk, CNAME only (RFC 3550 6.5), padded to 32 bits."""
    chunk = struct.pack("!IBB", ssrc, 1, len(cname)) + cname
    chunk += b"\x00" * (4 - len(chunk) % 4)  # the END item, then padding
    return struct.pack("!BBH", 0x81, 202, len(chunk) // 4) + chunk


def _park_sender_rtcp(sender: RTCRtpSender) -> None:
    """Keep aiortc's per-sender RTCP task asleep: the room sends this listener's reports.

    The stand-in keeps what `RTCRtpSender.stop()` waits for (the started and
    exited events) and sends the RTCP BYE aiortc sends when the sender stops.
    """

    async def run_rtcp() -> None:
        sender._RTCRtpSender__rtcp_started.set()
        with contextlib.suppress(asyncio.CancelledError):  # as aiortc's own: stop() cancels it
            await asyncio.get_running_loop().create_future()
        await sender._send_rtcp([RtcpByePacket(sources=[sender._ssrc])])
        sender._RTCRtpSender__rtcp_exited.set()

    sender._run_rtcp = run_rtcp


def _note_receiver_reports(sender: RTCRtpSender, sink: ListenerSink) -> None:
    """A listener's receiver reports: keep the latest of ours, not aiortc's statistics objects."""

    async def handle_rtcp_packet(packet) -> None:
        for report in getattr(packet, "reports", ()):
            if report.ssrc == sender._ssrc:
                sink.receiver_report = (report.fraction_lost, report.packets_lost, report.jitter)

    sender._handle_rtcp_packet = handle_rtcp_packet


_original_get_host_addresses = aioice.ice.get_host_addresses


def allow_loopback_candidates() -> None:
    """Offer 127.0.0.1 as a host candidate too (aioice leaves it out)."""

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        addresses = _original_get_host_addresses(use_ipv4, use_ipv6)
        return [*addresses, "127.0.0.1"] if use_ipv4 and "127.0.0.1" not in addresses else addresses

    aioice.ice.get_host_addresses = with_loopback
