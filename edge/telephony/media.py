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
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Protocol, TypeVar

import numpy as np

from edge.errors import InputError
from edge.telephony.privacy import mask_phone
from edge.telephony.resample import Upsample2x, process_block, process_many, resampler

__all__ = ["AudioBatcher", "CallHandler", "CallInfo", "CallStats", "Dtmf", "EndReason", "MediaCall", "Wire"]

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

RUNTIME_RATE_HZ: Final = 16000
FRAME_MS: Final = 20
FRAME_SAMPLES: Final = RUNTIME_RATE_HZ * FRAME_MS // 1000
RENDER_FRAMES: Final = 10
"""Bot audio is resampled for the wire this many frames (200 ms) at a time, as it is sent."""
DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")


class EndReason(enum.StrEnum):
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


class _Inbox(Generic[T]):
    """A lean single-consumer queue: deque plus one waiter future; close() ends the consumer."""

    __slots__ = ("_closed", "_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        self._items.append(item)
        self._wake()

    def drop_oldest(self) -> None:
        self._items.popleft()

    def close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> T | None:
        """The next item; None once closed and drained."""
        while not self._items:
            if self._closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()


class Wire:
    """The transport's side of a call: what MediaCall asks of it. Defaults do nothing."""

    def start_output(self) -> None:
        """Audio was queued: start sending frames on the clock."""

    def clear_output(self) -> None:
        """Queued audio was dropped: tell the far end to drop what it buffered, if it can."""

    def hangup(self) -> None:
        """End the call from our side now."""

    def keep_time(self) -> None:
        """Send the bot audio whose 20 ms tick fell due while the event loop was busy (see MediaCall.keep_time)."""


class AudioBatcher:
    """Resamples the inbound audio of many calls together, once per event-loop iteration.

    A server's connections hand their wire audio here instead of resampling
    it one frame at a time; the first one schedules a flush with
    `loop.call_soon`, which runs after every callback of the current
    iteration, so no frame waits longer than that.

    The usual case, every call with whole 20 ms wire frames (one, or a few
    when the loop ran late), is one pass per chunk length over a (calls,
    samples) block: the resampling, and each frame's power (what the voice
    detector's energy gate compares), so no numpy work is left per call and
    frame.
    """

    def __init__(self, keep_time: Callable[[], None] | None = None) -> None:
        self._pending: dict[MediaCall, list[np.ndarray]] = {}
        self._scheduled = False
        self._keep_time = keep_time or (lambda: None)
        """The server's FrameClock.catch_up: a flush for 100 calls is a long step of its own."""
        self.flushes = 0
        self.frames = 0

    def add(self, call: MediaCall, pcm_wire: np.ndarray) -> None:
        self._pending.setdefault(call, []).append(pcm_wire)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def take(self, call: MediaCall) -> list[np.ndarray]:
        """Remove and return a call's unflushed chunks (it is ending)."""
        return self._pending.pop(call, [])

    def flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, {}
        if not pending:
            return
        self.flushes += 1
        groups: dict[int, list[tuple[MediaCall, np.ndarray]]] = {}
        others: list[MediaCall] = []
        for call, parts in pending.items():
            chunk = parts[0] if len(parts) == 1 else np.concatenate(parts)
            wire_frame = FRAME_SAMPLES * call.wire_rate_hz // RUNTIME_RATE_HZ
            if (len(chunk) and len(chunk) % wire_frame == 0 and len(chunk) <= 8 * wire_frame
                    and isinstance(call._up, Upsample2x) and not len(call._partial)):
                groups.setdefault(len(chunk), []).append((call, chunk))  # whole frames (one, or a few late)
            else:
                others.append(call)
        for group in groups.values():
            calls = [call for call, _ in group]
            try:
                frames, power = self._frames(calls, [chunk for _, chunk in group])
            except Exception:
                _LOGGER.exception("batched resampling failed; resampling call by call")
                others += calls
                continue
            per_call = len(frames) // len(calls)
            self.frames += len(frames)
            for index, call in enumerate(calls):
                for row in range(index * per_call, (index + 1) * per_call):
                    call._accept_frame(frames[row].copy(), power[row])  # its own row: must not pin the block
            self._keep_time()
        if others:
            self._chunks(others, [parts[0] if len(parts) == 1 else np.concatenate(parts)
                                  for parts in (pending[call] for call in others)])
            self._keep_time()

    @staticmethod
    def _frames(calls: list[MediaCall], chunks: list[np.ndarray]) -> tuple[np.ndarray, list[float]]:
        """Whole wire frames, the same number per call -> 16 kHz frames (rows, each call's in order) and
        each one's power."""
        out = process_block([call._up for call in calls], np.stack(chunks))
        frames = out.reshape(-1, FRAME_SAMPLES)
        x = frames.astype(np.float32)
        mean = x.sum(axis=1) * (1.0 / FRAME_SAMPLES)
        power = np.einsum("ij,ij->i", x, x) * (1.0 / FRAME_SAMPLES) - mean * mean
        return frames, power.tolist()

    def _chunks(self, calls: list[MediaCall], chunks: list[np.ndarray]) -> None:
        try:
            outputs = process_many([(call._up, chunk) for call, chunk in zip(calls, chunks, strict=True)])
        except Exception:
            _LOGGER.exception("batched resampling failed; resampling call by call")
            outputs = []
            for call, chunk in zip(calls, chunks, strict=True):
                try:
                    outputs.append(call._up.process(chunk))
                except Exception:
                    outputs.append(np.zeros(0, dtype=np.int16))
        for call, pcm in zip(calls, outputs, strict=True):
            call._accept(pcm)


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
        batcher: resample inbound audio together with other calls (servers pass theirs).
    """

    def __init__(self, info: CallInfo, *, wire_rate_hz: int = 8000, wire: Wire | None = None,
                 max_queued_frames: int = 250, clock: Callable[[], float] | None = None,
                 batcher: AudioBatcher | None = None) -> None:
        self.info = info
        self.wire_rate_hz = wire_rate_hz
        self.stats = CallStats()
        self._wire = wire or Wire()
        self._batcher = batcher
        self._up = resampler(wire_rate_hz, RUNTIME_RATE_HZ)
        self._down = resampler(RUNTIME_RATE_HZ, wire_rate_hz)
        self._max_queued = max_queued_frames
        self._audio_q: _Inbox[tuple[np.ndarray, float | None]] = _Inbox()
        self._dtmf_q: _Inbox[Dtmf] = _Inbox()
        self._partial = np.zeros(0, dtype=np.int16)
        self._frames: deque[bytes] = deque()
        """Bot audio ready for the wire, 20 ms frames (rendered RENDER_FRAMES at a time as they are sent)."""
        self._queued: deque[np.ndarray] = deque()
        """Bot audio not rendered yet, 16 kHz, in order."""
        self._queued_samples = 0
        self._first_render = 1 + sum(info.call_id.encode()) % RENDER_FRAMES
        """Frames in the first render of a talk spurt: calls that start talking together (a campaign's
        calls hear the same greeting at the same moment) then render on different ticks."""
        self._spurt = True
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
    def queued_audio_frames(self) -> int:
        """Caller frames received and not read from audio() yet (a handler that fell behind)."""
        return len(self._audio_q)

    @property
    def queued_playback_s(self) -> float:
        """Seconds of bot audio queued and not yet sent."""
        return (len(self._frames) * FRAME_SAMPLES + self._queued_samples) / RUNTIME_RATE_HZ

    async def audio(self) -> AsyncIterator[np.ndarray]:
        """The caller's audio: 320-sample (20 ms) int16 frames at 16 kHz, until the call ends."""
        while True:
            item = await self._audio_q.get()
            if item is None:
                return
            yield item[0]

    async def audio_with_power(self) -> AsyncIterator[tuple[np.ndarray, float | None]]:
        """`audio()`, each frame with its power: the mean square of its samples less the square of their
        mean (int16 scale, DC removed), when the server measured it for many calls at once; else None."""
        while True:
            item = await self._audio_q.get()
            if item is None:
                return
            yield item

    async def dtmf(self) -> AsyncIterator[Dtmf]:
        """The caller's keypad digits, until the call ends."""
        while True:
            event = await self._dtmf_q.get()
            if event is None:
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
        if not self._frames and not self._queued:
            self._spurt = True
        self._queued.append(pcm16)
        self._queued_samples += len(pcm16)
        self._played.clear()
        self._wire.start_output()

    def clear_playback(self) -> float:
        """Drop the queued bot audio (barge-in); returns the seconds dropped."""
        dropped = self.queued_playback_s
        self._frames.clear()
        self._queued.clear()
        self._queued_samples = 0
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

    def keep_time(self) -> None:
        """Let the line's 20 ms clock send frames that fell due while this code kept the event loop busy.

        With many calls, one turn of the event loop can hold dozens of steps (every call's frame, turns
        ending together); the clock would send only after them all, and every caller would hear a gap.
        A handler calls this between steps of such work; it costs a clock read when nothing is due.
        """
        self._wire.keep_time()

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
        if self._batcher is not None and self.wire_rate_hz != RUNTIME_RATE_HZ:
            self._batcher.add(self, pcm_wire)
        else:
            self._accept(self._up.process(pcm_wire))

    def _accept(self, pcm: np.ndarray) -> None:
        """16 kHz samples: cut into 20 ms frames for audio()."""
        if self.ended:
            return
        if len(self._partial):
            pcm = np.concatenate([self._partial, pcm])
        whole = len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES
        for start in range(0, whole, FRAME_SAMPLES):
            self._accept_frame(pcm[start:start + FRAME_SAMPLES], None)
        self._partial = pcm[whole:]

    def _accept_frame(self, frame: np.ndarray, power: float | None) -> None:
        """One whole 16 kHz frame (and its power, if measured) for audio()."""
        if self.ended:
            return
        if len(self._audio_q) >= self._max_queued:
            self._audio_q.drop_oldest()
            self.stats.frames_in_dropped += 1
        self._audio_q.put((frame, power))
        self.stats.frames_in += 1

    def _feed_dtmf(self, digit: str) -> None:
        if not self.ended:
            self._dtmf_q.put(Dtmf(digit, round(self._clock() - self._t0, 3)))

    def _render(self) -> None:
        """Resample the next RENDER_FRAMES frames of queued audio for the wire, in one pass.

        A few frames at a time, as they are sent: a reply's seconds of audio are not resampled in one
        go on the event loop when it is queued (with many calls replying at once, that held the 20 ms
        clock up); the samples are those of resampling frame by frame. A part-frame waits for the next
        play() to continue it; it is zero-padded only when nothing else is queued.
        """
        want = (self._first_render if self._spurt else RENDER_FRAMES) * FRAME_SAMPLES
        self._spurt = False
        parts: list[np.ndarray] = []
        got = 0
        while self._queued and got < want:
            head = self._queued[0]
            take = min(len(head), want - got)
            if take == len(head):
                parts.append(self._queued.popleft())
            else:
                parts.append(head[:take])
                self._queued[0] = head[take:]
            got += take
        if not parts:
            return
        pcm = np.asarray(parts[0] if len(parts) == 1 else np.concatenate(parts), dtype=np.int16)
        whole = len(pcm) // FRAME_SAMPLES * FRAME_SAMPLES
        if whole and whole < len(pcm):
            self._queued.appendleft(pcm[whole:])  # continued by the next play(), or padded later
            pcm = pcm[:whole]
        elif not whole:  # the end of the audio: zero-padded to a whole frame
            pcm = np.concatenate([pcm, np.zeros(FRAME_SAMPLES - len(pcm), dtype=np.int16)])
        self._queued_samples -= min(len(pcm), self._queued_samples)
        count = len(pcm) // FRAME_SAMPLES
        data = np.asarray(self._down.frames(pcm, FRAME_SAMPLES), dtype="<i2").tobytes()
        step = len(data) // count
        self._frames.extend(data[i:i + step] for i in range(0, len(data), step))

    def _next_frame(self) -> bytes | None:
        """The next wire frame of bot audio (slin16 LE, 20 ms), or None when none is queued."""
        if not self._frames and self._queued and not self.ended:
            self._render()
        if not self._frames or self.ended:
            self._played.set()
            return None
        frame = self._frames.popleft()
        if not self._frames and not self._queued:
            self._played.set()
        self.stats.frames_out += 1
        return frame

    def _end(self, reason: EndReason) -> None:
        """Mark the call ended (first reason wins); iterators finish, waiters wake."""
        if self.ended:
            return
        if self._batcher is not None:
            for chunk in self._batcher.take(self):  # audio that arrived before the hangup comes first
                self._accept(self._up.process(chunk))
        self._end_reason = reason
        self._ended.set()
        self._played.set()
        self._audio_q.close()
        self._dtmf_q.close()
        _LOGGER.info("call ended: %s", reason.value, extra={"event": "call_end", "reason": reason.value,
                                                             **self.info.log_fields(), **vars(self.stats)})
