"""Calls in progress, as the dashboard's live page shows them.

The call loop (text simulator today, the voice loop later) reports each call's
state, current script node and mood; the dashboard reads `snapshot()`.
Thread-safe; ended calls stay visible for `keep_ended_s`. Phone numbers are
stored masked.

Example:
    >>> live = LiveCalls()
    >>> live.begin("c1", campaign="三月华东", lead="张总 138****8000")
    >>> live.update("c1", state="talking", node="pitch", mood="positive", caller="挺感兴趣的")
    >>> live.end("c1", "meeting_booked")
    >>> live.snapshot()[0]["state"], live.snapshot()[0]["outcome"]
    ('ended', 'meeting_booked')
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Final

STATES: Final = ("dialling", "ringing", "talking", "connected", "ended")
"""connected: answered and handed to the voice loop (AMI); talking: the bot is in the conversation."""
_POSITIVE: Final = frozenset({"interested", "agree_meeting", "confirm_yes", "send_info", "ask_trial"})
_NEGATIVE: Final = frozenset({"complaint_do_not_call", "not_interested", "request_human", "deny_no"})


def mood_from_intents(labels: list[str] | tuple[str, ...]) -> str:
    """positive | negative | neutral from a turn's intents (a stand-in until the tone-of-voice model reports)."""
    found = set(labels)
    if found & _NEGATIVE:
        return "negative"
    if found & _POSITIVE:
        return "positive"
    return "neutral"


@dataclass
class LiveCall:
    call_id: str
    campaign: str | None
    lead: str
    state: str
    started_at: float
    node: str | None = None
    mood: str | None = None
    turns: int = 0
    caller: str = ""
    """What the callee said last."""
    bot: str = ""
    """What the bot said last."""
    outcome: str | None = None
    ended_at: float | None = None


class LiveCalls:
    """An in-process registry of the calls going on now."""

    def __init__(self, keep_ended_s: float = 300.0, clock=time.time):
        self._calls: dict[str, LiveCall] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self.keep_ended_s = keep_ended_s
        self.version = 0
        """Bumped on every change (the dashboard polls and redraws when it moves)."""

    def begin(self, call_id: str, *, campaign: str | None, lead: str, state: str = "dialling") -> None:
        with self._lock:
            self._calls[call_id] = LiveCall(call_id, campaign, lead, state, self._clock())
            self.version += 1

    def update(self, call_id: str, **fields: Any) -> None:
        """Set state, node, mood, turns, caller, bot (unknown calls and fields are ignored)."""
        with self._lock:
            call = self._calls.get(call_id)
            if call is None:
                return
            for key, value in fields.items():
                if key in ("state", "node", "mood", "turns", "caller", "bot"):
                    setattr(call, key, value)
            self.version += 1

    def end(self, call_id: str, outcome: str | None) -> None:
        with self._lock:
            call = self._calls.get(call_id)
            if call is None:
                return
            call.state, call.outcome, call.ended_at = "ended", outcome, self._clock()
            self.version += 1

    def active(self) -> int:
        with self._lock:
            return sum(1 for c in self._calls.values() if c.state != "ended")

    def snapshot(self) -> list[dict[str, Any]]:
        """Active calls (oldest first), then recently ended ones (newest first)."""
        now = self._clock()
        with self._lock:
            for call_id in [k for k, c in self._calls.items()
                            if c.ended_at is not None and now - c.ended_at > self.keep_ended_s]:
                del self._calls[call_id]
            calls = list(self._calls.values())
        active = sorted((c for c in calls if c.state != "ended"), key=lambda c: c.started_at)
        ended = sorted((c for c in calls if c.state == "ended"), key=lambda c: -(c.ended_at or 0))
        out = []
        for call in active + ended:
            row = asdict(call)
            row["duration_s"] = round((call.ended_at or now) - call.started_at, 1)
            out.append(row)
        return out
