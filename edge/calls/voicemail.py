"""Is a person on the line? Answering-machine and carrier-announcement detection
on outbound calls, from the ASR text of the first thing heard and its timing.

Signals: typical voicemail phrases (请在提示音后留言), carrier announcements
(您拨打的电话已关机 / 正在通话中 / 是空号), a beep after the greeting, and a long
uninterrupted greeting (a person says 喂 and waits; a machine talks on).
The phrases live in edge/data/voicemail.yaml.

Example:
    >>> detect(Greeting("您好，我现在不方便接听，请在提示音后留言", speech_ms=5200, beep=True)).kind
    'voicemail'
    >>> detect(Greeting("喂 你好", speech_ms=700)).kind
    'human'
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Final

import yaml

from edge.config import DATA_DIR

PHRASES_FILE: Final = DATA_DIR / "voicemail.yaml"
LONG_GREETING_MS: Final = 4000
"""Speech without a pause longer than this from the far end is a recording more often than a person."""
LONG_GREETING_CHARS: Final = 18
"""A first utterance this long (characters, no pause) counts like a long greeting when no timing is known."""
DECIDE: Final = 0.6
"""Confidence at which a non-human verdict is acted on."""
KINDS: Final = ("human", "voicemail", "unreachable", "busy", "invalid")
_STRIP: Final = re.compile(r"[\s,，。.!！?？、:：;；\"'“”]")


@dataclass(frozen=True)
class Greeting:
    """What the call loop knows a few seconds after the far end picked up."""

    text: str
    """ASR text of the first utterance."""
    speech_ms: float | None = None
    """How long that utterance ran before the first pause."""
    beep: bool = False
    """A tone (a recorder's beep) was heard after it."""


@dataclass(frozen=True)
class Verdict:
    kind: str
    """human | voicemail | unreachable (switched off, no signal) | busy | invalid (no such number)."""
    confidence: float
    reasons: list[str] = field(default_factory=list)

    @property
    def is_human(self) -> bool:
        return self.kind == "human"


@functools.lru_cache(maxsize=1)
def phrases() -> dict[str, tuple[str, ...]]:
    data = yaml.safe_load(PHRASES_FILE.read_text(encoding="utf-8"))
    return {kind: tuple(_STRIP.sub("", p).lower() for p in data.get(kind, [])) for kind in KINDS[1:]}


def detect(greeting: Greeting) -> Verdict:
    """The verdict on one greeting; `kind` is "human" unless a signal reaches DECIDE."""
    text = _STRIP.sub("", greeting.text or "").lower()
    table = phrases()
    for kind in ("invalid", "busy", "unreachable"):  # carrier announcements are unambiguous
        hit = next((p for p in table[kind] if p in text), None)
        if hit:
            return Verdict(kind, 0.95, [f"carrier announcement: {hit}"])
    score, reasons = 0.0, []
    hit = next((p for p in table["voicemail"] if p in text), None)
    if hit:
        score, reasons = 0.85, [f"voicemail phrase: {hit}"]
    if greeting.beep:
        score = max(score, 0.8) + (0.1 if score else 0.0)
        reasons.append("beep after the greeting")
    long_greeting = (greeting.speech_ms is not None and greeting.speech_ms >= LONG_GREETING_MS) or (
        greeting.speech_ms is None and len(text) >= LONG_GREETING_CHARS)
    if long_greeting:
        score = max(score, 0.6) + (0.05 if score else 0.0)
        reasons.append(f"uninterrupted greeting ({greeting.speech_ms or len(text)} "
                       f"{'ms' if greeting.speech_ms is not None else 'characters'})")
    if text.startswith("您拨打的") and score < DECIDE:
        return Verdict("unreachable", 0.7, ["carrier announcement: 您拨打的..."])
    if score >= DECIDE:
        return Verdict("voicemail", round(min(score, 0.99), 2), reasons)
    return Verdict("human", round(1.0 - score, 2), reasons or ["short greeting"])
