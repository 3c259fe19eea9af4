"""The post-call JSON: transcript, turns, state, grade and tasks of one call,
in the shape a CRM imports (stored with the call, printed by `salesbot call --json`)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Final

from edge.calls.outcome import Outcome
from edge.dialog.engine import Dialogue

FORMAT: Final = "edge-salesbot/call@1"


def post_call(call_id: str, dialogue: Dialogue, outcome: Outcome, opening: str, ended_at: datetime) -> dict[str, Any]:
    """Everything about one call as plain JSON-ready data.

    Keys: format, call_id, lead, script, started_at, ended_at, outcome, grade (A-E),
    dnc (bool), transferred, decision_maker, tasks ([{kind, due, channel, contact}]),
    slots ({name: {value, confidence, status}}), objections, corrections,
    transcript ([{speaker, text, at}]), turns (per caller turn: intents, scores,
    slot mentions, state, timings).
    """
    state = dialogue.state
    lead = dialogue.lead
    started = dialogue.started_at.isoformat(timespec="seconds") if dialogue.started_at else None
    transcript = [{"speaker": "bot", "text": opening, "at": started}]
    for turn in dialogue.log:
        entry = {"speaker": "caller", "text": turn.caller, "at": turn.at}
        if turn.overlap:
            entry["overlap"] = True
        transcript.append(entry)
        if not turn.ignored:
            transcript.append({"speaker": "bot", "text": turn.bot, "at": turn.at})
    return {
        "format": FORMAT,
        "call_id": call_id,
        "lead": {"name": lead.get("lead_name", ""), "company": lead.get("company", ""), "phone": lead.get("phone", "")},
        "script": {"name": dialogue.script.name, "version": dialogue.script.version},
        "started_at": started,
        "ended_at": ended_at.isoformat(timespec="seconds"),
        "outcome": outcome.outcome,
        "grade": outcome.grade,
        "dnc": outcome.dnc,
        "transferred": outcome.transferred,
        "decision_maker": outcome.decision_maker,
        "tasks": [asdict(task) for task in outcome.tasks],
        "slots": {name: {"value": slot.value, "confidence": round(slot.confidence, 3), "status": slot.status}
                  for name, slot in state.slots.items()},
        "objections": list(state.objections),
        "corrections": list(state.corrections),
        "transcript": transcript,
        "turns": [asdict(turn) for turn in dialogue.log],
    }
