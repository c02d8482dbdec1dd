"""The listeners' fan-out (`SrtpFanout`) with real SRTP sessions and UDP sockets on loopback, no peer connection."""

import asyncio
import os
import socket

from aiortc.rtp import RtpPacket
from pylibsrtp import Policy, Session

from media.aiortc_bridge import SrtpFanout, send_path

KEY = os.urandom(30)


class Sink:
    """A listener's end as the fan-out reads it: its SRTP session and the socket's `sendto` to its address."""

    def __init__(self, transport, address) -> None:
        session = Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
        self.session = session  # kept alive: the path points into it
        self._path = send_path(session, transport.sendto, address)
        self.forgotten = 0

    def path(self):
        return self._path

    def _forget_path(self) -> None:
        self.forgotten += 1


def packet(sequence_number: int) -> bytes:
    rtp = RtpPacket(payload_type=111, sequence_number=sequence_number, timestamp=960 * sequence_number, ssrc=7)
    rtp.payload = bytes([sequence_number]) * 60
    return rtp.serialize()


async def test_each_listener_gets_the_packet_protected_in_its_own_session_and_a_repeat_is_refused_alone():
    # given: two listeners, each a UDP socket with its own SRTP session to read what comes
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    ears = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    for ear in ears:
        ear.bind(("127.0.0.1", 0))
        ear.settimeout(2)
    fanout = SrtpFanout([Sink(transport, ear.getsockname()) for ear in ears])
    readers = [Session(Policy(key=KEY, ssrc_type=Policy.SSRC_ANY_INBOUND)) for _ in ears]

    # when: two packets go out, then the first again
    sent = [fanout.send(packet(1)), fanout.send(packet(2)), fanout.send(packet(1))]

    # then: both listeners got packets 1 and 2, each decrypting in its own session; the repeat went
    # to no one (libsrtp refuses a sequence number a session already protected) and nobody's path was
    # dropped for it
    assert sent == [2, 2, 0]
    for ear, reader in zip(ears, readers, strict=True):
        got = [RtpPacket.parse(reader.unprotect(ear.recv(2000))) for _ in range(2)]
        assert [(p.sequence_number, p.payload[:1]) for p in got] == [(1, b"\x01"), (2, b"\x02")]
    assert [sink.forgotten for sink in fanout.sinks] == [0, 0]

    # when: the socket closes under the fan-out (the worker is stopping); then: nothing is sent and
    # each listener's path is forgotten, to be resolved again (or not) at the next connection change
    transport.close()
    await asyncio.sleep(0)
    assert fanout.send(packet(3)) == 0
    assert [sink.forgotten for sink in fanout.sinks] == [1, 1]
    for ear in ears:
        ear.close()
