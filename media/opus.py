"""libopus through ctypes: the decoder calls PyAV's Opus decoder doesn't expose.

PyAV decodes Opus but can't conceal a lost frame: it has no packet-loss
concealment (PLC) call and can't decode the forward error correction (FEC)
copy of a lost frame that the next packet carries. libopus can, and PyAV
already ships it (`av.libs/libopus-*.so`, 1.6 with av 18.1): we load that
same library, so nothing new is installed and the version is the one PyAV's
wheel pins. A system libopus is the fallback.

`OpusDecoder.decode` decodes a packet; `conceal()` runs PLC for one frame;
`recover(next_payload)` rebuilds the frame before `next_payload` from its FEC
data (libopus falls back to PLC when the packet carries none). All return
48 kHz interleaved int16 samples, stereo unless asked otherwise.

`OpusEncoder` encodes with in-band FEC and a settable expected loss, as a
browser does once its peer says `useinbandfec=1` and reports loss over RTCP:
test and benchmark speakers use it.
"""

import ctypes
import ctypes.util
from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
MAX_FRAME_SAMPLES = 5_760  # 120 ms, the longest Opus packet

_APPLICATION_VOIP = 2048
_SET_BITRATE = 4002
_SET_INBAND_FEC = 4012
_SET_PACKET_LOSS_PERC = 4014
_RESET_STATE = 4028


class OpusError(Exception):
    pass


def _load() -> ctypes.CDLL:
    bundled = sorted((Path(av.__file__).parent.parent / "av.libs").glob("libopus*.so*"))
    path = str(bundled[0]) if bundled else ctypes.util.find_library("opus")
    if path is None:
        raise OpusError("No libopus found (neither PyAV's bundled one nor a system one).")
    lib = ctypes.CDLL(path)
    lib.opus_decoder_create.restype = ctypes.c_void_p
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_decode.restype = ctypes.c_int
    lib.opus_decode.argtypes = [
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_int32,
        ctypes.POINTER(ctypes.c_int16),
        ctypes.c_int,
        ctypes.c_int,
    ]
    lib.opus_packet_has_lbrr.restype = ctypes.c_int
    lib.opus_packet_has_lbrr.argtypes = [ctypes.c_char_p, ctypes.c_int32]
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_encode.restype = ctypes.c_int32
    lib.opus_encode.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_int16),
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int32,
    ]
    # opus_encoder_ctl / opus_decoder_ctl are variadic: no argtypes, so every argument is passed wrapped
    # (a bare Python int would go as a 32-bit int and cut the state pointer).
    lib.opus_encoder_ctl.restype = ctypes.c_int
    lib.opus_decoder_ctl.restype = ctypes.c_int
    return lib


_lib = _load()


def has_fec(payload: bytes) -> bool:
    """Does this Opus packet carry an FEC (LBRR) copy of the frame before it?"""
    return _lib.opus_packet_has_lbrr(payload, len(payload)) == 1


class OpusDecoder:
    """One libopus decoder: decode, conceal (PLC) and recover (FEC), 48 kHz int16 interleaved."""

    def __init__(self, channels: int = 2) -> None:
        error = ctypes.c_int(0)
        self.channels = channels
        self._state = _lib.opus_decoder_create(SAMPLE_RATE, channels, ctypes.byref(error))
        if error.value != 0 or not self._state:
            raise OpusError(f"opus_decoder_create failed ({error.value})")
        self._pcm = np.zeros(MAX_FRAME_SAMPLES * channels, dtype=np.int16)
        self._pcm_pointer = self._pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))

    def __del__(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state:
            _lib.opus_decoder_destroy(state)

    def _run(self, data: bytes | None, frame_size: int, fec: int) -> np.ndarray:
        samples = _lib.opus_decode(self._state, data, len(data) if data else 0, self._pcm_pointer, frame_size, fec)
        if samples < 0:
            raise OpusError(f"opus_decode failed ({samples})")
        return self._pcm[: samples * self.channels].copy()

    def decode(self, payload: bytes) -> np.ndarray:
        return self._run(payload, MAX_FRAME_SAMPLES, 0)

    def conceal(self, samples: int = FRAME_SAMPLES) -> np.ndarray:
        """Packet-loss concealment for one missing frame: the decoder extrapolates, fading over long gaps."""
        return self._run(None, samples, 0)

    def recover(self, next_payload: bytes, samples: int = FRAME_SAMPLES) -> np.ndarray:
        """The missing frame before `next_payload`, from its FEC data (PLC if it carries none).

        `next_payload` still has to be decoded normally afterwards for its own frame.
        """
        return self._run(next_payload, samples, 1)

    def reset(self) -> None:
        _lib.opus_decoder_ctl(ctypes.c_void_p(self._state), ctypes.c_int(_RESET_STATE))


class OpusEncoder:
    """One libopus VoIP encoder with in-band FEC; `expected_loss_pct` sets how much FEC it spends."""

    def __init__(self, *, channels: int = 1, bitrate: int = 32_000, fec: bool = True) -> None:
        error = ctypes.c_int(0)
        self.channels = channels
        self._state = _lib.opus_encoder_create(SAMPLE_RATE, channels, _APPLICATION_VOIP, ctypes.byref(error))
        if error.value != 0 or not self._state:
            raise OpusError(f"opus_encoder_create failed ({error.value})")
        self._ctl(_SET_BITRATE, bitrate)
        self._ctl(_SET_INBAND_FEC, 1 if fec else 0)
        self.expected_loss_pct = 0
        self._out = ctypes.create_string_buffer(4000)

    def __del__(self) -> None:
        state, self._state = getattr(self, "_state", None), None
        if state:
            _lib.opus_encoder_destroy(state)

    def _ctl(self, request: int, value: int) -> None:
        result = _lib.opus_encoder_ctl(ctypes.c_void_p(self._state), ctypes.c_int(request), ctypes.c_int(value))
        if result != 0:
            raise OpusError(f"opus_encoder_ctl({request}) failed ({result})")

    def set_expected_loss(self, percent: int) -> None:
        percent = max(0, min(100, int(percent)))
        if percent != self.expected_loss_pct:
            self._ctl(_SET_PACKET_LOSS_PERC, percent)
            self.expected_loss_pct = percent

    def encode(self, samples: np.ndarray) -> bytes:
        """One frame of int16 samples (interleaved if stereo), FRAME_SAMPLES per channel."""
        pcm = np.ascontiguousarray(samples, dtype=np.int16)
        size = _lib.opus_encode(
            self._state,
            pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)),
            len(pcm) // self.channels,
            self._out,
            len(self._out),
        )
        if size < 0:
            raise OpusError(f"opus_encode failed ({size})")
        return self._out.raw[:size]
