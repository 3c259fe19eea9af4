"""What a call achieved: outcome, lead grade (A-E) by the script's rules,
do-not-call flag and follow-up tasks with due dates.

Example:
    >>> result = summarize(script, dialogue.state, now)
    >>> result.grade, [t.kind for t in result.tasks]
    ('C', ['callback'])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from edge.dialog.script import GradeRule, Script
from edge.dialog.state import DialogueState
from edge.dialog.validate import BUILTIN_OUTCOMES
from edge.nlu import lexicon as _lexicon

INCOMPLETE: Final = BUILTIN_OUTCOMES[0]
WORKDAY_HOUR: Final = 10
"""A task with no time given is due at 10:00 on the next working day."""
_CONTACT_SLOTS: Final = {"wechat": ("wechat", "phone"), "email": ("email",), "sms": ("phone",), "phone": ("phone",)}


@dataclass(frozen=True)
class Task:
    """A follow-up for a person or the campaign."""

    kind: str
    """callback | meeting | send_info | handoff (from the script)."""
    due: str
    """ISO-8601 with offset."""
    channel: str
    """phone | wechat | sms | email ..."""
    contact: str | None = None
    """Where to reach the lead on that channel, if the caller said (WeChat ID, email)."""


@dataclass(frozen=True)
class Outcome:
    outcome: str
    """The end node's outcome, or "incomplete" if the call stopped before one."""
    grade: str
    dnc: bool
    transferred: bool
    decision_maker: bool | None
    """True/False if the caller's role is known, else None."""
    tasks: list[Task] = field(default_factory=list)
    objections: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(script: Script, state: DialogueState, now: datetime,
              lexicon: _lexicon.Lexicon | None = None, lead: dict[str, str] | None = None) -> Outcome:
    """Outcome, grade and tasks of a call in `state` (ended or not) at time `now`."""
    lexicon = lexicon or _lexicon.load()
    outcome = state.outcome if state.ended and state.outcome else INCOMPLETE
    role = state.value("role")
    decision_maker = lexicon.roles[role].decides if role in lexicon.roles else None
    intents = {label for turn in state.intents for label in turn}
    grade = next((rule.grade for rule in script.grading
                  if _matches(rule, outcome, decision_maker, intents, state)), script.default_grade)
    tasks = []
    node = script.nodes.get(state.node)
    if state.ended and node is not None and node.task is not None:
        tasks.append(_task(node.task, state, now, lead or {}))
    return Outcome(outcome, grade, state.dnc, state.transferred, decision_maker, tasks, list(state.objections))


def _matches(rule: GradeRule, outcome: str, decision_maker: bool | None, intents: set[str],
             state: DialogueState) -> bool:
    if rule.outcome is not None and outcome not in rule.outcome:
        return False
    if rule.decision_maker is not None and bool(decision_maker) != rule.decision_maker:
        return False
    if rule.intents is not None and not intents & set(rule.intents):
        return False
    if rule.slots is not None and any(state.value(slot) is None for slot in rule.slots):
        return False
    return True


def _task(spec, state: DialogueState, now: datetime, lead: dict[str, str]) -> Task:
    if spec.due == "now":
        due = now.replace(microsecond=0)
    elif spec.due == "next_workday" or state.value(spec.due) is None:
        due = next_workday(now)
    else:
        due = datetime.fromisoformat(state.value(spec.due))
    channel = (state.value(spec.channel_slot) if spec.channel_slot else None) or spec.channel
    contact = None
    for slot in _CONTACT_SLOTS.get(channel, ()):
        value = state.value(slot)
        if value == "same_as_phone":
            value = state.value("phone") or lead.get("phone")
        if value:
            contact = str(value)
            break
    if contact is None and channel in ("phone", "sms", "wechat"):
        contact = lead.get("phone") or None
    return Task(spec.kind, due.isoformat(timespec="seconds"), channel, contact)


def next_workday(now: datetime) -> datetime:
    """10:00 on the next Monday-Friday after `now`'s day."""
    day = now + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day.replace(hour=WORKDAY_HOUR, minute=0, second=0, microsecond=0)
