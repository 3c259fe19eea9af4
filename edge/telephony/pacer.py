"""The 20 ms clock that paces the bot's audio onto the wire.

A PBX plays what it receives as it receives it: audio sent faster than real
time overflows its jitter buffer and the caller hears only the tail of the
sentence. So audio leaves one frame per call per tick. One clock serves every
call of a server: one timer wake-up per 20 ms for 100 calls instead of 100.

Ticks fall on a monotonic deadline `start + n * period`, never `now + period`,
so the clock does not drift: a tick that wakes late is followed by a shorter
sleep (or none: up to `max_lag_s` of frames catch up at once). When the event
loop was blocked for longer, the clock sends `max_lag_s` worth of frames and
restarts from now instead of bursting the whole backlog at the PBX; the bot's
audio is then late, never dropped.

The clock's task wakes only after every callback already queued on the event
loop has run, and with 100 calls one turn of the loop can be long (every
call's frame, turns ending together). Work like that calls `catch_up()`
between its steps (through `MediaCall.keep_time`), so a due tick leaves
within one step of its deadline instead of after the whole turn.

Example:
    >>> import asyncio
    >>> class Three:
    ...     sent = 0
    ...     def tick(self):
    ...         self.sent += 1
    ...         return self.sent < 3
    >>> async def demo():
    ...     clock = FrameClock()
    ...     out = Three()
    ...     clock.add(out)
    ...     while out.sent < 3:
    ...         await asyncio.sleep(0.01)
    ...     await clock.close()
    ...     return out.sent
    >>> asyncio.run(demo())
    3
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = ["ClockStats", "FrameClock", "Output"]

_LOGGER = logging.getLogger(__name__)

FRAME_S: Final = 0.020


class Output(Protocol):
    """Something that sends one frame per tick while it has audio."""

    def tick(self) -> bool:
        """Send the next frame now; return False when there is nothing left (leaves the clock)."""


@dataclass
class ClockStats:
    ticks: int = 0
    """Ticks that sent frames."""
    late_ticks: int = 0
    """Ticks that woke more than one period after their deadline."""
    restarts: int = 0
    """Times the clock gave up on a backlog longer than max_lag_s and restarted from now."""
    slow_ticks: int = 0
    """Ticks whose sending took over half a period: the last output's frame left that much after the first
    (the clock woke on time, yet the far end hears a gap)."""
    longest_tick_s: float = 0.0
    """The longest a tick took to send its frames, seconds."""


class FrameClock:
    """Ticks every `period_s` while any output is registered; idle (no wake-ups) otherwise.

    Args:
        period_s: frame duration, 0.020 for 20 ms frames.
        max_lag_s: a backlog longer than this is dropped rather than sent in a burst.
    """

    def __init__(self, period_s: float = FRAME_S, max_lag_s: float = 0.060) -> None:
        self.period_s = period_s
        self.max_lag_s = max_lag_s
        self.stats = ClockStats()
        self._outputs: dict[Output, None] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start = 0.0
        self._n = 0
        """Tick n is due at start + n * period_s."""
        self._active = False
        """The task is ticking (not idle): start and n are current."""
        self._burst = max(1, round(max_lag_s / period_s))

    def add(self, output: Output) -> None:
        """Start sending `output`'s frames from the next tick (idempotent)."""
        self._outputs[output] = None
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="frame-clock")
        self._wake.set()

    def discard(self, output: Output) -> None:
        """Stop ticking `output` (the call ended or its audio was cleared)."""
        self._outputs.pop(output, None)

    def __len__(self) -> int:
        return len(self._outputs)

    async def close(self) -> None:
        """Stop the clock task; outputs still registered are dropped."""
        self._outputs.clear()
        self._active = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def catch_up(self) -> None:
        """Send the tick that fell due while other work held the event loop, now rather than after it.

        The clock's task wakes only once every callback already queued on the loop has run; with many
        calls one loop iteration (a burst of caller frames, turns ending together) can hold a due tick
        for tens of ms, and every call's far end hears the gap. Code that does much in one go calls this
        between its steps (`MediaCall.keep_time`): a due tick then leaves within one step of its
        deadline. Cheap when nothing is due (a clock read).
        """
        if self._active and self._outputs:
            lag = self._loop.time() - (self._start + self._n * self.period_s)
            if lag >= 0:
                self._send(lag)

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._start, self._n, self._active = self._loop.time(), 0, True
        while True:
            if not self._outputs:
                self._active = False
                self._wake.clear()
                await self._wake.wait()
                self._start, self._n, self._active = self._loop.time(), 0, True
            lag = self._loop.time() - (self._start + self._n * self.period_s)
            if lag < 0:
                await asyncio.sleep(-lag)
                continue  # measured again on waking: a late wake-up counts, and catch_up may have sent it
            self._send(lag)

    def _send(self, lag: float) -> None:
        """Send tick n, `lag` seconds after its deadline."""
        if lag > self.max_lag_s:
            # Stalled (a blocked or starved loop): send what a jitter buffer absorbs, then restart.
            _LOGGER.debug("frame clock %.0f ms behind: sending %d frames and restarting", lag * 1000, self._burst)
            self.stats.restarts += 1
            for _ in range(self._burst - 1):
                self._tick_all()
            self._start, self._n = self._loop.time(), 0
        elif lag > self.period_s:
            self.stats.late_ticks += 1
        self._n += 1
        self._tick_all()

    def _tick_all(self) -> None:
        stats = self.stats
        stats.ticks += 1
        started = time.perf_counter()
        for output in list(self._outputs):
            try:
                more = output.tick()
            except Exception:
                _LOGGER.exception("an output failed on the frame clock; it is dropped from the clock")
                more = False
            if not more:
                self._outputs.pop(output, None)
        took = time.perf_counter() - started
        if took > self.period_s / 2:
            stats.slow_ticks += 1
        stats.longest_tick_s = max(stats.longest_tick_s, took)
