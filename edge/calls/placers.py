"""Call placers: how a campaign's dial becomes a call.

- `TextCallPlacer`: the simulator of today. Each lead gets a simulated
  callee (edge/calls/callers.py); the line may ring out or be busy, an
  answering machine or a carrier announcement is recognised from the first
  thing heard (edge/calls/voicemail.py), and a person talks with the script
  engine turn by turn, each turn recorded as it happens.
- `AmiCallPlacer`: the PBX. Originates through Asterisk AMI; an answered call
  enters the dialplan, whose AudioSocket() hands it to the voice loop, keyed
  by CALL_UUID = this call's id.

Both implement `runner.CallPlacer`; the voice simulator will be a third.

Example:
    >>> placer = TextCallPlacer(records, campaign, make_dialogue, CallerBook.load(), live=LiveCalls())
    >>> placed = await placer.place(lead, now)
    >>> placed.disposition, placed.report["grade"]
    ('answered', 'A')
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from edge.calls.callers import CallerBook, SimCaller
from edge.calls.campaign import Campaign, CampaignSettings
from edge.calls.handoff import HandoffWatch, Verdict, verdict, withdraw
from edge.calls.leads import Lead
from edge.calls.live import LiveCalls, mood_from_intents
from edge.calls.outcome import summarize
from edge.calls.phone import national
from edge.calls.records import Records
from edge.calls.report import post_call
from edge.calls.runner import Placed
from edge.calls.textcall import SECONDS_PER_TURN
from edge.calls.voicemail import Greeting, detect
from edge.config import Config
from edge.dialog.engine import Classifier, Dialogue
from edge.dialog.replies import Knowledge
from edge.telephony.ami import AmiClient, OriginateOutcome, OriginateRequest
from edge.telephony.privacy import mask_phone

_LOGGER = logging.getLogger(__name__)

RING_S: Final = {"no_answer": None, "busy": 4.0, "failed": 1.0}
"""Simulated seconds before each kind of unanswered call gives up (None: the campaign's ring timeout)."""
_AMI_DISPOSITION: Final = {
    OriginateOutcome.ANSWERED: "answered", OriginateOutcome.BUSY: "busy", OriginateOutcome.NO_ANSWER: "no_answer",
    OriginateOutcome.HANGUP: "no_answer", OriginateOutcome.CONGESTION: "failed", OriginateOutcome.FAILED: "failed",
    OriginateOutcome.REJECTED: "failed", OriginateOutcome.TIMEOUT: "failed", OriginateOutcome.DISCONNECTED: "failed"}

TALK_TIMEOUT_S: Final = 660.0
"""AMI: the longest a taken call may go without an outcome (the daemon's default call_budget_s, 600 s, and a
minute): the daemon died or hangs; the call is then booked from its recorded turns."""
OUTCOME_LAG_S: Final = 5.0
"""The daemon's handler has returned; its outcome row may be this far behind (another writer thread)."""

DialogueFactory = Callable[[dict[str, str]], Dialogue]
"""Lead variables -> a fresh Dialogue for one call."""


def build_dialogues(cfg: Config, settings: CampaignSettings, classifier: Classifier, knowledge: Knowledge | None
                    ) -> DialogueFactory:
    """Lead variables -> Dialogue for one campaign: script, lexicon and LLM phraser set up once."""
    from edge.dialog.llm import LlmPhraser
    from edge.dialog.script import Script
    from edge.nlu import lexicon

    script = Script.load(settings.script or cfg.dialog.script, list(classifier.labels))
    words = lexicon.load()
    phraser = LlmPhraser(cfg.llm.url, cfg.llm.model, cfg.llm.timeout_ms) if cfg.llm.url else None

    def make(lead: dict[str, str]) -> Dialogue:
        return Dialogue(script, classifier, knowledge=knowledge, lead=lead, timezone=settings.timezone,
                        lexicon=words, phraser=phraser, max_answer_chars=cfg.dialog.max_answer_chars)

    return make


def lead_label(lead: Lead) -> str:
    return f"{lead.name} {mask_phone(lead.e164)}".strip()


class TextCallPlacer:
    """Places calls against simulated callees through the text dialogue engine."""

    name = "text-simulator"

    def __init__(self, records: Records, campaign: Campaign, make_dialogue: DialogueFactory, callers: CallerBook,
                 *, live: LiveCalls | None = None, pace_s: float = 0.0):
        """Args:
            pace_s: real seconds to wait before each callee turn (0: as fast as possible; the dashboard
                uses a fraction of a second so a manager can watch calls happen).
        """
        self.records = records
        self.campaign = campaign
        self.make_dialogue = make_dialogue
        self.callers = callers
        self.live = live or LiveCalls()
        self.pace_s = pace_s

    async def place(self, lead: Lead, now: datetime) -> Placed:
        settings = self.campaign.settings
        caller = self.callers.for_lead(lead.e164, lead.vars.get("caller"))
        dialogue = self.make_dialogue(lead.script_vars())
        call_id = self.records.start_call(dialogue.lead, dialogue.script.name, dialogue.script.version,
                                          now.isoformat(timespec="seconds"), lead_id=lead.id,
                                          campaign_id=self.campaign.id, attempt=lead.attempts, placer=self.name)
        self.live.begin(call_id, campaign=self.campaign.name, lead=lead_label(lead), state="ringing")
        detail = {"caller": caller.name}
        if caller.answer != "answered":
            await self._pause()
            ring = RING_S[caller.answer] or settings.ring_timeout_s
            self.live.end(call_id, caller.answer)
            return Placed(call_id, caller.answer, now, now + timedelta(seconds=ring), detail=detail)
        verdict = detect(Greeting(caller.greeting, caller.speech_ms, caller.beep))
        if not verdict.is_human:
            return await self._machine(call_id, caller, verdict, now, detail)
        return await self._talk(call_id, lead, caller, dialogue, now, detail)

    async def _machine(self, call_id, caller: SimCaller, verdict, now: datetime, detail: dict) -> Placed:
        settings = self.campaign.settings
        detail.update(greeting=caller.greeting, verdict={"kind": verdict.kind, "confidence": verdict.confidence,
                                                         "reasons": verdict.reasons})
        self.live.update(call_id, state="talking", caller=caller.greeting)
        await self._pause()
        seconds = (caller.speech_ms or 3000) / 1000 + 1
        if verdict.kind == "voicemail" and settings.voicemail_action == "message":
            detail["left_message"] = settings.voicemail_text()
            seconds += len(detail["left_message"]) / 4  # about four characters a second
            self.live.update(call_id, bot=detail["left_message"])
        self.live.end(call_id, verdict.kind)
        return Placed(call_id, verdict.kind, now, now + timedelta(seconds=round(seconds, 1)), detail=detail)

    async def _talk(self, call_id: str, lead: Lead, caller: SimCaller, dialogue: Dialogue, now: datetime,
                    detail: dict) -> Placed:
        settings = self.campaign.settings
        opening = dialogue.start(now)
        disclosure = settings.disclosure_line(opening.text)
        first_line = disclosure + opening.text
        self.live.update(call_id, state="talking", node=dialogue.state.node, mood="neutral", bot=first_line)
        clock = now
        for turn in caller.turns:
            if dialogue.ended:
                break
            await self._pause()
            clock += timedelta(seconds=SECONDS_PER_TURN)
            reply = dialogue.hear(turn.text, now=clock, overlap=turn.overlap)
            logged = dialogue.log[-1]
            self.records.add_turn(call_id, logged)
            self.live.update(call_id, node=reply.node, mood=mood_from_intents(logged.intents),
                             turns=len(dialogue.log), caller=logged.caller, bot=reply.text or "")
        ended = clock + timedelta(seconds=SECONDS_PER_TURN)
        outcome = summarize(dialogue.script, dialogue.state, ended, dialogue.lexicon, dialogue.lead)
        report = post_call(call_id, dialogue, outcome, first_line, ended)
        report.update(campaign=self.campaign.name, disclosure=disclosure, attempt=lead.attempts,
                      unused_turns=max(0, len(caller.turns) - len(dialogue.log)))
        self.records.finish_call(call_id, report)
        self.live.end(call_id, outcome.outcome)
        return Placed(call_id, "answered", now, ended, report, detail=detail)

    async def _pause(self) -> None:
        await asyncio.sleep(self.pace_s)  # also yields, so concurrent calls interleave


class AmiCallPlacer:
    """Places calls through Asterisk AMI; the answered call continues in the daemon's voice loop.

    A dial holds its place among the campaign's `max_concurrent` calls until the daemon's records say how
    it ended (edge/calls/handoff.py): the PBX's "answered" alone books nothing, since the daemon may refuse
    the call, never take it, or die before the lead says a word.

    Args:
        talk_timeout_s: the longest the dialler waits for a taken call's outcome (the daemon's
            call_budget_s and a margin: past it the daemon is gone, and the call is booked from its turns).
    """

    name = "ami"

    def __init__(self, records: Records, campaign: Campaign, client: AmiClient, *, script: str = "",
                 live: LiveCalls | None = None, talk_timeout_s: float = TALK_TIMEOUT_S):
        self.records = records
        self.campaign = campaign
        self.client = client
        self.script = script
        self.live = live or LiveCalls()
        self.talk_timeout_s = talk_timeout_s
        self.watch = HandoffWatch(records.db)

    def request(self, lead: Lead) -> OriginateRequest:
        settings = self.campaign.settings
        return OriginateRequest(channel=settings.channel.format(number=national(lead.e164)),
                                caller_id=settings.caller_id, timeout_s=settings.ring_timeout_s,
                                variables={"LEAD_ID": str(lead.id), "CAMPAIGN_ID": str(self.campaign.id)})

    async def place(self, lead: Lead, now: datetime) -> Placed:
        request = self.request(lead)
        call_id = self.records.start_call(lead.script_vars(), self.script, 0, now.isoformat(timespec="seconds"),
                                          lead_id=lead.id, call_id=request.call_uuid, campaign_id=self.campaign.id,
                                          attempt=lead.attempts, placer=self.name)
        self.live.begin(call_id, campaign=self.campaign.name, lead=lead_label(lead), state="ringing")
        started = time.monotonic()
        result = await self.client.originate(request)
        disposition = _AMI_DISPOSITION[result.outcome]
        detail = {"ami_outcome": result.outcome.value, "reason_code": result.reason_code,
                  "uniqueid": result.uniqueid}
        report = None
        if disposition == "answered":
            self.live.update(call_id, state="connected")
            judged = await self.follow(call_id, take_within_s=self.campaign.settings.handoff_timeout_s,
                                       at=now + timedelta(seconds=time.monotonic() - started))
            disposition, report, detail["handoff"] = judged.disposition, judged.report, judged.why
            if judged.why == "not_taken":
                _LOGGER.warning("call %s (lead %s): answered, but the bot did not take it within %g s; booked "
                                "for a retry (is `salesbot serve` up, not full, and on the same calls.db?)",
                                call_id, lead.id, self.campaign.settings.handoff_timeout_s,
                                extra={"event": "handoff_failed", "call_id": call_id})
        elapsed = timedelta(seconds=round(time.monotonic() - started, 1))
        self.live.end(call_id, (report or {}).get("outcome") or disposition)
        return Placed(call_id, disposition, now, now + elapsed, report, message=result.message, detail=detail)

    async def follow(self, call_id: str, *, take_within_s: float, at: datetime) -> Verdict:
        """Wait for the daemon's side of an answered (or possibly answered) call and judge it: at most
        `take_within_s` for the call loop to take it, else it is written off (`at`: the end it gets); once
        taken, until its outcome is recorded (at most talk_timeout_s)."""
        state = await self.watch.wait(call_id, lambda h: h.taken or h.finished or h.handler_ended,
                                      take_within_s)
        if not (state.taken or state.finished) and withdraw(self.records.db, call_id, at.isoformat(
                timespec="seconds")):
            return verdict(self.watch.read(call_id))
        self.live.update(call_id, state="talking")
        state = await self.watch.wait(call_id, lambda h: h.finished or h.handler_ended, self.talk_timeout_s)
        if not state.finished and state.handler_ended:  # the outcome is written on another thread: a moment
            state = await self.watch.wait(call_id, lambda h: h.finished, OUTCOME_LAG_S)
        return verdict(state)
