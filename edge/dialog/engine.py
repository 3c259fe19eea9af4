"""One call's dialogue, text in and text out: what the voice loop will wrap.

Example:
    >>> from edge.nlu import IntentModel
    >>> dialogue = Dialogue(Script.load("edge/data/script.yaml"), IntentModel.load())
    >>> dialogue.start().text[:6]
    '您好，我是智'
    >>> dialogue.hear("你们这个多少钱").parts[0].kind
    'answer'

The classifier is anything with `labels` and `predict(texts) -> [IntentResult]`
(edge.nlu.IntentModel, or a test double). For many calls at once, classify
the turns in one batch and pass each result as `hear(text, intents=...)`.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Final, Protocol, Sequence
from zoneinfo import ZoneInfo

from edge.dialog import policy, replies
from edge.dialog.script import Script
from edge.dialog.state import DialogueState
from edge.nlu import lexicon as _lexicon
from edge.nlu.intent import IntentResult
from edge.nlu.slots import SlotMention, extract

MAX_TURN_CHARS: Final = 500
"""A caller turn is cut to this (an ASR turn is a few dozen characters; 10k is noise)."""
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")



def only_values(text: str, mentions, lexicon: _lexicon.Lexicon) -> bool:
    """True when the words are slot values and stopwords alone (明天下午四点吧, 五十个人左右)."""
    rest = lexicon.normalize(text)
    for mention in mentions:
        rest = rest.replace(mention.text, " ")
    rest = lexicon.content(rest)
    return not re.sub(r"[\s\W_]|左右|个人|人|个", "", rest)

class Classifier(Protocol):
    labels: list[str]

    def predict(self, texts: Sequence[str]) -> list[IntentResult]: ...


@dataclass(frozen=True)
class Reply:
    """What the bot says after a caller turn (or to open the call)."""

    text: str
    node: str
    interruptible: bool
    ended: bool
    parts: list[replies.Spoken] = field(default_factory=list)
    ignored: bool = False
    """The caller's words were a backchannel over the bot: keep speaking, say nothing new."""
    barge_in: bool = False
    """The caller cut the bot's line: stop it and say this instead."""


@dataclass(frozen=True)
class TurnLog:
    """One caller turn and the reply, as records and the post-call JSON keep it."""

    index: int
    at: str
    caller: str
    intents: list[str]
    scores: dict[str, float]
    mentions: list[dict[str, Any]]
    changed: list[str]
    goal: dict[str, Any]
    node: str
    bot: str
    answers: list[str]
    """Knowledge entry ids used in the reply."""
    overlap: bool
    ignored: bool
    barge_in: bool
    timings_ms: dict[str, float]
    mood: str = "neutral"
    """How the caller sounded this turn (voice calls; text calls say neutral)."""
    speech: dict[str, Any] = field(default_factory=dict)
    """Voice calls: what the recognizer heard (raw text, model), prosody, the endpointing used."""


def clean(text: str) -> str:
    """Control and bidi characters removed, whitespace folded, cut to MAX_TURN_CHARS."""
    return " ".join(_CONTROL.sub("", text or "").split())[:MAX_TURN_CHARS]


class Dialogue:
    """The dialogue of one call: script policy, state, slots and replies."""

    def __init__(self, script: Script, classifier: Classifier, *, knowledge: replies.Knowledge | None = None,
                 lead: dict[str, str] | None = None, timezone: str = "Asia/Shanghai",
                 clock: Callable[[], datetime] | None = None, lexicon: _lexicon.Lexicon | None = None,
                 phraser: replies.Phraser | None = None, max_answer_chars: int = 80):
        self.script = script
        self.classifier = classifier
        self.knowledge = knowledge
        self.lead = {k: v for k, v in (lead or {}).items() if v}
        self.tz = ZoneInfo(timezone)
        self.clock = clock or (lambda: datetime.now(self.tz))
        self.lexicon = lexicon or _lexicon.load()
        self.phraser = phraser
        self.max_answer_chars = max_answer_chars
        self.state: DialogueState | None = None
        self.log: list[TurnLog] = []
        self.started_at: datetime | None = None

    def start(self, now: datetime | None = None) -> Reply:
        """Open the call: the start node's line."""
        now = self._now(now)
        self.started_at = now
        self.state, decision = policy.start(self.script)
        return self._reply(decision, now)

    def hear(self, text: str, now: datetime | None = None, overlap: bool = False,
             intents: IntentResult | None = None, mood: str | None = None) -> Reply:
        """One caller turn (empty text: silence) -> the bot's reply.

        Args:
            text: what the caller said.
            now: when (aware datetime); the clock by default.
            overlap: said while the bot was speaking (backchannel / barge-in rules apply).
            intents: the classifier's result if already computed (batched across calls).
            mood: how the caller sounded (edge.nlu.emotion), for the script's mood rules.
        """
        if self.state is None:
            self.start(now)
        now = self._now(now)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        text = clean(text)
        if intents is None and text:
            intents = self.classifier.predict([text])[0]
        labels = _sure_enough(intents, self.script.settings.min_scores) if intents is not None and text \
            else (policy.OTHER,)
        timings["nlu"] = _ms(started)
        mark = time.perf_counter()
        mentions = tuple(extract(text, now, self.lexicon)) if text else ()
        timings["slots"] = _ms(mark)
        mark = time.perf_counter()
        turn = policy.CallerTurn(text, labels, mentions, overlap, mood or "neutral",
                                 bare=bool(mentions) and only_values(text, mentions, self.lexicon),
                                 refuses=self.lexicon.refuses(text))
        self.state, decision = policy.step(self.script, self.state, turn, now)
        timings["policy"] = _ms(mark)
        mark = time.perf_counter()
        reply = self._reply(decision, now)
        timings["reply"] = _ms(mark)
        timings["total"] = _ms(started)
        if not decision.ignored:
            self.state.last_reply = reply.text
        self.log.append(TurnLog(
            index=len(self.log) + 1, at=now.isoformat(timespec="seconds"), caller=text, intents=list(labels),
            scores={k: round(v, 4) for k, v in (intents.scores.items() if intents is not None and text else ())
                    if k in labels},
            mentions=[_mention_dict(m) for m in mentions], changed=decision.changed, goal=self.state.goal(),
            node=self.state.node, bot=reply.text, answers=[p.source for p in reply.parts if p.kind == "answer"],
            overlap=overlap, ignored=decision.ignored, barge_in=decision.barge_in,
            timings_ms={k: round(v, 3) for k, v in timings.items()}, mood=mood or "neutral"))
        return reply

    @property
    def ended(self) -> bool:
        return self.state is not None and self.state.ended

    def _now(self, now: datetime | None) -> datetime:
        now = now or self.clock()
        if now.tzinfo is None:
            now = now.replace(tzinfo=self.tz)
        return now.astimezone(self.tz)

    def _reply(self, decision: policy.Decision, now: datetime) -> Reply:
        state = self.state
        node = self.script.nodes[state.node]
        if decision.ignored:
            return Reply("", node.name, node.interruptible, state.ended, ignored=True)
        values = replies.variables(self.script, state, self.lead, now)
        spoken: list[replies.Spoken] = []
        for part in decision.parts:
            if part.kind == "line":
                spoken.append(replies.Spoken(replies.render(part.text, values), "line", part.intent))
            elif part.kind == "answer":
                limit = self.max_answer_chars // 2 if state.brief else self.max_answer_chars
                spoken.append(replies.answer(part.text, part.tags, self.knowledge, self.script, limit,
                                             self.phraser))
            else:
                spoken.append(replies.Spoken(state.last_reply, "repeat"))
        return Reply(replies.join(spoken), node.name, node.interruptible, state.ended, spoken,
                     barge_in=decision.barge_in)


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0


def _mention_dict(mention: SlotMention) -> dict[str, Any]:
    value = mention.value
    if mention.kind == "time":
        value = {"text": value.text, "day": value.day.isoformat() if value.day else None, "hour": value.hour,
                 "minute": value.minute, "part": value.part, "approx": value.approx}
    return {"kind": mention.kind, "value": value, "text": mention.text, "confidence": mention.confidence,
            "negated": mention.negated}


def _sure_enough(intents: IntentResult, min_scores: dict[str, float]) -> tuple[str, ...]:
    """The labels whose score clears the script's floor for them (settings.min_scores); "other" if none does."""
    labels = tuple(label for label in intents.labels if intents.scores.get(label, 1.0) >= min_scores.get(label, 0.0))
    return labels or (policy.OTHER,)
