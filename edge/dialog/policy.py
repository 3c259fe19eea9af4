"""The script policy: (state, caller turn) -> (new state, what to say).

`step` never touches audio, models or the knowledge base: it returns parts
(script lines, knowledge questions, "say that again") for `replies` to
render, so every branch of a script is testable with plain text.

Order of precedence in one turn:
1. a backchannel (嗯, 对) said over the bot is ignored: no turn, no barge-in;
   a caller stating their own role (我是老板) is not a wrong number, whatever the classifier says, and
   asked who decides, a turn naming a role is that answer, not an objection (我话唔到事 要老细话事);
2. do-not-call, then transfer, win over everything else said in the turn;
3. each intent, in the order spoken: the node's own `expect`, else the
   global handler (answers and scripted lines are all said, in order; the
   first transition wins);
4. the slot the node asks for being filled moves on to `next`; a new value
   at a read-back node reads the new value back;
5. anything else that carries an intent or a slot goes to `default`;
6. otherwise a no-match (silence, noise): rephrase, then the fallback node.
Mood (when the script sets it up): an angry caller goes to `on_angry`
(apologise, end) unless do-not-call or transfer won in 2; an impatient one
gets `brief` lines from then on, and once, when the turn moved nothing on,
goes to `on_impatient` (offer a callback).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from edge.dialog.script import Node, Script
from edge.dialog.state import DialogueState, track
from edge.errors import InputError
from edge.nlu.slots import SlotMention

OTHER: Final = "other"
MAX_SKIPS: Final = 10
HEADCOUNT_MISREADINGS: Final = frozenset({"request_human", "wrong_person"})
"""Intents a stated headcount (a company_size mention) rules out in the same turn."""
ROLE_ANSWER_MISREADINGS: Final = frozenset({"not_interested", "deny_no", "already_have_supplier", "wrong_person"})
"""Intents a model reads into a role answer's own words (我话唔到事 要老细话事, 我定不了, 选系统我们技术部定):
asked who decides, a turn that names a role is that answer."""
_PUNCT: Final = re.compile(r"[\s\W_]+")


@dataclass(frozen=True)
class CallerTurn:
    """One thing the caller said (an empty text is silence)."""

    text: str
    labels: tuple[str, ...]
    """Intents, in the order spoken ("other" for none)."""
    mentions: tuple[SlotMention, ...] = ()
    overlap: bool = False
    """Said while the bot was still speaking."""
    mood: str = "neutral"
    """How the caller sounded (edge.nlu.emotion): positive, neutral, impatient or angry."""
    bare: bool = False
    """The words are slot values alone (明天下午四点吧): an answer to the question asked."""
    refuses: bool = False
    """The words tell the bot not to do something (不要, 唔好: edge/data/lexicon.yaml `refusals`)."""


@dataclass(frozen=True)
class Part:
    """One piece of a reply."""

    kind: str
    """"line" (a script template), "answer" (from knowledge) or "repeat" (the last reply again)."""
    text: str = ""
    """Template for a line; the caller's question for an answer."""
    tags: tuple[str, ...] = ()
    """Knowledge tags for an answer."""
    intent: str = ""
    """The intent that asked for it."""


@dataclass
class Decision:
    parts: list[Part] = field(default_factory=list)
    node: str = ""
    """Node the call is in after the turn (its line is the last part when entered)."""
    entered: bool = False
    ignored: bool = False
    """A backchannel over the bot: nothing to say, nothing changed."""
    barge_in: bool = False
    """The caller cut an interruptible line: stop speaking it."""
    changed: list[str] = field(default_factory=list)
    """Slots this turn changed."""


def start(script: Script) -> tuple[DialogueState, Decision]:
    """State and opening line of a new call."""
    state = DialogueState(node=script.start)
    decision = Decision(node=script.start, entered=True)
    _enter(script, state, script.start, decision)
    return state, decision


def is_backchannel(script: Script, text: str) -> bool:
    """True if the text is only backchannel words (嗯, 对对, 好的)."""
    bare = _PUNCT.sub(" ", text.lower()).split()
    return bool(bare) and all(_only_backchannels(word, script.backchannels) for word in bare)


def opens_with_yes(script: Script, text: str) -> bool:
    """True if the text starts with one of the script's yes-words (after fillers such as 喂), not followed by
    what makes it a question or something else (是不是, 系咪, 对了)."""
    yes = script.yes_words
    if yes is None:
        return False
    bare = _PUNCT.sub("", text.lower())
    fillers = sorted(yes.fillers, key=len, reverse=True)
    while filler := next((f for f in fillers if bare.startswith(f) and len(bare) > len(f)), None):
        bare = bare[len(filler):]
    word = next((w for w in sorted(yes.words, key=len, reverse=True) if bare.startswith(w)), None)
    return word is not None and not any(bare[len(word):].startswith(x) for x in yes.not_before)


def _only_backchannels(word: str, backchannels: tuple[str, ...]) -> bool:
    if not word:
        return True
    return any(word.startswith(b) and _only_backchannels(word[len(b):], backchannels)
               for b in sorted(backchannels, key=len, reverse=True))


def step(script: Script, state: DialogueState, turn: CallerTurn, now: datetime) -> tuple[DialogueState, Decision]:
    """Apply one caller turn; `state` is not modified (a new one is returned)."""
    if state.ended:
        raise InputError("the call has ended; start a new one")
    node = script.nodes[state.node]
    backchannel = is_backchannel(script, turn.text)
    if turn.overlap and backchannel:
        return state, Decision(node=node.name, ignored=True)
    state = state.copy()
    decision = Decision(node=node.name, barge_in=turn.overlap and node.interruptible)
    state.turns += 1
    labels = [label for label in turn.labels if label != OTHER]
    if "wrong_person" in labels and any(m.kind == "role" and m.cue and not m.negated for m in turn.mentions):
        labels.remove("wrong_person")  # 我是老板 says who the caller is: the right person (models confuse the two)
    if any(m.kind == "company_size" and not m.negated for m in turn.mentions):
        # 二十来个人, 三十多号人, 得十个人左右 state a headcount; models read 个人/号人 as asking for a person
        # or as "not me" (and 来个人 as "send someone")
        labels = [label for label in labels if label not in HEADCOUNT_MISREADINGS]
    if backchannel and not labels and "confirm_yes" in node.expect:
        labels = ["confirm_yes"]
    if not labels and "confirm_yes" in node.expect and not turn.refuses and opens_with_yes(script, turn.text):
        labels = ["confirm_yes"]  # 系呀就四点, 对头就这么定了: a yes first, read as nothing by the model
    timed = any(m.kind == "time" and not m.negated for m in turn.mentions)
    if "complaint_do_not_call" in labels and timed and not turn.refuses:
        # 听日再打嚟啦: "call again" at a time, with no 不要/唔好, asks for a callback; models that learnt
        # 唔好再打嚟 read it as do-not-call, which is never undone (a callback is cheap to get wrong)
        labels = list(dict.fromkeys("busy_call_later" if label == "complaint_do_not_call" else label
                                    for label in labels))
    if (not labels and timed and not turn.refuses and "agree_meeting" in node.expect and not node.ask
            and not node.confirms):
        labels = ["agree_meeting"]  # asked which day suits for a demo, 明儿个三点半吧 names one (read as other)
    if {"agree_meeting", "busy_call_later"} <= set(labels) and timed and node.ask == "callback_time":
        labels.remove("agree_meeting")  # asked when to call back, 周四上午再打过来吧 agrees to no demo
    if node.ask == "role":
        # Asked who decides, a turn naming a role is that answer; and by a caller who has just booked a demo,
        # 不是我 / 我只是个文员 / a cut 我是公司的… says who they are, and is no wrong number.
        named = any(m.kind == "role" and not m.negated for m in turn.mentions)
        misread = ROLE_ANSWER_MISREADINGS if named else {"wrong_person"}
        labels = [label for label in labels if label not in misread]
    if turn.bare and node.ask:
        # A bare value answers the question the bot asked; intents a model reads into it (a time ->
        # agree_meeting) must neither send the call elsewhere nor grade it (asked for a callback
        # time, 明天下午四点吧 is no agreement to a demo).
        labels = []
    state.intents.append(labels or [OTHER])
    decision.changed = track(state, labels, list(turn.mentions), now, node.ask, node.confirms, turn.text,
                             node.yes_sets)

    state.moods.append(turn.mood)
    if turn.mood in ("impatient", "angry"):
        state.brief = True
    target = _dominant(script, node, labels)
    if target is None and turn.mood == "angry" and script.settings.on_angry:
        target = script.settings.on_angry
    resume = repeat = False
    if target is None:
        for label in labels:
            if label in node.expect:
                target = target or node.expect[label]
                continue
            handler = script.handlers.get(label)
            if handler is None:
                continue
            if handler.say:
                decision.parts.append(Part("line", handler.say, intent=label))
            if handler.answer:
                decision.parts.append(Part("answer", turn.text, handler.answer, intent=label))
            if handler.goto:
                target = target or handler.goto
            resume |= handler.then == "resume"
            repeat |= handler.then == "repeat"
        if node.ask and node.ask in decision.changed and state.value(node.ask) is not None and \
                (target is None or target == node.name):
            target = node.next
        if node.confirms and node.confirms in decision.changed:
            if state.value(node.confirms) is not None:
                target = node.name  # a corrected value: read the new one back
            elif target is None:
                target = _asker(script, node.confirms)  # 不是三点 and no new time: ask for it again
        said_something = bool(labels) or bool(decision.changed)
        if target is None and not decision.parts and not repeat and node.default and said_something:
            target = node.default
    if target is None and turn.mood == "impatient" and script.settings.on_impatient \
            and not state.impatient_handled and script.settings.on_impatient != node.name:
        target = script.settings.on_impatient
        state.impatient_handled = True
    if state.turns >= script.settings.max_turns and script.settings.max_turns_node and target is None:
        target = script.settings.max_turns_node

    if target is not None:
        _enter(script, state, target, decision)
    elif decision.parts or resume or repeat:
        state.no_match = 0
        if repeat and not decision.parts:
            decision.parts.append(Part("repeat"))
        else:
            decision.parts.append(Part("line", node.reprompt or node.say[0]))
    elif backchannel:
        decision.parts.append(Part("line", node.reprompt or node.say[0]))
    else:
        state.no_match += 1
        if state.no_match >= script.settings.max_no_match:
            _enter(script, state, node.fallback or script.settings.fallback, decision)
        else:
            decision.parts.append(Part("line", node.rephrase or node.reprompt or node.say[0]))
    decision.node = state.node
    return state, decision


def _asker(script: Script, slot: str) -> str | None:
    """The node that asks for `slot`, if the script has one."""
    return next((node.name for node in script.nodes.values() if node.ask == slot), None)


def _dominant(script: Script, node: Node, labels: list[str]) -> str | None:
    """A do-not-call or transfer target anywhere in the turn, which wins over the rest."""
    targets = []
    for label in labels:
        handler = script.handlers.get(label)
        target = node.expect.get(label) or (handler.goto if handler else None)
        if target in script.nodes:
            targets.append(script.nodes[target])
    for flag in ("dnc", "transfer"):
        for target in targets:
            if getattr(target, flag):
                return target.name
    return None


def _enter(script: Script, state: DialogueState, name: str, decision: Decision) -> None:
    """Go to a node; a node whose slot is already filled, or whose `only_if`
    does not hold, passes straight on to `next`."""
    node = script.nodes[name]
    for _ in range(MAX_SKIPS):
        filled = node.ask and state.value(node.ask) is not None
        excluded = any(state.value(slot) != value for slot, value in node.only_if.items())
        if node.next and (filled or excluded):
            node = script.nodes[node.next]
        else:
            break
    visits = state.visits.get(node.name, 0)
    state.visits[node.name] = visits + 1
    state.node = node.name
    state.no_match = 0
    decision.entered = True
    line = node.brief if state.brief and node.brief else node.say[visits % len(node.say)]
    decision.parts.append(Part("line", line))
    if node.is_end:
        state.ended = True
        state.outcome = node.end
        state.dnc = state.dnc or node.dnc
        state.transferred = state.transferred or node.transfer
