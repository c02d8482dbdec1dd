"""Ogg Opus (RFC 7845) from packets the room's encoder already made: no decoding, no encoding.

Pages are built with mutagen's `OggPage` (the Ogg framing and its CRC). The
writer keeps at most one page of packets in memory and writes each page to
the file as soon as it fills, so a process that dies mid-recording leaves a
file that plays up to its last page. Every packet is 20 ms (the mixer's frame).
"""

import io
import random
import struct
from collections.abc import Iterator
from typing import BinaryIO

from mutagen.ogg import OggPage
from mutagen.ogg import error as OggError

SAMPLE_RATE = 48_000
PACKET_SAMPLES = 960  # 20 ms at 48 kHz: every packet the mixer makes
PACKET_MS = 20
# A page every half second: what a crash can lose, and all the writer holds in memory.
PAGE_PACKETS = 25
# A cut bisects on the pages' positions to find its start; this much is read at each step.
SEEK_WINDOW = 64 * 1024
# A 20 ms Opus packet of silence (CELT, stereo), for time the room's clock skipped: it needs no encoder.
SILENCE = b"\xfc\xff\xfe"
DEFAULT_PRE_SKIP = 312


def opus_head(*, channels: int = 2, pre_skip: int = DEFAULT_PRE_SKIP) -> bytes:
    return b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, SAMPLE_RATE, 0, 0)


def pre_skip_of(head: bytes) -> int:
    return struct.unpack_from("<H", head, 10)[0]


def _opus_tags(vendor: str = "Spaces") -> bytes:
    vendor_bytes = vendor.encode()
    return b"OpusTags" + struct.pack("<I", len(vendor_bytes)) + vendor_bytes + struct.pack("<I", 0)


class OggOpusWriter:
    """Writes Opus packets into an Ogg Opus stream, one page at a time."""

    def __init__(self, file: BinaryIO, *, head: bytes, serial: int | None = None) -> None:
        self.file = file
        self.head = head
        self.pre_skip = pre_skip_of(head)
        self.serial = random.getrandbits(31) if serial is None else serial
        self.sequence = 0
        self.packets = 0
        self.pending: list[bytes] = []
        self.bytes_written = 0
        self._page([head], position=0, first=True)
        self._page([_opus_tags()], position=0)

    def write(self, packet: bytes) -> None:
        self.pending.append(packet)
        self.packets += 1
        if len(self.pending) >= PAGE_PACKETS:
            self.flush()

    def flush(self) -> None:
        """Write the packets held so far as a page (a clip of a live recording reads up to here)."""
        if self.pending:
            packets, self.pending = self.pending, []
            self._page(packets, position=self.packets * PACKET_SAMPLES)

    def close(self) -> None:
        packets, self.pending = self.pending, []
        self._page(packets, position=self.packets * PACKET_SAMPLES, last=True)

    @property
    def duration_ms(self) -> int:
        return max(0, (self.packets * PACKET_SAMPLES - self.pre_skip) * 1000 // SAMPLE_RATE)

    def _page(self, packets: list[bytes], *, position: int, first: bool = False, last: bool = False) -> None:
        page = OggPage()
        page.serial = self.serial
        page.sequence = self.sequence
        page.position = position
        page.packets = packets
        page.first = first
        page.last = last
        data = page.write()
        self.file.write(data)
        self.file.flush()
        self.sequence += 1
        self.bytes_written += len(data)


def read(file: BinaryIO) -> tuple[bytes, Iterator[bytes]]:
    """The OpusHead and an iterator over the audio packets of an Ogg Opus file written by `OggOpusWriter`.

    A file cut short (its writer died) ends at its last whole page.
    """
    pages = _pages(file)
    head_page = next(pages, None)
    if head_page is None or not head_page.packets or not head_page.packets[0].startswith(b"OpusHead"):
        raise ValueError("Not an Ogg Opus file.")
    next(pages, None)  # OpusTags

    def packets() -> Iterator[bytes]:
        for page in pages:
            yield from page.packets

    return head_page.packets[0], packets()


def _pages(file: BinaryIO) -> Iterator[OggPage]:
    while True:
        try:
            yield OggPage(file)
        except (EOFError, OggError):
            return


def cut(source: BinaryIO, target: BinaryIO, *, start_ms: int, end_ms: int) -> int:
    """Copy the packets between two moments of a recording into a new Ogg Opus file; its duration in ms.

    Moments are on the recording's timeline (after its pre-skip). The packets
    are copied as they are, so the clip sounds exactly like the recording.
    The source is read from a page just before the start (found by bisection,
    `_seek_packet`), not from its beginning: a clip of a long recording costs
    what its own seconds cost.
    """
    pages = _pages(source)
    head_page = next(pages, None)
    if head_page is None or not head_page.packets or not head_page.packets[0].startswith(b"OpusHead"):
        raise ValueError("Not an Ogg Opus file.")
    head = head_page.packets[0]
    next(pages, None)  # OpusTags
    pre_skip = pre_skip_of(head)
    first = max(0, round((start_ms * SAMPLE_RATE // 1000 + pre_skip) / PACKET_SAMPLES))
    last = max(first, round((end_ms * SAMPLE_RATE // 1000 + pre_skip) / PACKET_SAMPLES))
    index = _seek_packet(source, serial=head_page.serial, packet=first)
    writer = OggOpusWriter(target, head=head)
    for page in _pages(source):
        if index >= last:
            break
        for packet in page.packets:
            if first <= index < last:
                writer.write(packet)
            index += 1
    writer.close()
    return writer.duration_ms


def _seek_packet(file: BinaryIO, *, serial: int, packet: int) -> int:
    """Move `file` (just past its OpusTags page) to the start of a page at or before the one holding audio
    packet number `packet`; return the number of that page's first packet.

    Every packet is 20 ms and a page's position counts the samples of every
    packet up to its end, so a page's position tells which packets it holds.
    """
    lo, lo_packet = file.tell(), 0  # always the start of a page whose first packet is at most `packet`
    file.seek(0, io.SEEK_END)
    hi = file.tell()
    while hi - lo > SEEK_WINDOW:
        mid = (lo + hi) // 2
        found = _page_at_or_after(file, mid, serial=serial, end=hi)
        if found is None or found[0].position < 0 or found[0].position // PACKET_SAMPLES > packet:
            hi = mid  # the packet is on that page or before it
        else:
            lo, lo_packet = found[1], found[0].position // PACKET_SAMPLES  # it is after that page
    file.seek(lo)
    return lo_packet


def _page_at_or_after(file: BinaryIO, offset: int, *, serial: int, end: int) -> tuple[OggPage, int] | None:
    """The first whole page of the stream `serial` starting in the window from `offset`, and where it ends."""
    file.seek(offset)
    window = file.read(min(SEEK_WINDOW, end - offset))
    at = window.find(b"OggS")
    while at >= 0:
        file.seek(offset + at)
        try:
            page = OggPage(file)
        except (EOFError, OggError):  # "OggS" inside a packet, or a page cut short
            page = None
        if page is not None and page.serial == serial:
            return page, file.tell()
        at = window.find(b"OggS", at + 1)
    return None


def duration_ms(file: BinaryIO) -> int:
    """How long a recording plays, from its pages' positions (its packets are not decoded)."""
    pages = _pages(file)
    head_page = next(pages, None)
    if head_page is None or not head_page.packets:
        return 0
    pre_skip = pre_skip_of(head_page.packets[0])
    position = 0
    for page in pages:
        if page.position > 0:
            position = page.position
    return max(0, (position - pre_skip) * 1000 // SAMPLE_RATE)
