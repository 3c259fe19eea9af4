"""AudioSocket wire format: encode/decode, the incremental decoder, and property tests."""

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.errors import ProtocolError
from edge.telephony.audiosocket import (
    MAX_PAYLOAD,
    Frame,
    FrameDecoder,
    Kind,
    encode_audio,
    encode_dtmf,
    encode_error,
    encode_frame,
    encode_hangup,
    encode_uuid,
)

CALL = uuid.UUID("12345678-1234-5678-1234-567812345678")


def test_encodings_match_the_spec():
    assert encode_hangup() == b"\x00\x00\x00"
    assert encode_uuid(CALL) == b"\x01\x00\x10" + CALL.bytes
    assert encode_dtmf("#") == b"\x03\x00\x01#"
    assert encode_audio(bytes(320)) == b"\x10\x01\x40" + bytes(320)  # 320 = 0x0140, big-endian
    assert encode_error(7) == b"\xff\x00\x01\x07"


def test_decoder_reads_a_call():
    wire = encode_uuid(CALL) + encode_audio(b"\x01\x00" * 160) + encode_dtmf("5") + encode_hangup()
    frames = FrameDecoder().feed(wire)
    assert [f.kind for f in frames] == [Kind.UUID, Kind.AUDIO, Kind.DTMF, Kind.HANGUP]
    assert frames[0].uuid == CALL and frames[2].digit == "5" and len(frames[1].payload) == 320


def test_partial_frames_wait_for_more_bytes():
    decoder = FrameDecoder()
    wire = encode_audio(bytes(320))
    assert decoder.feed(wire[:1]) == [] and decoder.feed(wire[1:3]) == [] and decoder.feed(wire[3:100]) == []
    assert decoder.buffered == 100
    assert decoder.feed(wire[100:]) == [Frame(Kind.AUDIO, bytes(320))]
    assert decoder.buffered == 0


@pytest.mark.parametrize("wire,message", [
    (b"\x02\x00\x00", "unknown AudioSocket frame kind 0x02"),
    (b"\x11", "unknown AudioSocket frame kind 0x11"),
    (b"\x10\xff\xff", "65535 bytes exceeds"),
    (b"\x01\x00\x04abcd", "UUID frame must carry 16 bytes"),
    (b"\x03\x00\x01x", "DTMF frame must carry one of"),
    (b"\x03\x00\x02" + b"12", "DTMF frame must carry one of"),
    (b"\x10\x00\x03abc", "odd byte count"),
])
def test_malformed_frames_raise_protocol_error(wire, message):
    decoder = FrameDecoder()
    with pytest.raises(ProtocolError, match=message):
        decoder.feed(wire)
    with pytest.raises(ProtocolError):  # stays failed: the connection must close
        decoder.feed(encode_hangup())


def test_encoders_refuse_what_the_decoder_refuses():
    with pytest.raises(ProtocolError):
        encode_frame(0x42)
    with pytest.raises(ProtocolError, match="exceeds"):
        encode_audio(bytes(MAX_PAYLOAD + 2))
    with pytest.raises(ProtocolError, match="even"):
        encode_audio(b"abc")
    with pytest.raises(ProtocolError, match="DTMF"):
        encode_dtmf("x")


# ---- properties ------------------------------------------------------------

frames_strategy = st.lists(st.one_of(
    st.binary(min_size=0, max_size=200).map(lambda b: encode_audio(b[: len(b) // 2 * 2])),
    st.uuids().map(encode_uuid),
    st.sampled_from("0123456789*#ABCD").map(encode_dtmf),
    st.just(encode_hangup()),
    st.integers(0, 255).map(encode_error),
), max_size=20)


@settings(max_examples=200, deadline=None)
@given(encoded=frames_strategy, cuts=st.lists(st.integers(0, 5000), max_size=30))
def test_any_split_of_the_stream_gives_the_same_frames(encoded, cuts):
    wire = b"".join(encoded)
    whole = FrameDecoder().feed(wire)
    assert len(whole) == len(encoded)
    decoder = FrameDecoder()
    pieces, last = [], 0
    for cut in sorted(c % (len(wire) + 1) for c in cuts) + [len(wire)]:
        pieces.extend(decoder.feed(wire[last:cut]))
        last = cut
    assert pieces == whole
    assert decoder.buffered == 0


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=600), cuts=st.lists(st.integers(0, 600), max_size=10))
def test_garbage_gives_frames_or_protocol_error_never_another_exception(garbage, cuts):
    decoder = FrameDecoder()
    last = 0
    try:
        for cut in sorted(c % (len(garbage) + 1) for c in cuts) + [len(garbage)]:
            for frame in decoder.feed(garbage[last:cut]):
                assert isinstance(frame.kind, Kind)
            last = cut
    except ProtocolError:
        pass
