"""One call's media, whatever the wire: what a call handler sees.

Every transport (AudioSocket, WebSocket, the simulator) turns a connection
into a `MediaCall` and passes it to a `CallHandler`. Inside, audio is the
runtime's: 16 kHz mono int16 numpy arrays, 20 ms (320 samples) per inbound
frame. The call converts from and to the wire's rate (8 or 16 kHz) with one
resampler per direction.

Example (a handler that greets, then echoes the caller until they hang up):
    >>> import numpy as np
    >>> class Echo:
    ...     async def handle(self, call: MediaCall) -> None:
    ...         await call.play(np.zeros(16000, dtype=np.int16))  # 1 s of "greeting"
    ...         async for frame in call.audio():
    ...             await call.play(frame)
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np

from edge.errors import InputError
from edge.telephony.privacy import mask_phone
from edge.telephony.resample import resampler

__all__ = ["CallHandler", "CallInfo", "CallStats", "Dtmf", "EndReason", "MediaCall", "Wire"]

_LOGGER = logging.getLogger(__name__)

RUNTIME_RATE_HZ: Final = 16000
FRAME_MS: Final = 20
FRAME_SAMPLES: Final = RUNTIME_RATE_HZ * FRAME_MS // 1000
DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")


class EndReason(str, enum.Enum):
    """Why a call ended."""

    REMOTE_HANGUP = "remote_hangup"
    """The caller or the PBX hung up."""
    LOCAL_HANGUP = "local_hangup"
    """The handler hung up or returned."""
    DISCONNECTED = "disconnected"
    """The media connection dropped without a hangup."""
    PROTOCOL_ERROR = "protocol_error"
    """The peer broke the wire protocol."""
    PEER_ERROR = "peer_error"
    """The PBX reported an error on the media stream."""
    TIMEOUT = "timeout"
    """No media from the peer for too long."""
    HANDLER_ERROR = "handler_error"
    """The handler raised."""
    SHUTDOWN = "shutdown"
    """The server was stopping."""


@dataclass(frozen=True)
class CallInfo:
    """Who and what a call is, as the transport learned it."""

    call_id: str
    """Unique id: the AudioSocket UUID, the WebSocket callSid, ..."""
    transport: str
    """"audiosocket", "websocket" or "simulator"."""
    caller: str | None = None
    """Calling number, when the transport tells it (never logged unmasked)."""
    callee: str | None = None
    """Called number, when the transport tells it."""
    peer: str | None = None
    """Remote address of the media connection, "host:port"."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Anything else the transport received (WebSocket start message fields)."""

    def log_fields(self) -> dict[str, Any]:
        """Fields for a structured log line, numbers masked."""
        return {"call_id": self.call_id, "transport": self.transport,
                "caller": mask_phone(self.caller), "callee": mask_phone(self.callee)}


@dataclass(frozen=True)
class Dtmf:
    """A keypad digit the caller pressed."""

    digit: str
    """One of 0-9, *, #, A-D."""
    at_s: float
    """Seconds since the call started."""


@dataclass
class CallStats:
    frames_in: int = 0
    """16 kHz frames delivered to audio()."""
    frames_in_dropped: int = 0
    """Inbound frames dropped because the handler did not read audio() in time."""
    frames_out: int = 0
    """Wire frames handed to the transport."""
    playback_cleared_s: float = 0.0
    """Seconds of queued bot audio dropped by clear_playback() (barge-in)."""


class Wire:
    """The transport's side of a call: what MediaCall asks of it. Defaults do nothing."""

    def start_output(self) -> None:
        """Audio was queued: start sending frames on the clock."""

    def clear_output(self) -> None:
        """Queued audio was dropped: tell the far end to drop what it buffered, if it can."""

    def hangup(self) -> None:
        """End the call from our side now."""


class CallHandler(Protocol):
    """Runs one call; returning (or raising) ends it."""

    async def handle(self, call: MediaCall) -> None:
        """Talk to the caller until done; the transport then hangs up."""


class MediaCall:
    """A call's audio in and out, DTMF and hangup, independent of the transport.

    Handler side: `audio()`, `dtmf()`, `play()`, `clear_playback()`,
    `wait_played()`, `hangup()`, `ended`, `end_reason`, `wait_ended()`.
    Transport side (underscored, used only by edge.telephony): `_feed_audio`,
    `_feed_dtmf`, `_next_frame`, `_end`.

    Args:
        info: who the call is.
        wire_rate_hz: sample rate on the wire, 8000 or 16000.
        wire: the transport's hooks.
        max_queued_frames: inbound frames kept for a handler that reads slowly;
            past it the oldest are dropped (and counted), 250 = 5 s.
        clock: seconds, monotonic; the event loop's clock by default (the simulator passes its own).
    """

    def __init__(self, info: CallInfo, *, wire_rate_hz: int = 8000, wire: Wire | None = None,
                 max_queued_frames: int = 250, clock: Callable[[], float] | None = None) -> None:
        self.info = info
        self.wire_rate_hz = wire_rate_hz
        self.stats = CallStats()
        self._wire = wire or Wire()
        self._up = resampler(wire_rate_hz, RUNTIME_RATE_HZ)
        self._down = resampler(RUNTIME_RATE_HZ, wire_rate_hz)
        self._frame_bytes = wire_rate_hz * FRAME_MS // 1000 * 2
        self._max_queued = max_queued_frames
        self._audio_q: asyncio.Queue[np.ndarray | None] = asyncio.Queue()
        self._dtmf_q: asyncio.Queue[Dtmf | None] = asyncio.Queue()
        self._partial = np.zeros(0, dtype=np.int16)
        self._out = bytearray()
        self._played = asyncio.Event()
        self._played.set()
        self._ended = asyncio.Event()
        self._end_reason: EndReason | None = None
        self._clock = clock or asyncio.get_running_loop().time
        self._t0 = self._clock()

    # ---- handler side -------------------------------------------------

    @property
    def call_id(self) -> str:
        return self.info.call_id

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    @property
    def end_reason(self) -> EndReason | None:
        return self._end_reason

    @property
    def queued_playback_s(self) -> float:
        """Seconds of bot audio queued and not yet sent."""
        return len(self._out) / 2 / self.wire_rate_hz

    async def audio(self) -> AsyncIterator[np.ndarray]:
        """The caller's audio: 320-sample (20 ms) int16 frames at 16 kHz, until the call ends."""
        while True:
            frame = await self._audio_q.get()
            if frame is None:
                self._audio_q.put_nowait(None)  # a second iterator ends too
                return
            yield frame

    async def dtmf(self) -> AsyncIterator[Dtmf]:
        """The caller's keypad digits, until the call ends."""
        while True:
            event = await self._dtmf_q.get()
            if event is None:
                self._dtmf_q.put_nowait(None)
                return
            yield event

    async def play(self, pcm16: np.ndarray) -> None:
        """Queue 16 kHz int16 audio; it leaves on the 20 ms clock. Ignored once the call ended.

        Raises:
            InputError: not a 1-D int16 array.
        """
        pcm16 = np.asarray(pcm16)
        if pcm16.dtype != np.int16 or pcm16.ndim != 1:
            raise InputError(f"play() takes 1-D int16 audio at 16 kHz, got {pcm16.dtype} {pcm16.shape}")
        if self.ended or len(pcm16) == 0:
            return
        self._out += self._down.process(pcm16).astype("<i2", copy=False).tobytes()
        if self._out:
            self._played.clear()
            self._wire.start_output()

    def clear_playback(self) -> float:
        """Drop the queued bot audio (barge-in); returns the seconds dropped."""
        dropped = self.queued_playback_s
        self._out.clear()
        self._down.reset()
        self._played.set()
        self.stats.playback_cleared_s += dropped
        if dropped:
            self._wire.clear_output()
        return dropped

    async def wait_played(self) -> None:
        """Return when every queued frame was handed to the wire, or the call ended."""
        await self._played.wait()

    async def wait_ended(self) -> EndReason | None:
        """Return the end reason once the call ended."""
        await self._ended.wait()
        return self._end_reason

    async def hangup(self) -> None:
        """End the call now (queued audio is not sent; `await wait_played()` first to let it finish)."""
        if not self.ended:
            self._end(EndReason.LOCAL_HANGUP)
            self._wire.hangup()

    # ---- transport side -----------------------------------------------

    def _feed_audio(self, pcm_wire: np.ndarray) -> None:
        """Wire-rate int16 samples from the peer."""
        if self.ended:
            return
        pcm = self._up.process(pcm_wire)
        if len(self._partial):
            pcm = np.concatenate([self._partial, pcm])
        whole = len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES
        for start in range(0, whole, FRAME_SAMPLES):
            if self._audio_q.qsize() >= self._max_queued:
                self._audio_q.get_nowait()
                self.stats.frames_in_dropped += 1
            self._audio_q.put_nowait(pcm[start:start + FRAME_SAMPLES])
            self.stats.frames_in += 1
        self._partial = pcm[whole:]

    def _feed_dtmf(self, digit: str) -> None:
        if not self.ended:
            self._dtmf_q.put_nowait(Dtmf(digit, round(self._clock() - self._t0, 3)))

    def _next_frame(self) -> bytes | None:
        """The next wire frame of bot audio (slin16 LE, zero-padded), or None when none is queued."""
        if not self._out or self.ended:
            self._played.set()
            return None
        frame = bytes(self._out[:self._frame_bytes])
        del self._out[:self._frame_bytes]
        if len(frame) < self._frame_bytes:
            frame += bytes(self._frame_bytes - len(frame))
        if not self._out:
            self._played.set()
        self.stats.frames_out += 1
        return frame

    def _end(self, reason: EndReason) -> None:
        """Mark the call ended (first reason wins); iterators finish, waiters wake."""
        if self.ended:
            return
        self._end_reason = reason
        self._ended.set()
        self._played.set()
        self._audio_q.put_nowait(None)
        self._dtmf_q.put_nowait(None)
        _LOGGER.info("call ended: %s", reason.value, extra={"event": "call_end", "reason": reason.value,
                                                             **self.info.log_fields(), **vars(self.stats)})
