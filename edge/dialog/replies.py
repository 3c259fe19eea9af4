"""Turn the policy's parts into the words the bot says.

Script lines get their {variables} (lead fields, slot values said the way
the script's `spoken` section says them). Questions get the best knowledge
answer for their tags, cut at a sentence end to stay short on the phone, or
phrased by a local LLM when one is configured (with a hard timeout and the
cut answer as fallback).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol, Sequence

from edge.dialog.script import VARIABLE_RE, Script
from edge.dialog.state import TIME_SLOTS, DialogueState

_LOGGER = logging.getLogger(__name__)
_SENTENCE_END: Final = re.compile(r"(?<=[。！？；!?;])")
_CLAUSE_END: Final = re.compile(r"(?<=[，,、：:])")
_CLAUSE_SPLIT: Final = re.compile(r"[\s，,。！？!?；;、]+")


class Hit(Protocol):
    id: str
    question: str
    answer: str
    score: float
    vector_score: float


class Knowledge(Protocol):
    """What replies need from a knowledge base (edge.kb.KnowledgeBase is one)."""

    def search(self, query: str, tags: Sequence[str] | None = None, k: int = 3) -> list[Hit]: ...


class Phraser(Protocol):
    """Optional: phrases an answer from passages (edge.dialog.llm.LlmPhraser)."""

    def phrase(self, question: str, passages: list[str]) -> str | None: ...


@dataclass(frozen=True)
class Spoken:
    """One rendered part: what is said and where it came from."""

    text: str
    kind: str
    """line | answer | repeat."""
    source: str = ""
    """Knowledge entry id for an answer; the intent for a handler line."""


def variables(script: Script, state: DialogueState, lead: dict[str, str], now: datetime) -> dict[str, str]:
    """Values of every variable: script defaults < lead fields < slots."""
    values = dict(script.variables)
    values.update({k: v for k, v in lead.items() if v})
    for name, slot in state.slots.items():
        if slot.status == "denied":
            continue
        if name in TIME_SLOTS:
            values[name] = say_time(datetime.fromisoformat(slot.value), now, script.spoken)
        elif name == "channel":
            values[name] = script.spoken["channels"].get(slot.value, str(slot.value))
        else:
            values[name] = str(slot.value)
    return values


def render(template: str, values: dict[str, str]) -> str:
    return VARIABLE_RE.sub(lambda m: values.get(m.group(1), ""), template)


def say_time(when: datetime, now: datetime, spoken: dict[str, Any]) -> str:
    """明天下午3点 / 3月12日周三上午10点半, in the words of the script's `spoken` section."""
    when = when.astimezone(now.tzinfo)
    days = (when.date() - now.date()).days
    if 0 <= days <= 2:
        day = spoken["days"][days]
    else:
        day = spoken["date"].format(month=when.month, day=when.day, weekday=spoken["weekdays"][when.weekday()])
    part = ""
    for start_hour, word in spoken["parts"].items():
        if when.hour >= start_hour:
            part = word
    hour = when.hour if when.hour <= 12 else when.hour - 12
    if when.minute == 0:
        clock = spoken["clock"].format(hour=hour)
    elif when.minute == 30:
        clock = spoken["clock_half"].format(hour=hour)
    else:
        clock = spoken["clock_minutes"].format(hour=hour, minute=f"{when.minute:02d}")
    return f"{day}{part}{clock}"


def shorten(text: str, max_chars: int) -> str:
    """Whole sentences up to `max_chars`; a first sentence too long is cut at a clause end."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    out = ""
    for sentence in _SENTENCE_END.split(text):
        if len(out) + len(sentence) > max_chars:
            break
        out += sentence
    if out:
        return out
    for clause in _CLAUSE_END.split(text):
        if len(out) + len(clause) > max_chars:
            break
        out += clause
    return (out.rstrip("，,、：:") + "。") if out else text[:max_chars]


def answer(question: str, tags: Sequence[str], knowledge: Knowledge | None, script: Script, max_chars: int,
           phraser: Phraser | None = None) -> Spoken:
    """The spoken answer to a question: the best entry with one of `tags`, else the best of all."""
    if knowledge is None or not question.strip():
        return Spoken(script.spoken["no_answer"], "answer")
    hits = _best_hits(question, tags, knowledge)
    if not hits:
        return Spoken(script.spoken["no_answer"], "answer")
    best = hits[0]
    text = shorten(best.answer, max_chars)
    if phraser is not None:
        phrased = phraser.phrase(question, [h.answer for h in hits])
        if phrased:
            text = shorten(phrased, max_chars)
        else:
            _LOGGER.debug("llm gave no answer; using the template for entry %s", best.id)
    return Spoken(text, "answer", best.id)


def _best_hits(question: str, tags: Sequence[str], knowledge: Knowledge) -> list[Hit]:
    """Hits for the clause of a compound turn that fits `tags` best.

    "多少钱 能对接钉钉吗" asks two things; searching the whole turn for a price
    answer lets the 钉钉 words pull in the wrong entry, so each clause is
    searched too and the hit closest to its own clause wins.
    """
    clauses = [c for c in _CLAUSE_SPLIT.split(question) if c.strip()]
    candidates = [question] + (clauses if len(clauses) > 1 else [])
    best: list[Hit] = []
    for text in candidates:
        hits = knowledge.search(text, tags=list(tags) or None, k=3)
        if hits and (not best or hits[0].vector_score > best[0].vector_score):
            best = hits
    return best or knowledge.search(question, k=3)


def join(parts: list[Spoken]) -> str:
    """One reply from its parts; no part is said twice in a row."""
    out: list[str] = []
    for part in parts:
        if part.text and (not out or out[-1] != part.text):
            out.append(part.text)
    return "".join(out)
