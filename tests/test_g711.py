"""G.711 against the ITU/Sun reference values, round-trip error bounds and slin16 helpers."""

import warnings

import numpy as np
import pytest

from edge.audio import g711
from edge.errors import InputError

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)


def test_ulaw_known_codes():
    # Silence encodes to 0xFF (all ones, as transmitted), -1 to 0x7E (-8 after the >> 2), full scale to 0x80 / 0x00.
    codes = g711.ulaw_encode(np.array([0, -1, 32767, -32768, 1000, -1000], dtype=np.int16))
    assert codes.tolist() == [0xFF, 0x7E, 0x80, 0x00, 0xCE, 0x4E]
    assert g711.ulaw_decode(bytes([0xFF, 0x7F, 0x80, 0x00])).tolist() == [0, 0, 32124, -32124]


def test_alaw_known_codes():
    # A-law inverts even bits: silence is 0xD5 (+) / 0x55 (-), full scale 0xAA / 0x2A.
    codes = g711.alaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16))
    assert codes.tolist() == [0xD5, 0x55, 0xAA, 0x2A]
    assert g711.alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A])).tolist() == [8, -8, 32256, -32256]


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_decode_table_is_monotonic_and_symmetric(law):
    decode = getattr(g711, f"{law}_decode")
    encode = getattr(g711, f"{law}_encode")
    values = decode(encode(ALL_INT16)).astype(np.int32)
    assert np.all(np.diff(values) >= 0), "quantisation must preserve order"
    levels = np.unique(decode(np.arange(256, dtype=np.uint8)))
    assert len(levels) == (255 if law == "ulaw" else 256)  # mu-law has +0 and -0
    assert np.array_equal(np.sort(-levels), levels)


@pytest.mark.parametrize("law,small_step", [("ulaw", 8), ("alaw", 16)])
def test_round_trip_error_is_bounded_by_the_segment_step(law, small_step):
    decode = getattr(g711, f"{law}_decode")
    encode = getattr(g711, f"{law}_encode")
    x = ALL_INT16.astype(np.int32)
    err = np.abs(decode(encode(ALL_INT16)).astype(np.int32) - x)
    # Logarithmic: the error grows with the level, staying within ~1/16 of the magnitude (+ the smallest step).
    clipped = np.abs(x) < 32000
    assert np.all(err[clipped] <= np.abs(x[clipped]) / 16 + small_step)
    assert err.max() <= 1024  # half of the top segment step
    # And encoding a decoded value gives the same code back (the tables are consistent).
    codes = np.arange(256, dtype=np.uint8)
    back = encode(decode(codes))
    assert np.array_equal(decode(back), decode(codes))


def test_matches_python_audioop_bit_for_bit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop", reason="audioop left the standard library in Python 3.13")
    raw = ALL_INT16.astype("<i2").tobytes()
    assert g711.ulaw_encode(ALL_INT16).tobytes() == audioop.lin2ulaw(raw, 2)
    assert g711.alaw_encode(ALL_INT16).tobytes() == audioop.lin2alaw(raw, 2)
    codes = bytes(range(256))
    assert g711.ulaw_decode(codes).astype("<i2").tobytes() == audioop.ulaw2lin(codes, 2)
    assert g711.alaw_decode(codes).astype("<i2").tobytes() == audioop.alaw2lin(codes, 2)


def test_shapes_and_types():
    block = np.zeros((3, 160), dtype=np.int16)
    assert g711.ulaw_encode(block).shape == (3, 160) and g711.ulaw_encode(block).dtype == np.uint8
    assert g711.alaw_decode(np.zeros(5, dtype=np.uint8)).dtype == np.int16
    with pytest.raises(InputError, match="int16"):
        g711.ulaw_encode(np.zeros(4, dtype=np.float32))
    with pytest.raises(InputError, match="uint8"):
        g711.ulaw_decode(np.zeros(4, dtype=np.int16))


def test_slin16_helpers():
    pcm = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    data = g711.to_slin16(pcm)
    assert data == b"\x00\x00\x01\x00\xff\xff\xff\x7f\x00\x80"  # little-endian
    assert g711.from_slin16(data).tolist() == pcm.tolist()
    with pytest.raises(InputError, match="even byte count"):
        g711.from_slin16(b"\x00\x00\x01")
