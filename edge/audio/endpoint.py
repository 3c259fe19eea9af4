"""Endpointing: when a caller's turn starts and ends, as an explicit state machine.

States (as Pipecat's VADState): QUIET -> STARTING -> SPEAKING -> STOPPING -> QUIET.
The input is one voice confidence per frame (from edge.audio.vad, or any
number in tests), so every timing rule here is tested without a model:

- a turn starts once `start_ms` of speech has come with no gap longer than
  `start_gap_ms` (clicks and pops never get that far); its start time is
  the first speech frame;
- it ends after `silence_ms` of trailing silence (the end time is the last
  speech frame); the silence can be changed per turn (longer while the caller
  gives a phone number or a time, shorter for speech over the bot);
- a turn longer than `max_utterance_ms` is cut there (reason "max_length");
  speech that goes on starts a new turn at once.

Example:
    >>> ep = Endpointer(EndpointSettings(start_ms=60, silence_ms=500))
    >>> events = [e for c in [0, 1, 1, 1, 1] + [0] * 30 for e in ep.update(c)]
    >>> [(e.kind, e.at_ms) for e in events]
    [('start', 20), ('end', 100)]
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Final

FRAME_MS: Final = 20
"""Duration of one frame, ms (the telephony frame)."""


class VadState(enum.Enum):
    QUIET = "quiet"
    STARTING = "starting"
    SPEAKING = "speaking"
    STOPPING = "stopping"


@dataclass(frozen=True)
class EndpointSettings:
    """Timing rules of one turn; every value in ms."""

    start_ms: int = 60
    """Speech needed before a turn counts as started."""
    start_gap_ms: int = 60
    """Longest gap allowed while a start is being confirmed; longer falls back to QUIET."""
    silence_ms: int = 500
    """Trailing silence that ends a turn."""
    max_utterance_ms: int = 15000
    """A turn is cut at this length."""
    threshold: float = 0.5
    """Confidence at or above which a frame is speech."""


@dataclass(frozen=True)
class EndpointEvent:
    kind: str
    """"start" (a turn started) or "end" (it ended)."""
    at_ms: int
    """Start: time of its first speech frame. End: the end of its last speech frame."""
    reason: str = ""
    """For "end": "silence" or "max_length"."""
    speech_ms: int = 0
    """For "end": frames of speech in the turn, ms."""


class Endpointer:
    """Frame-by-frame turn detection; `update(confidence)` returns what happened at this frame."""

    def __init__(self, settings: EndpointSettings | None = None) -> None:
        self.settings = settings or EndpointSettings()
        self.state = VadState.QUIET
        self.now_ms = 0
        """Time at the end of the last frame given."""
        self._start_ms = 0
        self._last_speech_ms = 0
        self._speech_ms = 0
        self._silence_ms: int | None = None

    def set_silence(self, silence_ms: int) -> None:
        """Trailing silence for the turn in progress and the next ones."""
        self.settings = replace(self.settings, silence_ms=int(silence_ms))

    def update(self, confidence: float) -> list[EndpointEvent]:
        s = self.settings
        frame_start = self.now_ms
        self.now_ms += FRAME_MS
        speech = confidence >= s.threshold
        events: list[EndpointEvent] = []
        if self.state is VadState.QUIET:
            if speech:
                self.state = VadState.STARTING
                self._start_ms, self._speech_ms = frame_start, FRAME_MS
                self._last_speech_ms = self.now_ms
        elif self.state is VadState.STARTING:
            if speech:
                self._speech_ms += FRAME_MS
                self._last_speech_ms = self.now_ms
                if self._speech_ms >= s.start_ms:
                    self.state = VadState.SPEAKING
                    events.append(EndpointEvent("start", self._start_ms))
            elif self.now_ms - self._last_speech_ms > s.start_gap_ms:
                self.state = VadState.QUIET
        else:
            if speech:
                self._speech_ms += FRAME_MS
                self._last_speech_ms = self.now_ms
                self.state = VadState.SPEAKING
            else:
                self.state = VadState.STOPPING
                if self.now_ms - self._last_speech_ms >= s.silence_ms:
                    events.append(EndpointEvent("end", self._last_speech_ms, "silence", self._speech_ms))
                    self.state = VadState.QUIET
                    return events
            if self.now_ms - self._start_ms >= s.max_utterance_ms:
                events.append(EndpointEvent("end", self.now_ms, "max_length", self._speech_ms))
                # Speech that goes on is a new turn straight away (its start already confirmed).
                if speech:
                    self._start_ms, self._speech_ms = self.now_ms, 0
                    self.state = VadState.SPEAKING
                    events.append(EndpointEvent("start", self.now_ms))
                else:
                    self.state = VadState.QUIET
        return events

    @property
    def last_speech_ms(self) -> int:
        """End of the last speech frame of the turn in progress (where it ends if the silence holds)."""
        return self._last_speech_ms

    @property
    def in_turn(self) -> bool:
        """True from a confirmed start until its end (SPEAKING or STOPPING)."""
        return self.state in (VadState.SPEAKING, VadState.STOPPING)


class NoInputTimer:
    """Fires once when `timeout_ms` pass with the timer armed (after the bot's line) and no turn started."""

    def __init__(self, timeout_ms: int) -> None:
        self.timeout_ms = timeout_ms
        self._armed_at: int | None = None

    def arm(self, now_ms: int) -> None:
        self._armed_at = now_ms

    def disarm(self) -> None:
        self._armed_at = None

    @property
    def armed(self) -> bool:
        return self._armed_at is not None

    def expired(self, now_ms: int) -> bool:
        """True once (then disarmed) when the timeout has passed."""
        if self._armed_at is not None and now_ms - self._armed_at >= self.timeout_ms:
            self._armed_at = None
            return True
        return False
