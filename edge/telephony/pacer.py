"""The 20 ms clock that paces the bot's audio onto the wire.

A PBX plays what it receives as it receives it: audio sent faster than real
time overflows its jitter buffer and the caller hears only the tail of the
sentence. So audio leaves one frame per call per tick. One clock serves every
call of a server: one timer wake-up per 20 ms for 100 calls instead of 100.

Ticks fall on a monotonic deadline `start + n * period`, never `now + period`,
so the clock does not drift: a tick that wakes late is followed by a shorter
sleep. When the event loop was blocked for longer than `max_lag_s`, the clock
restarts from now instead of bursting the backlog at the PBX.

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
import logging
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
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        start, n = loop.time(), 0
        while True:
            if not self._outputs:
                self._wake.clear()
                await self._wake.wait()
                start, n = loop.time(), 0
            deadline = start + n * self.period_s
            now = loop.time()
            if deadline > now:
                await asyncio.sleep(deadline - now)
            elif now - deadline > self.max_lag_s:
                _LOGGER.debug("frame clock %.0f ms behind: restarting from now", (now - deadline) * 1000)
                self.stats.restarts += 1
                start, n = now, 0
            elif now - deadline > self.period_s:
                self.stats.late_ticks += 1
            n += 1
            self.stats.ticks += 1
            for output in list(self._outputs):
                try:
                    more = output.tick()
                except Exception:
                    _LOGGER.exception("an output failed on the frame clock; it is dropped from the clock")
                    more = False
                if not more:
                    self._outputs.pop(output, None)
