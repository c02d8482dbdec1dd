"""The cascade: a space's origin sends its listener stream to its edge workers over plain RTP, once per edge.

As mediasoup's `pipeToRouter` does between routers: no ICE, no DTLS, no SRTP,
over a private address between workers (`SPACES_MEDIA_RELAY_HOST`, 127.0.0.1
by default; a private network between machines, never the internet). Each
separate worker binds one UDP socket (`RelaySocket`): its origin rooms send
from it, its edge rooms receive on it.

A packet is a plain RTP header (version 2, payload type 111, no CSRC, no
extension) whose SSRC is the space's id, then the Opus payload exactly as the
origin's own listeners get it, with the origin's sequence number and
timestamp. The edge hands it to its room (`Room.relayed`), which sends it on
to its listeners as it is: the origin encodes (or forwards) once, whatever the
number of edges and listeners. Who sends to whom is agreed over the channel
layer (`signalling.RELAY`, `media.worker`); an edge accepts a space's packets
only from the relay address of that space's origin.
"""

import asyncio
import logging
import struct
from collections.abc import Callable

log = logging.getLogger(__name__)

HEADER = struct.Struct("!BBHII")  # V=2 P=0 X=0 CC=0 | M=0 PT | sequence number | timestamp | SSRC
FIRST_BYTE = 0x80
PAYLOAD_TYPE = 111  # Opus, as our answers negotiate it

Relay = Callable[[bytes, int, int], None]  # (opus payload, sequence number, timestamp)
Deliver = Callable[[int, bytes, int, int, tuple], None]  # (space id, payload, sequence number, timestamp, from)


def pack(space_id: int, payload: bytes, sequence_number: int, timestamp: int) -> bytes:
    return HEADER.pack(FIRST_BYTE, PAYLOAD_TYPE, sequence_number & 0xFFFF, timestamp & 0xFFFFFFFF, space_id) + payload


def unpack(data: bytes) -> tuple[int, bytes, int, int] | None:
    """(space id, payload, sequence number, timestamp), or None for anything but our plain RTP."""
    if len(data) <= HEADER.size:
        return None
    first, payload_type, sequence_number, timestamp, ssrc = HEADER.unpack_from(data)
    if first != FIRST_BYTE or payload_type & 0x7F != PAYLOAD_TYPE:
        return None
    return ssrc, data[HEADER.size :], sequence_number, timestamp


class RelaySocket(asyncio.DatagramProtocol):
    """A worker's one UDP socket between workers: sends its origin rooms' streams, receives its edge rooms'."""

    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver
        self.transport: asyncio.DatagramTransport | None = None
        self.address: tuple[str, int] | None = None  # where it listens, as edges are told
        self.received = 0
        self.refused = 0  # datagrams that weren't ours, or came from elsewhere than the space's origin
        self.sent = 0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.address = transport.get_extra_info("sockname")[:2]

    def connection_lost(self, exc) -> None:
        self.transport = None

    def datagram_received(self, data: bytes, addr) -> None:
        packet = unpack(data)
        if packet is None:
            self.refused += 1
            return
        self.received += 1
        self.deliver(*packet, addr[:2])

    def error_received(self, exc) -> None:
        # An edge that went away answers with ICMP; its heartbeat's expiry ends its lease.
        log.debug("relay socket: %s", exc)

    def relay_to(self, space_id: int, address: tuple[str, int]) -> Relay:
        """The function an origin room calls with each listener packet, to send it to one edge."""

        def send(payload: bytes, sequence_number: int, timestamp: int) -> None:
            if self.transport is not None:
                self.transport.sendto(pack(space_id, payload, sequence_number, timestamp), address)
                self.sent += 1

        return send

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_relay_socket(deliver: Deliver, *, host: str, port: int = 0) -> RelaySocket:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(lambda: RelaySocket(deliver), local_addr=(host, port))
    return protocol


def same_sender(address: tuple, expected: tuple | None) -> bool:
    """Does a datagram from `address` come from the relay socket advertised as `expected`? (A socket bound to
    0.0.0.0 sends from its interface's address: then only the port can be checked.)"""
    if expected is None:
        return False
    host, port = expected
    return address[1] == port and (host in ("0.0.0.0", "::") or address[0] == host)
