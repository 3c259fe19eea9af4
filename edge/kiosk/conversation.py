"""When a kiosk conversation ends: an explicit clock, no audio, no asyncio.

A conversation ends when the visitor has been silent for `idle_timeout_s`
while the bot was quiet, or after `max_s` in all. The bot speaking (its
audio queued, or the gate still closed) is not the visitor being idle.

Example:
    >>> clock = ConversationClock(idle_timeout_s=20, max_s=600)
    >>> clock.begin(0.0)
    >>> clock.tick(12.0, visitor_voiced=False, bot_busy=False)   # None: still going
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["ConversationClock", "EndWhy"]


class EndWhy(enum.StrEnum):
    IDLE = "idle_timeout"
    """The visitor said nothing for idle_timeout_s while the bot was quiet."""
    MAX_LENGTH = "max_length"
    """The conversation reached max_s."""


@dataclass
class ConversationClock:
    idle_timeout_s: float
    max_s: float
    started_s: float = 0.0
    last_activity_s: float = 0.0
    """When the visitor last spoke or the bot last made sound."""

    def begin(self, now_s: float) -> None:
        self.started_s = self.last_activity_s = now_s

    def tick(self, now_s: float, visitor_voiced: bool, bot_busy: bool) -> EndWhy | None:
        """One step; returns why the conversation ends now, or None."""
        if visitor_voiced or bot_busy:
            self.last_activity_s = now_s
        if now_s - self.started_s >= self.max_s:
            return EndWhy.MAX_LENGTH
        if now_s - self.last_activity_s >= self.idle_timeout_s:
            return EndWhy.IDLE
        return None
