"""A stand-in for a listener's sink: what the room sends it, kept, with no network under it."""


class KeptSink:
    """Keeps every packet (`sent`) and sender report (`reports`) the room gives this listener."""

    transceiver = None

    def __init__(self) -> None:
        self.sent: list = []
        self.reports: list[dict] = []
        self.on_change = None
        self.counted_from: tuple[int, int] | None = None

    def ready(self) -> bool:
        return True

    def keep(self, data: bytes) -> None:
        self.sent.append(data)

    @staticmethod
    def group(sinks: list["KeptSink"]) -> "KeptGroup":
        return KeptGroup(sinks)


class KeptGroup:
    """The room's fan-out over stand-in sinks (`media.room.Fanout`)."""

    def __init__(self, sinks: list[KeptSink]) -> None:
        self.sinks = sinks

    def send(self, data: bytes) -> int:
        for sink in self.sinks:
            sink.keep(data)
        return len(self.sinks)

    def send_reports(self, part: int, parts: int, *, ntp: int, rtp_timestamp: int, counts: tuple[int, int]) -> None:
        for sink in self.sinks[part::parts]:
            packets, octets = (now - then for now, then in zip(counts, sink.counted_from, strict=True))
            sink.reports.append({"ntp": ntp, "rtp_timestamp": rtp_timestamp, "packets": packets, "octets": octets})
