"""Dialogue state of one call, and the rules that update it from a turn.

The state holds slots (value, confidence, heard/confirmed/denied), the
intents of every caller turn, the objections raised and the corrections
made. `track()` reads one turn's intents and slot mentions in the context of
the node the bot spoke from, and updates the state; it does not choose what
the bot says next (that is the policy).

Rules (tested in tests/test_state.py, measured by benchmarks/dialogue.py):
- a time fills meeting_time when the caller agrees to meet, callback_time
  when busy; otherwise the slot the node asks for or reads back; otherwise
  the time slot filled last (a correction);
- a time that leaves its day or hour open takes them from the value it
  corrects (明天下午三点, then 不是三点 是四点 -> 明天 16:00);
- 不是X / X不行 denies X if X is the current value; a later value in the same
  turn overwrites it; each overwrite is logged as a correction;
- a vendor name fills `supplier` only when said as used (我们在用钉钉), with
  already_have_supplier, or when the node asks; likewise budgets need a cue
  (预算, 最多) or budget_info, and channels a send_info or the node's question;
- yes at a node that reads a slot back confirms it; no denies it (a denied
  slot leaves the goal).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final, Iterable

from edge.nlu.slots import SlotMention
from edge.nlu.timeexpr import resolve

TIME_SLOTS: Final = ("callback_time", "meeting_time")
STATE_SLOTS: Final = (*TIME_SLOTS, "phone", "wechat", "email", "company_size", "budget", "budget_per_seat",
                      "supplier", "channel", "role")
OBJECTIONS: Final = {"not_interested": "not_interested", "already_have_supplier": "has_supplier",
                     "busy_call_later": "busy", "ask_discount": "price", "complaint_do_not_call": "do_not_call"}
"""Intent -> objection recorded in the state."""
_DIRECT: Final = ("phone", "wechat", "email", "company_size", "role")
_CORRECTION_WORDS: Final = ("不是", "改成", "改到", "换成", "换到", "改为", "不对", "应该是", "说错")


@dataclass
class SlotValue:
    value: Any
    """str, int, or an ISO-8601 datetime with offset for time slots."""
    confidence: float
    status: str = "heard"
    """heard | confirmed | denied."""
    turn: int = 0
    """Caller turn (1-based) that set it."""
    text: str = ""
    """The words it came from."""


@dataclass
class DialogueState:
    node: str
    slots: dict[str, SlotValue] = field(default_factory=dict)
    intents: list[list[str]] = field(default_factory=list)
    """Labels of every caller turn, in order."""
    objections: list[str] = field(default_factory=list)
    corrections: list[dict[str, Any]] = field(default_factory=list)
    turns: int = 0
    """Caller turns so far (backchannels during bot speech do not count)."""
    no_match: int = 0
    """No-matches and silences in a row in the current node."""
    visits: dict[str, int] = field(default_factory=dict)
    last_reply: str = ""
    moods: list[str] = field(default_factory=list)
    """The caller's mood at every caller turn (positive, neutral, impatient, angry)."""
    brief: bool = False
    """The caller sounded impatient: nodes say their `brief` line from now on."""
    impatient_handled: bool = False
    """The script's `on_impatient` node was entered once already."""
    dnc: bool = False
    transferred: bool = False
    ended: bool = False
    outcome: str | None = None

    def goal(self) -> dict[str, Any]:
        """Slot -> value for every slot not denied: what joint goal accuracy compares."""
        return {name: slot.value for name, slot in self.slots.items() if slot.status != "denied"}

    def value(self, name: str) -> Any:
        slot = self.slots.get(name)
        return slot.value if slot is not None and slot.status != "denied" else None

    def copy(self) -> "DialogueState":
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def track(state: DialogueState, labels: Iterable[str], mentions: list[SlotMention], now: datetime,
          asks: str | None = None, confirms: str | None = None, text: str = "",
          yes_sets: dict[str, Any] | None = None) -> list[str]:
    """Update `state` in place from one caller turn.

    Args:
        state: the call's state (its `turns` already counts this turn).
        labels: the turn's intents, in the order spoken.
        mentions: slot mentions from `edge.nlu.slots.extract`.
        now: the call time the turn was said at.
        asks / confirms: the slot the bot's last node asked for / read back.
        text: the caller's words (to spot correction words).
        yes_sets: slot values a plain yes gives at the bot's last node.

    Returns:
        Names of the slots this turn changed.
    """
    labels = list(labels)
    for label in labels:
        objection = OBJECTIONS.get(label)
        if objection and objection not in state.objections:
            state.objections.append(objection)
    changed: list[str] = []
    correcting = any(word in text for word in _CORRECTION_WORDS)
    for mention in mentions:
        slot = _slot_for(state, mention, labels, asks, confirms, correcting, mentions)
        if slot is None:
            continue
        if slot in TIME_SLOTS:
            current = state.slots.get(slot)  # a value denied this turn still anchors 是四点
            base = datetime.fromisoformat(current.value) if current is not None else None
            value: Any = resolve(mention.value, now, base).isoformat()
        else:
            value = mention.value
        if mention.negated:
            if state.value(slot) == value:
                state.slots[slot].status = "denied"
                changed.append(slot)
            continue
        _set(state, slot, value, mention, changed)
    if confirms and confirms not in changed and state.value(confirms) is not None:
        if "deny_no" in labels and "confirm_yes" not in labels:
            state.slots[confirms].status = "denied"
            changed.append(confirms)
        elif {"confirm_yes", "agree_meeting", "interested"} & set(labels):
            state.slots[confirms].status = "confirmed"
            state.slots[confirms].confidence = 1.0
    if yes_sets and "confirm_yes" in labels and "deny_no" not in labels:
        for slot, value in yes_sets.items():
            if slot not in changed and state.value(slot) is None:
                yes = SlotMention(slot, value, text, 0, 0.9)
                _set(state, slot, value, yes, changed)
    if state.value("budget") == 0 and "no_budget" not in state.objections:
        state.objections.append("no_budget")
    return changed


def _set(state: DialogueState, slot: str, value: Any, mention: SlotMention, changed: list[str]) -> None:
    old = state.slots.get(slot)
    if old is not None and old.value == value and old.status != "denied":
        old.confidence = max(old.confidence, mention.confidence)
        return
    if old is not None:
        state.corrections.append({"slot": slot, "old": old.value, "new": value, "turn": state.turns})
    state.slots[slot] = SlotValue(value, mention.confidence, "heard", state.turns, mention.text)
    changed.append(slot)


def _slot_for(state: DialogueState, mention: SlotMention, labels: list[str], asks: str | None,
              confirms: str | None, correcting: bool, mentions: list[SlotMention]) -> str | None:
    kind = mention.kind
    if kind == "time":
        if "agree_meeting" in labels and "busy_call_later" not in labels:
            return "meeting_time"
        if "busy_call_later" in labels and "agree_meeting" not in labels:
            return "callback_time"
        for slot in (asks, confirms):
            if slot in TIME_SLOTS:
                return slot
        filled = [s for s in TIME_SLOTS if state.value(s) is not None]
        if filled and (correcting or mention.negated):
            return max(filled, key=lambda s: state.slots[s].turn)
        return None
    if kind in _DIRECT:
        return kind
    if kind == "count":
        return "company_size" if asks == "company_size" else None
    if kind in ("budget", "budget_per_seat"):
        return kind if mention.cue or "budget_info" in labels or asks == kind else None
    if kind == "supplier":
        correction = "supplier" in state.slots and (correcting or mention.negated)
        return kind if mention.cue or "already_have_supplier" in labels or asks == kind or correction else None
    if kind == "channel":
        spelled = any(m.kind in ("wechat", "email") for m in mentions)
        return kind if "send_info" in labels or asks == kind or spelled else None
    return None
