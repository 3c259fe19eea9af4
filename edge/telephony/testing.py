"""Trivial call handlers for tests, demos and the transport benchmark (no models)."""

from __future__ import annotations

import numpy as np

from edge.telephony.media import RUNTIME_RATE_HZ, MediaCall

__all__ = ["EchoHandler", "ToneHandler", "tone"]


def tone(seconds: float, hz: float = 440.0, amplitude: int = 8000, rate_hz: int = RUNTIME_RATE_HZ) -> np.ndarray:
    """A sine tone as int16 samples."""
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


class EchoHandler:
    """Plays every caller frame straight back, paced by the clock, until the caller hangs up."""

    def __init__(self) -> None:
        self.calls: list[MediaCall] = []

    async def handle(self, call: MediaCall) -> None:
        self.calls.append(call)
        async for frame in call.audio():
            await call.play(frame)


class ToneHandler:
    """Plays a tone for `seconds`, waits until it has left, then hangs up."""

    def __init__(self, seconds: float = 1.0, hz: float = 440.0) -> None:
        self.pcm = tone(seconds, hz)
        self.calls: list[MediaCall] = []

    async def handle(self, call: MediaCall) -> None:
        self.calls.append(call)
        await call.play(self.pcm)
        await call.wait_played()
