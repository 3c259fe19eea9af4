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
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from edge.calls.callers import CallerBook, SimCaller
from edge.calls.campaign import Campaign, CampaignSettings
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

RING_S: Final = {"no_answer": None, "busy": 4.0, "failed": 1.0}
"""Simulated seconds before each kind of unanswered call gives up (None: the campaign's ring timeout)."""
_AMI_DISPOSITION: Final = {
    OriginateOutcome.ANSWERED: "answered", OriginateOutcome.BUSY: "busy", OriginateOutcome.NO_ANSWER: "no_answer",
    OriginateOutcome.HANGUP: "no_answer", OriginateOutcome.CONGESTION: "failed", OriginateOutcome.FAILED: "failed",
    OriginateOutcome.REJECTED: "failed", OriginateOutcome.TIMEOUT: "failed", OriginateOutcome.DISCONNECTED: "failed"}

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
    """Places calls through Asterisk AMI; the answered call continues in the voice loop."""

    name = "ami"

    def __init__(self, records: Records, campaign: Campaign, client: AmiClient, *, script: str = "",
                 live: LiveCalls | None = None):
        self.records = records
        self.campaign = campaign
        self.client = client
        self.script = script
        self.live = live or LiveCalls()

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
        elapsed = timedelta(seconds=round(time.monotonic() - started, 1))
        disposition = _AMI_DISPOSITION[result.outcome]
        detail = {"ami_outcome": result.outcome.value, "reason_code": result.reason_code,
                  "uniqueid": result.uniqueid}
        if disposition == "answered":
            self.live.update(call_id, state="connected")
        else:
            self.live.end(call_id, disposition)
        return Placed(call_id, disposition, now, now + elapsed, message=result.message, detail=detail)
