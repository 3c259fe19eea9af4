"""What the kiosk needs of a sound card (`AudioPort`), and an in-memory one with a room echo.

A port runs on its own clock: every 20 ms it hands over one microphone frame
and whether the speaker played sound in that same step, and it takes the
next speaker frame from its queue. `SoundCardPort` (edge/kiosk/sound.py) is
the real one; `LoopbackPort` plays a scripted visitor and feeds what the
speaker played back into the microphone after a delay, like a room, so the
whole kiosk (gate, start triggers, idle timeout, handler) runs in tests and
dry runs with no hardware.

Example:
    >>> port = LoopbackPort(visitor=speech_16k, echo_gain=0.5, echo_delay_ms=60)
    >>> stats = await Kiosk(port, ToneHandler(1.0), options, starters=[VoiceStart()]).run(max_conversations=1)
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

import numpy as np

from edge.errors import InputError
from edge.kiosk.levels import audible
from edge.telephony.media import FRAME_SAMPLES

__all__ = ["AudioPort", "LoopbackPort"]

FRAME_S: Final = 0.020


class AudioPort(Protocol):
    """A duplex sound device seen 20 ms at a time."""

    latency_s: float
    """Input + output latency (the gate's tail grows by it)."""

    @property
    def name(self) -> str: ...

    def start(self, on_block: Callable[[np.ndarray, bool], None], on_end: Callable[[], None]) -> None:
        """Start the clock: `on_block(mic_frame, speaker_audible)` every 20 ms (maybe on another thread);
        `on_end()` once if the device goes away."""

    def play(self, frame: np.ndarray) -> None:
        """Queue one 320-sample int16 frame for the speaker (thread-safe)."""

    def queued(self) -> int:
        """Speaker frames queued and not yet played."""

    def flush(self) -> None:
        """Drop the queued speaker frames."""

    def stop(self) -> None: ...


class LoopbackPort:
    """An in-memory sound card: a scripted visitor plus the room's echo of the speaker.

    Args:
        visitor: what the visitor says, 16 kHz int16, from the first block on (silence after it).
        echo_gain: how much of the speaker reaches the microphone (0.5 = -6 dB; 0 = no echo).
        echo_delay_ms: how much later it arrives (speaker -> air -> microphone + card latency).
        latency_s: what the port reports as its latency.
        max_s: the port's clock stops after this long (then on_end runs).
        speed: None: as fast as the loop keeps up; 1.0: real time.
    """

    def __init__(self, visitor: np.ndarray | None = None, *, echo_gain: float = 0.5, echo_delay_ms: int = 60,
                 latency_s: float = 0.0, max_s: float = 60.0, speed: float | None = None) -> None:
        visitor = np.zeros(0, dtype=np.int16) if visitor is None else np.asarray(visitor)
        if visitor.dtype != np.int16 or visitor.ndim != 1:
            raise InputError(f"visitor audio must be 1-D int16 at 16 kHz, got {visitor.dtype} {visitor.shape}")
        self.visitor = np.concatenate([visitor, np.zeros(-len(visitor) % FRAME_SAMPLES, dtype=np.int16)])
        self.echo_gain = echo_gain
        self.echo_frames = round(echo_delay_ms / 20)
        self.latency_s = latency_s
        self.max_blocks = int(max_s / FRAME_S)
        self.speed = speed
        self.played: list[np.ndarray] = []
        """Every speaker frame, one per block (silence when nothing was queued)."""
        self.mic: list[np.ndarray] = []
        """Every microphone frame handed over (visitor + echo)."""
        self._out: deque[np.ndarray] = deque()
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return "loopback"

    def start(self, on_block: Callable[[np.ndarray, bool], None], on_end: Callable[[], None]) -> None:
        self._task = asyncio.get_running_loop().create_task(self._clock(on_block, on_end), name="loopback-port")

    async def _clock(self, on_block: Callable[[np.ndarray, bool], None], on_end: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        for n in range(self.max_blocks):
            frame = self._out.popleft() if self._out else silence
            self.played.append(frame)
            begin = n * FRAME_SAMPLES
            mic = self.visitor[begin:begin + FRAME_SAMPLES] if begin < len(self.visitor) else silence
            if self.echo_gain and n >= self.echo_frames:
                echo = self.played[n - self.echo_frames].astype(np.float32) * self.echo_gain
                mic = np.clip(mic.astype(np.float32) + echo, -32768, 32767).astype(np.int16)
            self.mic.append(mic)
            on_block(mic, audible(frame))
            if self.speed is None:
                await asyncio.sleep(0)
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(max(0.0, start + (n + 1) * FRAME_S / self.speed - loop.time()))
        on_end()

    def play(self, frame: np.ndarray) -> None:
        self._out.append(frame)

    def queued(self) -> int:
        return len(self._out)

    def flush(self) -> None:
        self._out.clear()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def played_audio(self) -> np.ndarray:
        return np.concatenate(self.played) if self.played else np.zeros(0, dtype=np.int16)
