"""RTCP between the room and its listeners, aiortc clients on loopback: one timer's sender reports say what
each listener was sent; the listeners' receiver reports are kept; a listener that leaves hears a BYE."""

import asyncio
import time

import pytest
from aiortc.rtp import RtcpByePacket, RtcpSrPacket
from channels.db import database_sync_to_async

from media.aiortc_bridge import watch_receiver
from media.room import NTP_UNIX_OFFSET
from rooms.models import Role
from tests.factories import UserFactory
from tests.media.clients import join_as_listener, join_as_speaker, wait_connected, write_tone
from tests.media.test_forwarding import room_of, until
from tests.rooms.scene import make_space, seat
from tests.rooms.ws import connect

pytestmark = [pytest.mark.media, pytest.mark.django_db(transaction=True)]
db = database_sync_to_async


def watch_rtcp(receiver) -> list[tuple[float, object, int, int]]:
    """Every RTCP packet the listener's receiver gets: (arrival, packet, RTP packets received before it,
    the RTP timestamp of the last of them)."""
    seen: list[tuple[float, object, int, int]] = []
    got = {"rtp": 0, "timestamp": 0}

    def on_rtp(packet) -> None:
        got["rtp"] += 1
        got["timestamp"] = packet.timestamp

    watch_receiver(receiver, on_rtp)
    handle = receiver._handle_rtcp_packet

    async def handle_rtcp_packet(packet) -> None:
        seen.append((time.time(), packet, got["rtp"], got["timestamp"]))
        await handle(packet)

    receiver._handle_rtcp_packet = handle_rtcp_packet
    return seen


async def test_each_listener_gets_sender_reports_of_what_it_was_sent_and_its_receiver_reports_are_kept(
    loopback, tmp_path
):
    # given: a speaker talking and two listeners, the second joining a second after the first
    space = await db(make_space)()
    host, early, late = await db(UserFactory)(), await db(UserFactory)(), await db(UserFactory)()
    await db(seat)(space, host, Role.SPEAKER, muted=False)
    host_socket, _ = await connect(space.pk, host)
    host_pc, _, _ = await join_as_speaker(host_socket, write_tone(tmp_path / "a440.wav", 440))
    listeners = []
    for user in (early, late):
        socket, _ = await connect(space.pk, user)
        pc, _, _ = await join_as_listener(socket)
        listeners.append((pc, watch_rtcp(pc.getTransceivers()[0].receiver)))
        await wait_connected(pc)
        await asyncio.sleep(1.0)

    # when: three more seconds go by
    await asyncio.sleep(3.0)

    # then: each listener got a sender report about every second, on the room's SSRC, whose packet
    # count is what that listener had received when it came (loopback: nothing lost): counted from
    # its own start, a second apart for the two; with the stream's RTP clock and the wall clock
    room = room_of(space.pk)
    for _, seen in listeners:
        reports = [(at, p, got, heard) for at, p, got, heard in seen if isinstance(p, RtcpSrPacket)]
        assert 3 <= len(reports) <= 6, len(reports)
        for at, report, received, heard in reports:
            info = report.sender_info
            assert report.ssrc == room.ssrc
            assert abs(info.packet_count - received) <= 3, (info.packet_count, received)
            # delivery on a loaded machine's loop is late by a little, never by half a second
            assert abs(info.ntp_timestamp / (1 << 32) - NTP_UNIX_OFFSET - at) < 0.5
            # the report's RTP time is the stream's own: at most a frame or two past the packet last heard
            ahead = ((info.rtp_timestamp - heard + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
            assert -960 <= ahead <= 0.25 * 48_000, ahead
        # and its RTP clock runs at 48 kHz of the reports' wall clock, the pair a receiver syncs by (give
        # or take the lateness of the packet it was last set by)
        first, last = reports[0][1].sender_info, reports[-1][1].sender_info
        rtp_gap = (last.rtp_timestamp - first.rtp_timestamp) & 0xFFFFFFFF
        assert abs(rtp_gap / 48_000 - (last.ntp_timestamp - first.ntp_timestamp) / (1 << 32)) < 0.1
    # and: the worker kept each listener's latest receiver report: next to nothing lost on loopback (a
    # quiet machine loses none; CI's two loaded cores once lost 4 of ~200 packets to a late loop)
    await until(
        lambda: all(listener.sink.receiver_report is not None for listener in room.listeners.values()),
        timeout=3,
        what="receiver reports",
    )
    kept = [listener.sink.receiver_report[:2] for listener in room.listeners.values()]
    received = min(seen[-1][2] for _, seen in listeners)
    assert len(kept) == 2 and all(lost <= max(3, received // 25) for _, lost in kept), (kept, received)

    # when: the worker lets the first listener go; then: it hears a BYE for the room's stream
    pc, seen = listeners[0]
    key = next(key for key, listener in room.listeners.items() if listener.pc is not None)
    await room.listeners[key].pc.close()
    await until(lambda: any(isinstance(p, RtcpByePacket) for _, p, *_ in seen), timeout=3, what="a BYE")
    await until(lambda: key not in room.listeners, timeout=3, what="the listener dropped")
    for pc, _ in listeners:
        await pc.close()
    await host_pc.close()
    await asyncio.sleep(0.2)
