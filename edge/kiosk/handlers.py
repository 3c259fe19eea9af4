"""What talks at the kiosk: the handler `[kiosk] handler` selects.

- "callloop": the voice call loop (edge.calls.session.CallLoop on the shared
  Runtime), recording every conversation in the call records with
  source = "kiosk". This is the hook where the call loop plugs in; an install
  without it gets a clear error.
- "repeat": a sound check for half-duplex use: a short beep, then each thing
  the visitor says is played back after they stop.
- "echo" / "tone": edge.telephony.testing's EchoHandler / ToneHandler.
- "auto": "callloop" when this install has it, else "repeat".
"""

from __future__ import annotations

import logging
from typing import Final

import numpy as np

from edge.config import Config
from edge.errors import ConfigError
from edge.kiosk.levels import rms_dbfs
from edge.telephony.media import FRAME_MS, CallHandler, MediaCall
from edge.telephony.testing import EchoHandler, ToneHandler, tone

__all__ = ["RepeatHandler", "build_handler", "call_loop_available"]

_LOGGER = logging.getLogger(__name__)

CALL_LOOP_MODULES: Final = ("edge.calls.session", "edge.calls.runtime")


def call_loop_available() -> bool:
    """True when this install has the voice call loop (edge.calls.session)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in CALL_LOOP_MODULES)


def _call_loop(config: Config) -> CallHandler:
    """The voice call loop, recording kiosk conversations with source = "kiosk"."""
    from edge.calls.records import Records
    from edge.calls.runtime import Runtime  # edge.calls.runtime and .session come with the call loop
    from edge.calls.session import CallLoop

    records = Records.open(config.records.path(config.data.resolved()), source="kiosk")
    return CallLoop(Runtime.load(config), records)


def build_handler(config: Config) -> tuple[CallHandler, str]:
    """The handler the config selects, and its name.

    Raises:
        ConfigError: "callloop" asked for on an install without the call loop.
    """
    choice = config.kiosk.handler
    if choice in ("auto", "callloop"):
        if call_loop_available():
            return _call_loop(config), "callloop"
        if choice == "callloop":
            raise ConfigError("kiosk.handler = \"callloop\" needs the voice call loop (edge.calls.session), which "
                              "this install does not have; upgrade edge-salesbot, or use \"repeat\" for a sound check")
        _LOGGER.warning("this install has no voice call loop (edge.calls.session); the kiosk runs the \"repeat\" "
                        "sound check: it plays back what it hears")
        choice = "repeat"
    if choice == "tone":
        return ToneHandler(1.0), "tone"
    if choice == "echo":
        return EchoHandler(), "echo"
    return RepeatHandler(speech_dbfs=config.kiosk.speech_dbfs), "repeat"


class RepeatHandler:
    """Beeps, then plays back each utterance once the visitor stops (a half-duplex sound check).

    Args:
        speech_dbfs: frame level that counts as speech.
        end_silence_ms: quiet that ends an utterance.
        max_utterance_ms: an utterance is cut (and played) at this length.
    """

    def __init__(self, speech_dbfs: float = -40.0, end_silence_ms: int = 600, max_utterance_ms: int = 8000) -> None:
        self.speech_dbfs = speech_dbfs
        self.end_frames = max(1, end_silence_ms // FRAME_MS)
        self.max_frames = max(self.end_frames, max_utterance_ms // FRAME_MS)
        self.beep = tone(0.15, 880.0, 6000)
        self.repeats = 0

    async def handle(self, call: MediaCall) -> None:
        await call.play(self.beep)
        utterance: list[np.ndarray] = []
        quiet = 0
        async for frame in call.audio():
            voiced = rms_dbfs(frame) >= self.speech_dbfs
            if not utterance and not voiced:
                continue
            utterance.append(frame)
            quiet = 0 if voiced else quiet + 1
            if quiet >= self.end_frames or len(utterance) >= self.max_frames:
                await call.play(np.concatenate(utterance[:len(utterance) - quiet]))
                self.repeats += 1
                utterance, quiet = [], 0
