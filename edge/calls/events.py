"""What the stages of a call pass each other: small typed events (Pipecat's frames, 17 of them).

Three kinds, as in Pipecat:
- `SystemEvent`: handled at once, never queued, never dropped (audio in,
  speech started, the bot started/stopped speaking, interruption);
- `DataEvent`: queued and handled in order by each stage; an `Interruption`
  drops the ones still queued (a reply the caller cut off);
- `Uninterruptible` (mixed into a data event): kept through an interruption
  (what the caller said must never be lost).

Times: `at_s` is call time (seconds since the call started, on the media
clock); `wall` is `time.perf_counter()` when the event was made, for the
per-turn latency marks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge.audio.prosody import Prosody
from edge.nlu.emotion import Mood
from edge.nlu.intent import IntentResult


def _now() -> float:
    return time.perf_counter()


class Event:
    """Base of every event."""


class SystemEvent(Event):
    """Handled immediately by each stage, never dropped."""


class DataEvent(Event):
    """Handled in order; dropped from the queues by an interruption."""


class Uninterruptible:
    """Mixin: a data event an interruption keeps."""


# --- system events ------------------------------------------------------------------------------


@dataclass
class CallStarted(SystemEvent):
    call_id: str
    at_s: float = 0.0


@dataclass
class CallEnded(SystemEvent):
    reason: str
    """The media's end reason (remote_hangup, local_hangup, ...)."""
    at_s: float = 0.0


@dataclass
class AudioIn(SystemEvent):
    """20 ms of the caller's audio (16 kHz int16)."""

    pcm: np.ndarray
    at_s: float
    power: float | None = None
    """Its mean square less its squared mean (int16 scale), when the transport measured it (servers
    do, for all calls' frames at once); None: the voice detector measures it."""


@dataclass
class UserStartedSpeaking(SystemEvent):
    at_s: float
    """When the speech began (its first speech frame)."""
    over_bot: bool = False
    """Began while the bot was speaking."""


@dataclass
class UserStoppedSpeaking(SystemEvent):
    at_s: float
    """End of the last speech frame."""
    reason: str = "silence"
    """"silence" (the endpoint) or "max_length" (cut)."""
    wall: float = field(default_factory=_now)


@dataclass
class EarlyUtterance(SystemEvent):
    """The caller has paused for call.early_asr_ms: the utterance the turn is if it ends at this pause
    (recognition may start on it now); None: they went on speaking, drop it."""

    utterance: Utterance | None


@dataclass
class BotStartedSpeaking(SystemEvent):
    """First audio of a reply went to the line (sent upstream by the output stage)."""

    turn: int
    interruptible: bool
    at_s: float
    queued_s: float = 0.0
    """Bot audio already queued ahead of it (a reply behind a line still playing)."""
    wall: float = field(default_factory=_now)


@dataclass
class BotStoppedSpeaking(SystemEvent):
    """The bot's audio has all left, or was cut (sent upstream)."""

    turn: int
    at_s: float
    interrupted: bool = False


@dataclass
class Interruption(SystemEvent):
    """The caller barged in: drop the queued reply and what is still playing."""

    turn: int = 0
    """The caller turn that cut in."""


@dataclass
class ResumePlayback(SystemEvent):
    """Speech over the bot was only a backchannel (or noise): the paused line goes on."""


@dataclass
class ListenFor(SystemEvent):
    """Endpointing for the caller's next answer (sent upstream after a reply)."""

    silence_ms: int
    node: str = ""


# --- data events --------------------------------------------------------------------------------


@dataclass
class Utterance(DataEvent, Uninterruptible):
    """One caller turn's audio, cut by the endpointer."""

    pcm: np.ndarray
    start_s: float
    end_s: float
    over_bot: bool = False
    reason: str = "silence"
    silence_ms: int = 0
    """Trailing silence the endpointer waited for."""
    wall: float = field(default_factory=_now)
    """When the endpointer decided the turn was over."""


@dataclass
class NoInput(DataEvent):
    """The caller said nothing for the no-input time after the bot's line."""

    at_s: float
    wall: float = field(default_factory=_now)


@dataclass
class Transcript(DataEvent, Uninterruptible):
    """What the recognizer heard in an utterance (empty: nothing it could read)."""

    text: str
    utterance: Utterance
    raw_text: str | None = None
    asr_ms: float = 0.0
    wall: float = field(default_factory=_now)
    prepared: dict[str, Any] | None = None
    """Understanding already done on it during the endpoint's silence ("intents", "prosody"), if any."""


@dataclass
class Understood(DataEvent, Uninterruptible):
    """A transcript with its intents, prosody and mood."""

    transcript: Transcript
    intents: IntentResult | None
    prosody: Prosody | None
    mood: Mood | None
    wall: float = field(default_factory=_now)


@dataclass
class BotReply(DataEvent):
    """What the bot says next."""

    turn: int
    """Caller turn it answers (0: the opening)."""
    text: str
    parts: list[Any]
    """edge.dialog.replies.Spoken parts: kind "line"/"repeat" are cached, "answer" is synthesized."""
    node: str
    interruptible: bool
    ended: bool
    wall: float = field(default_factory=_now)


@dataclass
class BotAudio(DataEvent):
    """One sentence of the reply, synthesized."""

    turn: int
    text: str
    pcm: np.ndarray
    interruptible: bool
    first: bool = False
    cached: bool = False


@dataclass
class ReplyDone(DataEvent):
    """The last sentence of a reply has been sent on (or the reply had no audio)."""

    turn: int
    ended: bool = False
    """The call ends once this reply has been heard."""
