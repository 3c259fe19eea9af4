"""The dialogue stage: what the caller meant -> what the bot says, with the per-turn timing marks.

Decides what speech over the bot was: a backchannel (嗯, 对) or noise lets
the paused line go on (`ResumePlayback`); anything else on an interruptible
line is a barge-in (`Interruption`, then the new reply).

Timing marks of a turn, ms after the endpointer decided the caller had
finished (the "end of caller speech"): `asr_final`, `nlu_done`,
`reply_chosen`, `first_audio` (the reply's first sentence handed to the
line); `endpoint_silence` is the trailing silence waited before that.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from edge.calls.events import (BotReply, BotStartedSpeaking, CallEnded, CallStarted, Interruption, ListenFor,
                               NoInput, ReplyDone, ResumePlayback, SystemEvent, Understood)
from edge.calls.pipeline import Stage
from edge.config import CallConfig
from edge.dialog import policy
from edge.dialog.engine import Dialogue, Reply, TurnLog

_LOGGER = logging.getLogger(__name__)

LONG_ANSWER_SLOTS: Final = ("phone", "wechat", "email", "meeting_time", "callback_time")
"""Slots people pause in the middle of giving (numbers, addresses, times)."""


def silence_for(node, config: CallConfig) -> int:
    """Trailing silence that ends the caller's answer at `node`."""
    if node is None:
        return config.silence_ms
    if node.silence_ms is not None:
        return node.silence_ms
    return config.long_silence_ms if node.ask in LONG_ANSWER_SLOTS else config.silence_ms


def _ms(later: float, earlier: float) -> float:
    return round((later - earlier) * 1000.0, 2)


class DialogueStage(Stage):
    """Runs the call's Dialogue; every caller turn becomes a reply (or a resume)."""

    name = "dialogue"

    def __init__(self, dialogue: Dialogue, config: CallConfig, start: datetime, asr_info: dict[str, Any],
                 on_turn: Callable[[TurnLog], None] | None = None) -> None:
        super().__init__()
        self.dialogue = dialogue
        self.config = config
        self.start_at = start
        self.asr_info = asr_info
        self.on_turn = on_turn
        self.opening: Reply | None = None
        self._pending: dict[int, dict[str, Any]] = {}
        """Caller turn -> marks, until its reply's first audio went out."""

    async def on_system(self, event: SystemEvent, upstream: bool) -> None:
        if isinstance(event, CallStarted):
            self.opening = self.dialogue.start(self.start_at)
            await self._say(self.opening, 0)
        elif isinstance(event, BotStartedSpeaking) and upstream:
            marks = self._pending.get(event.turn)
            if marks is not None:
                marks["first_audio"] = _ms(event.wall, marks.pop("_ref"))
                if event.queued_s:
                    marks["queued_behind_s"] = round(event.queued_s, 3)
                self._record(event.turn)
        elif isinstance(event, CallEnded):
            for turn in sorted(self._pending):
                self._pending[turn].pop("_ref", None)
                self._record(turn)
        await self.push(event, upstream)

    async def process(self, event) -> None:
        if isinstance(event, Understood):
            await self._heard(event)
        elif isinstance(event, NoInput):
            if not self.dialogue.ended:
                reply = self.dialogue.hear("", now=self._now(event.at_s))
                turn = len(self.dialogue.log)
                self._pending[turn] = {"_ref": event.wall, "reply_chosen": _ms(time.perf_counter(), event.wall),
                                       "no_input_at_s": round(event.at_s, 3)}
                await self._say(reply, turn)
        else:
            await self.push(event)

    async def _heard(self, event: Understood) -> None:
        transcript = event.transcript
        utterance = transcript.utterance
        if self.dialogue.ended or not transcript.text or self._too_short(transcript.text, utterance.over_bot):
            if utterance.over_bot:
                await self.push(ResumePlayback())  # noise over the bot: the line goes on
            return
        mood = event.mood.label if event.mood is not None else None
        reply = self.dialogue.hear(transcript.text, now=self._now(utterance.end_s), overlap=utterance.over_bot,
                                   intents=event.intents, mood=mood)
        chosen = time.perf_counter()
        turn = len(self.dialogue.log)
        self._pending[turn] = {
            "_ref": utterance.wall, "endpoint_silence": utterance.silence_ms,
            "asr_final": _ms(transcript.wall, utterance.wall), "nlu_done": _ms(event.wall, utterance.wall),
            "reply_chosen": _ms(chosen, utterance.wall), "speech_start_s": round(utterance.start_s, 3),
            "speech_end_s": round(utterance.end_s, 3)}
        self._pending[turn]["_speech"] = {
            "heard": transcript.text, "raw": transcript.raw_text, "asr": self.asr_info,
            "cut": utterance.reason, "prosody": event.prosody.to_dict() if event.prosody else None,
            "mood": event.mood.to_dict() if event.mood else None}
        if reply.ignored:
            await self.push(ResumePlayback())
            self._pending[turn].pop("_ref", None)
            self._record(turn)
            return
        if reply.barge_in:
            await self.push(Interruption(turn))
        elif utterance.over_bot:
            await self.push(ResumePlayback())  # a line that could not be cut: it finishes, the reply follows
        await self._say(reply, turn)

    async def _say(self, reply: Reply, turn: int) -> None:
        if reply.text:
            await self.push(BotReply(turn, reply.text, list(reply.parts), reply.node,
                                     reply.interruptible and not reply.ended, reply.ended))
        else:
            await self.push(ReplyDone(turn, reply.ended))
            if turn in self._pending:
                self._pending[turn].pop("_ref", None)
                self._record(turn)
        node = self.dialogue.script.nodes.get(reply.node)
        await self.push(ListenFor(silence_for(node, self.config), reply.node), upstream=True)

    def _too_short(self, text: str, over_bot: bool) -> bool:
        """Speech over the bot too short to cut it (one misheard syllable), unless it is a backchannel
        the dialogue logs as one."""
        if not over_bot or policy.is_backchannel(self.dialogue.script, text):
            return False
        return sum(ch.isalnum() for ch in text) < self.config.min_barge_in_chars

    def _record(self, turn: int) -> None:
        marks = self._pending.pop(turn, None)
        if marks is None or turn < 1 or turn > len(self.dialogue.log):
            return
        speech = marks.pop("_speech", {})
        marks.pop("_ref", None)
        log = self.dialogue.log[turn - 1]
        log = dataclasses.replace(log, timings_ms={**log.timings_ms, **marks}, speech=speech)
        self.dialogue.log[turn - 1] = log
        if self.on_turn is not None:
            try:
                self.on_turn(log)
            except Exception:
                _LOGGER.exception("call %s: recording turn %d failed", self.call_id, turn)

    def _now(self, at_s: float) -> datetime:
        return self.start_at + timedelta(seconds=at_s)
