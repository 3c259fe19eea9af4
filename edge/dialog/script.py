"""The script (话术): nodes, global handlers, grading rules, read from YAML.

`Script.load(path, labels)` parses, checks the shapes (`from_dict`), then the
flow (`edge.dialog.validate`), and raises ScriptError naming file, line, node
and field. `to_dict()` gives back a dict `from_dict` accepts.

Example:
    >>> script = Script.load("edge/data/script.yaml")
    >>> script.nodes[script.start].interruptible
    False
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from edge.dialog import source as _source
from edge.errors import ScriptError
from edge.textfile import read_text

THEN: Final = ("resume", "repeat")
GRADES: Final = ("A", "B", "C", "D", "E")
DUE_WORDS: Final = ("now", "next_workday")
VARIABLE_RE: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MAX_FILE_BYTES: Final = 2 * 1024 * 1024
SPOKEN_KEYS: Final = ("days", "weekdays", "date", "parts", "clock", "clock_half", "clock_minutes", "channels",
                      "no_answer")


@dataclass(frozen=True)
class TaskSpec:
    """A follow-up the call leaves behind when it ends in a node."""

    kind: str
    """callback, meeting, send_info, handoff, ... (free word, goes to the CRM)."""
    due: str
    """A time slot name (callback_time), "now", or "next_workday" (10:00)."""
    channel: str
    """Literal channel (phone, wechat ...), or the fallback when `channel_slot` is empty."""
    channel_slot: str | None = None


@dataclass(frozen=True)
class Node:
    name: str
    say: tuple[str, ...]
    """Line(s) to say on entry; on a revisit the next variant is used."""
    expect: dict[str, str] = field(default_factory=dict)
    """Intent -> node it leads to (node-local; wins over a global handler)."""
    reprompt: str | None = None
    """Said to resume here after a side question; default: the first `say`."""
    rephrase: str | None = None
    """Said after the first no-match or silence; default: `reprompt`."""
    brief: str | None = None
    """A short version of `say`, used once the caller sounds impatient."""
    silence_ms: int | None = None
    """Trailing silence that ends the caller's answer here, ms (longer while they give a number or a
    time); None: the call config's value for the slot asked."""
    interruptible: bool = True
    """False for compliance lines: the caller cannot barge in."""
    ask: str | None = None
    """Slot this node asks for; once filled the call goes to `next` (also on entry)."""
    next: str | None = None
    confirms: str | None = None
    """Slot this node reads back: yes confirms it, no denies it."""
    only_if: dict[str, str] = field(default_factory=dict)
    """Slot -> value: unless all hold, the node is passed straight on to `next`."""
    yes_sets: dict[str, str] = field(default_factory=dict)
    """Slot -> value a plain yes at this node gives (微信就是这个手机号吗？对)."""
    default: str | None = None
    """Node for an answer that matched nothing expected but said something (an intent or a slot)."""
    fallback: str | None = None
    """Node after `max_no_match` no-matches or silences here; default: settings.fallback."""
    end: str | None = None
    """Outcome name: the call ends in this node."""
    dnc: bool = False
    """Put the number on the do-not-call list."""
    transfer: bool = False
    """Hand the call to a person."""
    task: TaskSpec | None = None
    line: int = field(default=0, compare=False)

    @property
    def is_end(self) -> bool:
        return self.end is not None

    def edges(self) -> list[tuple[str, str]]:
        """(field, target) of every node-local transition."""
        out = [(f"expect.{k}", v) for k, v in self.expect.items()]
        out += [(name, getattr(self, name)) for name in ("next", "default", "fallback") if getattr(self, name)]
        return out


@dataclass(frozen=True)
class Handler:
    """What to do on an intent in any node (unless the node expects it itself)."""

    intent: str
    say: str | None = None
    answer: tuple[str, ...] | None = None
    """Knowledge tags to answer from (the caller's words are the query)."""
    goto: str | None = None
    then: str | None = None
    """"resume" (stay, re-ask the node's question) or "repeat" (say the last line again)."""
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class GradeRule:
    """First matching rule gives the lead grade; every condition given must hold."""

    grade: str
    outcome: tuple[str, ...] | None = None
    decision_maker: bool | None = None
    intents: tuple[str, ...] | None = None
    """Any of these intents was heard during the call."""
    slots: tuple[str, ...] | None = None
    """All of these slots are filled at the end."""
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Settings:
    max_no_match: int = 2
    """No-matches or silences in one node before its fallback."""
    max_turns: int = 30
    """Caller turns before the call is closed at `max_turns_node`."""
    max_turns_node: str | None = None
    fallback: str | None = None
    """Fallback of every node that names none."""
    on_impatient: str | None = None
    """Node the call goes to (once) when the caller sounds impatient and said nothing that moves the
    call on (offer a callback); lines turn brief from then on. None: lines turn brief only."""
    on_angry: str | None = None
    """Node the call goes to when the caller sounds angry (apologise and end); do-not-call and
    transfer requests still win. None: mood changes nothing."""
    min_scores: dict[str, float] = field(default_factory=dict)
    """Intent -> the least classifier score at which it counts (below it the turn reads as if the
    intent were not heard): for intents that end or hand over the call on a weak guess."""


@dataclass(frozen=True)
class YesWords:
    """Words that answer yes when a turn opens with one and the intent model reads nothing into it."""

    words: tuple[str, ...]
    not_before: tuple[str, ...] = ()
    """What makes a yes-word something else when it follows (是不是, 系咪, 对了)."""
    fillers: tuple[str, ...] = ()
    """What may come before it (喂, 嗯)."""


@dataclass(frozen=True)
class Script:
    name: str
    version: int
    start: str
    nodes: dict[str, Node]
    handlers: dict[str, Handler]
    variables: dict[str, str]
    """Every {variable} a line may use, with the value said when nothing fills it."""
    backchannels: tuple[str, ...]
    """Words that are no turn and no barge-in (嗯, 对, 好的)."""
    settings: Settings
    grading: tuple[GradeRule, ...]
    default_grade: str
    spoken: dict[str, Any]
    """How values are said: days, weekdays, parts of day, clock forms, channel names."""
    yes_words: YesWords | None = None
    source: str = field(default="<script>", compare=False)

    @classmethod
    def load(cls, path: str | Path, labels: list[str] | None = None) -> "Script":
        """Read, check and return a script.

        Args:
            path: the YAML file.
            labels: the intent model's labels; every intent the script names must be one.

        Raises:
            ScriptError: the first problem found (file:line: node, field, what to fix),
                with a count of the others.
        """
        from edge.dialog.validate import problems

        script, lines = cls.parse(path)
        found = problems(script, labels, lines)
        if found:
            more = f" (and {len(found) - 1} more: run `salesbot script check {path}`)" if len(found) > 1 else ""
            raise ScriptError(found[0] + more)
        return script

    @classmethod
    def parse(cls, path: str | Path) -> tuple["Script", _source.Lines]:
        """Read a script file and check its shape only (no flow checks)."""
        path = Path(path)
        text = read_text(path, "script", MAX_FILE_BYTES, ScriptError)
        data, lines = _source.load(text, str(path))
        return cls.from_dict(data, lines, str(path)), lines

    @classmethod
    def from_dict(cls, data: Any, lines: _source.Lines | None = None, source: str = "<script>") -> "Script":
        """Typed script from plain data; a wrong shape raises ScriptError naming the line."""
        from edge.dialog.shape import Reader

        return Reader(lines or {}, source).script(data)

    def to_dict(self) -> dict[str, Any]:
        nodes = {}
        for node in self.nodes.values():
            entry: dict[str, Any] = {"say": list(node.say) if len(node.say) > 1 else node.say[0]}
            for name in ("reprompt", "rephrase", "brief", "silence_ms", "ask", "next", "confirms", "default",
                         "fallback", "end"):
                if getattr(node, name) is not None:
                    entry[name] = getattr(node, name)
            if node.expect:
                entry["expect"] = dict(node.expect)
            for key in ("only_if", "yes_sets"):
                if getattr(node, key):
                    entry[key] = dict(getattr(node, key))
            for name, default in (("interruptible", True), ("dnc", False), ("transfer", False)):
                if getattr(node, name) != default:
                    entry[name] = getattr(node, name)
            if node.task:
                channel: Any = node.task.channel
                if node.task.channel_slot:
                    channel = {"slot": node.task.channel_slot, "default": node.task.channel}
                entry["task"] = {"kind": node.task.kind, "due": node.task.due, "channel": channel}
            nodes[node.name] = entry
        handlers = {}
        for handler in self.handlers.values():
            entry = {k: v for k, v in (("say", handler.say), ("goto", handler.goto), ("then", handler.then)) if v}
            if handler.answer is not None:
                entry["answer"] = list(handler.answer)
            handlers[handler.intent] = entry
        rules = []
        for rule in self.grading:
            entry = {"grade": rule.grade}
            for name in ("outcome", "intents", "slots"):
                if getattr(rule, name) is not None:
                    entry[name] = list(getattr(rule, name))
            if rule.decision_maker is not None:
                entry["decision_maker"] = rule.decision_maker
            rules.append(entry)
        settings = {k: v for k, v in vars(self.settings).items() if v is not None}
        return {"name": self.name, "version": self.version, "start": self.start, "variables": dict(self.variables),
                "backchannels": list(self.backchannels), "settings": settings, "spoken": self.spoken,
                "nodes": nodes, "globals": handlers, "grading": {"rules": rules, "default": self.default_grade},
                **({"yes_words": {k: list(v) for k, v in vars(self.yes_words).items()}} if self.yes_words else {})}
