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
    """Plays every caller frame straight back, paced by the clock, until the caller hangs up.

    Args:
        prebuffer_frames: hold this many frames before the first playback, a cushion against
            arrival jitter (a bot queues its speech ahead; a bare echo has nothing queued, so a frame
            arriving just after a 20 ms tick would leave that tick empty). The daemon uses 2 (40 ms).
        max_queued_s: drop incoming frames while this much echo is already queued, as a jitter buffer
            drops late packets: after a stall the echo delay recovers instead of growing for the rest
            of the call. None: never drop.
    """

    def __init__(self, prebuffer_frames: int = 0, max_queued_s: float | None = None) -> None:
        self.prebuffer_frames = prebuffer_frames
        self.max_queued_s = max_queued_s
        self.dropped_frames = 0
        self.calls: list[MediaCall] = []

    async def handle(self, call: MediaCall) -> None:
        self.calls.append(call)
        held: list[np.ndarray] | None = [] if self.prebuffer_frames else None
        async for frame in call.audio():
            if held is not None:
                if len(held) < self.prebuffer_frames:
                    held.append(frame)
                    continue
                frame, held = np.concatenate([*held, frame]), None
            elif self.max_queued_s is not None and call.queued_playback_s >= self.max_queued_s:
                self.dropped_frames += 1
                continue
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
