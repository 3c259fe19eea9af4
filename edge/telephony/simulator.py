"""An in-process caller for tests and demos: no sockets, same MediaCall as on the wire.

The caller is a list of segments (16 kHz int16 speech, `Silence`, `Press`
for a keypad digit, `Hangup`). The simulator ticks a 20 ms clock: each tick
feeds one caller frame through the wire-rate conversion (8 kHz by default,
like a phone line) and takes one frame of the bot's audio, so both sides sit
on one timeline. `speed=None` (the default) runs the clock as fast as the
handler keeps up, yielding to it once per tick; `speed=1.0` is real time,
`speed=10.0` ten times faster.

After the last segment the caller stays on the line, silent, for `tail_s`
and then hangs up, unless the handler ended the call first.

A caller can also react to the bot: pass `caller=` an object with
`next_frame(bot_frame) -> np.ndarray | Press | Hangup` (see `Caller`); it
hears each 20 ms of the bot's audio (at the wire rate) before it speaks the
next 20 ms (edge.calls.simcallee speaks its lines when the bot pauses).

Example:
    >>> import asyncio
    >>> from edge.telephony.testing import ToneHandler, tone
    >>> result = asyncio.run(CallSimulator([tone(0.5), Silence(1.0)]).run(ToneHandler(0.4)))
    >>> result.end_reason.value, round(result.duration_s, 2)
    ('local_hangup', 0.42)
    >>> [(round(a, 2), round(b, 2)) for a, b in result.bot_spans()]  # the handler starts one tick in
    [(0.02, 0.42)]
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

from edge.errors import InputError
from edge.telephony.media import (DTMF_DIGITS, FRAME_SAMPLES, RUNTIME_RATE_HZ, CallHandler, CallInfo, EndReason,
                                  MediaCall, Wire)
from edge.telephony.resample import resampler

__all__ = ["CallSimulator", "Caller", "Hangup", "Press", "Silence", "SimulationResult"]

_LOGGER = logging.getLogger(__name__)

FRAME_S: Final = 0.020


@dataclass(frozen=True)
class Silence:
    seconds: float


@dataclass(frozen=True)
class Press:
    """The caller presses a keypad digit."""

    digit: str

    def __post_init__(self) -> None:
        if self.digit not in DTMF_DIGITS:
            raise InputError(f"Press digit must be one of 0-9 * # A-D, got {self.digit!r}")


@dataclass(frozen=True)
class Hangup:
    """The caller hangs up here."""


Segment = np.ndarray | Silence | Press | Hangup


class Caller(Protocol):
    """A caller that reacts to what it hears."""

    def next_frame(self, bot_frame: np.ndarray) -> np.ndarray | Press | Hangup:
        """Given the bot's last 20 ms (int16 at the wire rate), the caller's next 20 ms
        (320 int16 samples at 16 kHz), a key press (then silence), or a hangup."""


class _Timeline:
    """Fixed segments as a Caller: the simulator's original scripted caller."""

    def __init__(self, frames: np.ndarray, events: dict[int, list[Segment]]) -> None:
        self._frames, self._events, self._n = frames, events, 0

    def events(self, n: int) -> list[Segment]:
        return self._events.get(n, [])

    def frame(self, n: int) -> np.ndarray:
        return self._frames[n] if n < len(self._frames) else np.zeros(FRAME_SAMPLES, dtype=np.int16)


@dataclass
class SimulationResult:
    call: MediaCall
    caller_audio: np.ndarray
    """What the caller said, 16 kHz int16, one sample per timeline sample."""
    bot_audio: np.ndarray
    """What the bot sent, 16 kHz int16, on the same timeline (zeros while it was quiet)."""
    end_reason: EndReason
    duration_s: float
    handler_error: BaseException | None

    def bot_spans(self, min_gap_s: float = 0.1) -> list[tuple[float, float]]:
        """(start_s, end_s) of each stretch of bot audio, gaps shorter than min_gap_s merged."""
        active = np.abs(self.bot_audio.reshape(-1, FRAME_SAMPLES)).max(axis=1) > 0
        spans: list[list[float]] = []
        for index in np.flatnonzero(active):
            start = float(index) * FRAME_S
            if spans and start - spans[-1][1] < min_gap_s:
                spans[-1][1] = start + FRAME_S
            else:
                spans.append([start, start + FRAME_S])
        return [(a, b) for a, b in spans]


class _SimWire(Wire):
    def __init__(self) -> None:
        self.hung_up = False

    def hangup(self) -> None:
        self.hung_up = True


class CallSimulator:
    """Plays a scripted caller against a CallHandler.

    Args:
        segments: the caller, in order (np.ndarray = 16 kHz int16 speech).
        wire_rate_hz: 8000 (a phone line: band-limited both ways) or 16000 (no resampling).
        speed: None = as fast as possible; 1.0 = real time.
        tail_s: silent seconds the caller waits after the last segment before hanging up.
        max_duration_s: hard stop for a handler that never ends.
    """

    def __init__(self, segments: Sequence[Segment] = (), *, wire_rate_hz: int = 8000, speed: float | None = None,
                 tail_s: float = 2.0, max_duration_s: float = 300.0, call_id: str = "sim-0001",
                 caller: str | None = "13800138000", callee: str | None = None,
                 reactive: Caller | None = None) -> None:
        if speed is not None and speed <= 0:
            raise InputError(f"speed must be > 0 (or None for as fast as possible), got {speed}")
        self.wire_rate_hz = wire_rate_hz
        self.speed = speed
        self.info = CallInfo(call_id=call_id, transport="simulator", caller=caller, callee=callee)
        self.max_frames = int(max_duration_s / FRAME_S)
        self.reactive = reactive
        self._script = None if reactive is not None else _Timeline(*self._timeline(segments, tail_s))

    @staticmethod
    def _timeline(segments: Sequence[Segment], tail_s: float) -> tuple[np.ndarray, dict[int, list[Segment]]]:
        pieces: list[np.ndarray] = []
        events: dict[int, list[Segment]] = {}
        samples = 0
        for segment in [*segments, Silence(tail_s), Hangup()]:
            if isinstance(segment, np.ndarray):
                if segment.dtype != np.int16 or segment.ndim != 1:
                    raise InputError(f"caller audio must be 1-D int16 at 16 kHz, got {segment.dtype} {segment.shape}")
                piece = segment
            elif isinstance(segment, Silence):
                piece = np.zeros(round(segment.seconds * RUNTIME_RATE_HZ), dtype=np.int16)
            elif isinstance(segment, (Press, Hangup)):
                events.setdefault(-(-samples // FRAME_SAMPLES), []).append(segment)
                continue
            else:
                raise InputError(f"unknown caller segment {segment!r}; use an int16 array, Silence, Press or Hangup")
            pieces.append(piece)
            samples += len(piece)
        audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
        audio = np.concatenate([audio, np.zeros(-len(audio) % FRAME_SAMPLES, dtype=np.int16)])
        return audio.reshape(-1, FRAME_SAMPLES), events

    async def run(self, handler: CallHandler) -> SimulationResult:
        """Run the call to its end; the handler's exception, if any, is returned, not raised."""
        loop = asyncio.get_running_loop()
        wire = _SimWire()
        n = 0
        call = MediaCall(self.info, wire_rate_hz=self.wire_rate_hz, wire=wire, clock=lambda: n * FRAME_S)
        to_wire = resampler(RUNTIME_RATE_HZ, self.wire_rate_hz)
        from_wire = resampler(self.wire_rate_hz, RUNTIME_RATE_HZ)
        silence_out = np.zeros(self.wire_rate_hz * 20 // 1000, dtype=np.int16)
        quiet = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        task = loop.create_task(handler.handle(call), name=f"sim-{self.info.call_id}")
        caller_frames: list[np.ndarray] = []
        bot_frames: list[np.ndarray] = []
        start = loop.time()
        while not call.ended and n < self.max_frames:
            if task.done() and not call.queued_playback_s:
                call._end(EndReason.LOCAL_HANGUP)
                break
            if self._script is not None:
                events, frame = self._script.events(n), self._script.frame(n)
            else:
                said = self.reactive.next_frame(bot_frames[-1] if bot_frames else silence_out)
                events, frame = ([], said) if isinstance(said, np.ndarray) else ([said], quiet)
            for event in events:
                if isinstance(event, Press):
                    call._feed_dtmf(event.digit)
                elif isinstance(event, Hangup):
                    call._end(EndReason.REMOTE_HANGUP)
            if call.ended:
                break
            if frame.dtype != np.int16 or frame.shape != (FRAME_SAMPLES,):
                raise InputError(f"a caller frame must be {FRAME_SAMPLES} int16 samples, got {frame.dtype} "
                                 f"{frame.shape}")
            caller_frames.append(frame)
            call._feed_audio(to_wire.process(frame))
            out = call._next_frame()
            bot_frames.append(np.frombuffer(out, dtype="<i2") if out is not None else silence_out)
            n += 1
            if self.speed is None:
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(max(0.0, start + n * FRAME_S / self.speed - loop.time()))
        if not call.ended:
            call._end(EndReason.TIMEOUT)
        error: BaseException | None = None
        try:
            await asyncio.wait_for(task, timeout=5.0)
        except TimeoutError:
            _LOGGER.warning("simulated call %s: handler still running 5 s after the call ended; cancelled",
                            self.info.call_id)
        except Exception as exc:  # the handler's failure is part of the result
            error = exc
        with contextlib.suppress(asyncio.CancelledError):
            task.cancel()
        caller = np.concatenate(caller_frames) if caller_frames else np.zeros(0, dtype=np.int16)
        bot_wire = np.concatenate(bot_frames) if bot_frames else np.zeros(0, dtype=np.int16)
        bot = _align(from_wire.process(bot_wire), len(caller))
        return SimulationResult(call, caller, bot, call.end_reason or EndReason.TIMEOUT, n * FRAME_S, error)


def _align(pcm: np.ndarray, length: int) -> np.ndarray:
    return pcm[:length] if len(pcm) >= length else np.concatenate([pcm, np.zeros(length - len(pcm), np.int16)])
