"""G.711 mu-law and A-law, table-based and vectorised, plus slin16 helpers.

The tables follow ITU-T G.711 as the widely used Sun Microsystems reference
(`g711.c`, also behind Python's old `audioop.lin2ulaw`/`lin2alaw`) computes
it: 16-bit linear in, one byte out. Encoding is one lookup in a 65536-entry
table indexed by the sample's bit pattern; decoding one lookup in a 256-entry
table. Both tables are built once, on first use.

Example:
    >>> import numpy as np
    >>> from edge.audio import g711
    >>> codes = g711.ulaw_encode(np.array([0, 1000, -1000, 32767], dtype=np.int16))
    >>> codes.tolist()
    [255, 206, 78, 128]
    >>> g711.ulaw_decode(codes).tolist()
    [0, 988, -988, 32124]
"""

from __future__ import annotations

from functools import cache
from typing import Final

import numpy as np

from edge.errors import InputError

__all__ = [
    "alaw_decode",
    "alaw_encode",
    "from_slin16",
    "to_slin16",
    "ulaw_decode",
    "ulaw_encode",
]

_ULAW_BIAS: Final = 0x84
_ULAW_CLIP: Final = 8159  # magnitude limit after the >> 2 (14-bit domain)


def _segment(magnitude: np.ndarray, ends: tuple[int, ...]) -> np.ndarray:
    """Index of the first segment end >= magnitude (8 when past the last)."""
    return np.searchsorted(np.asarray(ends), magnitude, side="left")


def _build_ulaw_encode() -> np.ndarray:
    pcm = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    value = pcm >> 2
    mask = np.where(value < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(value), _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = _segment(magnitude, (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF))
    code = (seg << 4) | ((magnitude >> (seg + 1)) & 0xF)
    code = np.where(seg >= 8, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _build_ulaw_decode() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((code & 0x0F) << 3) + _ULAW_BIAS) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


def _build_alaw_encode() -> np.ndarray:
    pcm = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    value = pcm >> 3
    negative = value < 0
    mask = np.where(negative, 0x55, 0xD5)
    magnitude = np.where(negative, -value - 1, value)
    seg = _segment(magnitude, (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF))
    shift = np.where(seg < 2, 1, seg)
    code = (seg << 4) | ((magnitude >> shift) & 0xF)
    code = np.where(seg >= 8, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _build_alaw_decode() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (code & 0x70) >> 4
    t = (code & 0x0F) << 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(code & 0x80, t, -t).astype(np.int16)


@cache
def _tables() -> dict[str, np.ndarray]:
    tables = {
        "ulaw_encode": _build_ulaw_encode(),
        "ulaw_decode": _build_ulaw_decode(),
        "alaw_encode": _build_alaw_encode(),
        "alaw_decode": _build_alaw_decode(),
    }
    for table in tables.values():
        table.setflags(write=False)
    return tables


def _as_int16(pcm: np.ndarray) -> np.ndarray:
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16:
        raise InputError(f"G.711 encodes int16 samples, got dtype {pcm.dtype}; "
                         "convert with np.clip(x * 32768, -32768, 32767).astype(np.int16)")
    return pcm


def _as_codes(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise InputError(f"G.711 decodes uint8 codes (or bytes), got dtype {data.dtype}")
        return data
    return np.frombuffer(data, dtype=np.uint8)


def ulaw_encode(pcm: np.ndarray) -> np.ndarray:
    """Encode int16 samples (any shape) to mu-law codes (uint8, same shape)."""
    return _tables()["ulaw_encode"][_as_int16(pcm).view(np.uint16)]


def ulaw_decode(codes: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Decode mu-law codes (bytes or uint8 array) to int16 samples."""
    return _tables()["ulaw_decode"][_as_codes(codes)]


def alaw_encode(pcm: np.ndarray) -> np.ndarray:
    """Encode int16 samples (any shape) to A-law codes (uint8, same shape)."""
    return _tables()["alaw_encode"][_as_int16(pcm).view(np.uint16)]


def alaw_decode(codes: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """Decode A-law codes (bytes or uint8 array) to int16 samples."""
    return _tables()["alaw_decode"][_as_codes(codes)]


def from_slin16(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Signed linear 16-bit little-endian bytes (Asterisk "slin") to int16 samples.

    Raises:
        InputError: the byte count is odd (a sample is cut in half).
    """
    if len(data) % 2:
        raise InputError(f"slin16 audio must have an even byte count, got {len(data)} bytes")
    return np.frombuffer(data, dtype="<i2").astype(np.int16, copy=False)


def to_slin16(pcm: np.ndarray) -> bytes:
    """int16 samples to signed linear 16-bit little-endian bytes."""
    return _as_int16(pcm).astype("<i2", copy=False).tobytes()
