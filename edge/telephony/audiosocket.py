"""Asterisk AudioSocket wire format: pure encode and decode, no I/O.

AudioSocket is one TCP connection per call carrying frames of
`kind (1 byte) | payload length (2 bytes, big-endian) | payload`:

| kind | meaning | payload |
|---|---|---|
| 0x00 | hangup | none |
| 0x01 | call UUID, sent first by Asterisk | 16 bytes |
| 0x03 | DTMF digit | 1 ASCII byte: 0-9 * # A-D |
| 0x10 | audio | signed linear 16-bit little-endian mono 8 kHz; 320 bytes per 20 ms |
| 0xff | error | optional error code |

Anything else is a `ProtocolError`, as is a payload longer than
`MAX_PAYLOAD` (the 16-bit length allows 65535 bytes; real frames are 320),
an audio payload of odd length, a UUID that is not 16 bytes and a DTMF
payload that is not one keypad character.

Example:
    >>> import uuid
    >>> decoder = FrameDecoder()
    >>> wire = encode_uuid(uuid.UUID(int=1)) + encode_audio(bytes(320)) + encode_hangup()
    >>> [f.kind.name for f in decoder.feed(wire[:10]) + decoder.feed(wire[10:])]
    ['UUID', 'AUDIO', 'HANGUP']
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Final

from edge.errors import ProtocolError

__all__ = [
    "MAX_PAYLOAD",
    "Frame",
    "FrameDecoder",
    "Kind",
    "encode_audio",
    "encode_dtmf",
    "encode_error",
    "encode_frame",
    "encode_hangup",
    "encode_uuid",
]

HEADER_BYTES: Final = 3
MAX_PAYLOAD: Final = 8192
"""Longest payload accepted: 256 ms of 8 kHz audio, 25x a normal frame."""
AUDIO_FRAME_BYTES: Final = 320
DTMF_DIGITS: Final = frozenset(b"0123456789*#ABCD")


class Kind(enum.IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO = 0x10
    ERROR = 0xFF


_KINDS: Final = frozenset(int(k) for k in Kind)


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame; the payload is already checked for its kind."""

    kind: Kind
    payload: bytes = b""

    @property
    def uuid(self) -> uuid.UUID:
        """The call UUID of a UUID frame."""
        return uuid.UUID(bytes=self.payload)

    @property
    def digit(self) -> str:
        """The digit of a DTMF frame."""
        return self.payload.decode("ascii")


def encode_frame(kind: int, payload: bytes = b"") -> bytes:
    """Header plus payload; refuses what the decoder would refuse."""
    if kind not in _KINDS:
        raise ProtocolError(f"unknown AudioSocket frame kind 0x{kind:02x}")
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError(f"AudioSocket payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}; split the audio")
    return bytes((kind,)) + len(payload).to_bytes(2, "big") + payload


def encode_hangup() -> bytes:
    return b"\x00\x00\x00"


def encode_uuid(call_uuid: uuid.UUID) -> bytes:
    return encode_frame(Kind.UUID, call_uuid.bytes)


def encode_dtmf(digit: str) -> bytes:
    if len(digit) != 1 or ord(digit) not in DTMF_DIGITS:
        raise ProtocolError(f"DTMF digit must be one of 0-9 * # A-D, got {digit!r}")
    return encode_frame(Kind.DTMF, digit.encode("ascii"))


def encode_audio(slin16: bytes) -> bytes:
    """An audio frame of slin16 bytes (little-endian, 8 kHz; 320 bytes for 20 ms)."""
    if len(slin16) % 2:
        raise ProtocolError(f"audio payload must have an even byte count, got {len(slin16)}")
    return encode_frame(Kind.AUDIO, slin16)


def encode_error(code: int = 0) -> bytes:
    return encode_frame(Kind.ERROR, bytes((code,)))


def _check(kind: Kind, payload: bytes) -> Frame:
    if kind is Kind.UUID and len(payload) != 16:
        raise ProtocolError(f"AudioSocket UUID frame must carry 16 bytes, got {len(payload)}")
    if kind is Kind.DTMF and (len(payload) != 1 or payload[0] not in DTMF_DIGITS):
        raise ProtocolError(f"AudioSocket DTMF frame must carry one of 0-9 * # A-D, got {payload!r}")
    if kind is Kind.AUDIO and len(payload) % 2:
        raise ProtocolError(f"AudioSocket audio frame has an odd byte count ({len(payload)}): not slin16")
    return Frame(kind, payload)


class FrameDecoder:
    """Incremental decoder: feed bytes as they arrive, get whole frames back.

    Any split of the byte stream gives the same frames. An error is raised as
    soon as the bytes that prove it have arrived; after one, the decoder keeps
    raising (the connection must be closed).
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self._buf = bytearray()
        self._error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes of an incomplete frame held."""
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Decode every whole frame now available.

        Raises:
            ProtocolError: unknown kind, oversize length or a payload wrong for its kind.
        """
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        pos = 0
        try:
            while len(buf) - pos >= 1:
                kind = buf[pos]
                if kind not in _KINDS:
                    raise ProtocolError(f"unknown AudioSocket frame kind 0x{kind:02x}; "
                                        "is the peer speaking AudioSocket?")
                if len(buf) - pos < HEADER_BYTES:
                    break
                length = (buf[pos + 1] << 8) | buf[pos + 2]
                if length > self.max_payload:
                    raise ProtocolError(f"AudioSocket frame of {length} bytes exceeds the {self.max_payload}-byte "
                                        "limit; is the peer speaking AudioSocket?")
                end = pos + HEADER_BYTES + length
                if len(buf) < end:
                    break
                frames.append(_check(Kind(kind), bytes(buf[pos + HEADER_BYTES:end])))
                pos = end
        except ProtocolError as exc:
            self._error = exc
            buf.clear()
            raise
        del buf[:pos]
        return frames
