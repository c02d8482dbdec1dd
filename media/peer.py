"""Answering a client's offer: one `RTCPeerConnection` per socket, as a speaker or a listener.

A listener offers one audio transceiver to receive the room's mix; whatever
else it offers is refused. A speaker offers their microphone first, then
receive-only transceivers: one slot for each other speaker the stage can hold;
the answer asks their browser for Opus in-band FEC (`useinbandfec=1`).
"""

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from django.conf import settings

from media.aiortc_bridge import ParkedTrack, client_sends, request_opus_fec, share_ssrc
from media.room import ForwardTrack


class OfferRefused(Exception):
    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code, self.detail = code, detail


def ice_configuration() -> RTCConfiguration:
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in settings.SPACES_ICE_SERVERS
    ]
    return RTCConfiguration(iceServers=servers)


async def _open(sdp: str) -> tuple[RTCPeerConnection, list[RTCRtpTransceiver]]:
    pc = RTCPeerConnection(ice_configuration())
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
    except (ValueError, TypeError) as error:
        await pc.close()
        raise OfferRefused("bad_offer", f"That offer can't be read: {error}") from error
    audio = [t for t in pc.getTransceivers() if t.kind == "audio"]
    if not audio or len(audio) != len(pc.getTransceivers()):
        await pc.close()
        raise OfferRefused("bad_offer", "Offer audio only.")
    return pc, audio


async def _answer(pc: RTCPeerConnection) -> str:
    await pc.setLocalDescription(await pc.createAnswer())
    return pc.localDescription.sdp


async def answer_listener(sdp: str, *, ssrc: int) -> tuple[RTCPeerConnection, RTCRtpTransceiver, str]:
    """Receive the mix. Any attempt to publish in a listener's offer gets no path in."""
    pc, audio = await _open(sdp)
    if len(audio) != 1:
        await pc.close()
        raise OfferRefused("bad_offer", "A listener offers exactly one audio transceiver.")
    transceiver = audio[0]
    transceiver.direction = "sendonly"
    transceiver.sender.replaceTrack(ParkedTrack())
    share_ssrc(transceiver, ssrc)
    return pc, transceiver, await _answer(pc)


async def answer_speaker(sdp: str) -> tuple[RTCPeerConnection, RTCRtpTransceiver, list[ForwardTrack], str]:
    """Receive the microphone on the first transceiver; send other speakers on the rest."""
    pc, audio = await _open(sdp)
    microphone, *slots = audio
    if not client_sends(microphone):
        await pc.close()
        raise OfferRefused("bad_offer", "A speaker's first transceiver sends their microphone.")
    microphone.direction = "recvonly"
    request_opus_fec(microphone)
    tracks = []
    for transceiver in slots:
        track = ForwardTrack()
        transceiver.direction = "sendonly"
        transceiver.sender.replaceTrack(track)
        tracks.append(track)
    return pc, microphone, tracks, await _answer(pc)
