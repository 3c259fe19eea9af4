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
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ScriptError(f"cannot read script {path}: {exc.strerror}") from None
        if len(raw) > MAX_FILE_BYTES:
            raise ScriptError(f"{path}: {len(raw)} bytes; a script is at most {MAX_FILE_BYTES} bytes")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ScriptError(f"{path}:{line}: not valid UTF-8 (save the script as UTF-8)") from None
        data, lines = _source.load(text, str(path))
        return cls.from_dict(data, lines, str(path)), lines

    @classmethod
    def from_dict(cls, data: Any, lines: _source.Lines | None = None, source: str = "<script>") -> "Script":
        """Typed script from plain data; a wrong shape raises ScriptError naming the line."""
        return _Reader(lines or {}, source).script(data)

    def to_dict(self) -> dict[str, Any]:
        nodes = {}
        for node in self.nodes.values():
            entry: dict[str, Any] = {"say": list(node.say) if len(node.say) > 1 else node.say[0]}
            for name in ("reprompt", "rephrase", "ask", "next", "confirms", "default", "fallback", "end"):
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
                "nodes": nodes, "globals": handlers, "grading": {"rules": rules, "default": self.default_grade}}


class _Reader:
    """Shape checks, each error with file:line and the node/field it is about."""

    def __init__(self, lines: _source.Lines, source: str):
        self.lines, self.source = lines, source

    def fail(self, path: tuple, message: str):
        raise ScriptError(f"{self.source}:{_source.line_of(self.lines, path)}: {message}")

    def mapping(self, value: Any, path: tuple, what: str, known: tuple[str, ...] | None = None) -> dict:
        if not isinstance(value, dict):
            self.fail(path, f"{what} must be a mapping (key: value lines)")
        if known is not None:
            for key in value:
                if key not in known:
                    self.fail(path + (key,), f"{what}: unknown field {key!r}; known: {', '.join(known)}")
        return value

    def text(self, value: Any, path: tuple, what: str, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"{what} must be non-empty text")
        return value.strip()

    def word(self, value: Any, path: tuple, what: str, optional: bool = True) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            self.fail(path, f"{what} must be a name of letters, digits and _ (got {value!r})")
        return value

    def flag(self, value: Any, path: tuple, what: str, default: bool) -> bool:
        if value is None:
            return default
        if not isinstance(value, bool):
            self.fail(path, f"{what} must be true or false")
        return value

    def words(self, value: Any, path: tuple, what: str) -> tuple[str, ...] | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(path, f"{what} must be a word or a list of words")
        return tuple(v.strip() for v in value)

    def script(self, data: Any) -> Script:
        known = ("name", "version", "start", "variables", "backchannels", "settings", "spoken", "nodes", "globals",
                 "grading")
        data = self.mapping(data, (), "a script", known)
        for key in ("name", "start", "nodes", "grading", "spoken"):
            if key not in data:
                self.fail((), f"the script lacks the top-level field {key!r}")
        version = data.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            self.fail(("version",), "version must be a positive whole number")
        variables = self.mapping(data.get("variables") or {}, ("variables",), "variables")
        for key, value in variables.items():
            if not isinstance(value, (str, int)):
                self.fail(("variables", key), f"variable {key!r}: the value said when nothing fills it must be text")
        nodes_data = self.mapping(data["nodes"], ("nodes",), "nodes")
        if not nodes_data:
            self.fail(("nodes",), "the script has no nodes")
        handlers_data = self.mapping(data.get("globals") or {}, ("globals",), "globals")
        rules, default_grade = self.grading(data["grading"])
        return Script(
            name=self.text(data["name"], ("name",), "name"),
            version=version,
            start=self.word(data["start"], ("start",), "start", optional=False),
            nodes={name: self.node(str(name), spec) for name, spec in nodes_data.items()},
            handlers={name: self.handler(str(name), spec) for name, spec in handlers_data.items()},
            variables={str(k): str(v) for k, v in variables.items()},
            backchannels=self.words(data.get("backchannels") or ["嗯"], ("backchannels",), "backchannels"),
            settings=self.settings(data.get("settings") or {}),
            grading=rules,
            default_grade=default_grade,
            spoken=self.spoken(data["spoken"]),
            source=self.source,
        )

    def node(self, name: str, spec: Any) -> Node:
        path = ("nodes", name)
        self.word(name, path, f"node name {name!r}", optional=False)
        what = f"node {name!r}"
        known = ("say", "expect", "reprompt", "rephrase", "interruptible", "ask", "next", "confirms", "only_if",
                 "yes_sets", "default", "fallback", "end", "dnc", "transfer", "task")
        spec = self.mapping(spec, path, what, known)
        if "say" not in spec:
            self.fail(path, f"{what} has no `say` line")
        say = spec["say"] if isinstance(spec["say"], list) else [spec["say"]]
        if not say:
            self.fail(path + ("say",), f"{what} field 'say': give at least one line")
        say = tuple(self.text(line, path + ("say",), f"{what} field 'say'") for line in say)
        expect = self.mapping(spec.get("expect") or {}, path + ("expect",), f"{what} field 'expect'")
        for intent, target in expect.items():
            self.word(target, path + ("expect", intent), f"{what} field 'expect.{intent}'", optional=False)
        conditions = {}
        for key in ("only_if", "yes_sets"):
            conditions[key] = self.mapping(spec.get(key) or {}, path + (key,), f"{what} field {key!r}")
            for slot, value in conditions[key].items():
                if not isinstance(value, (str, int)) or isinstance(value, bool):
                    self.fail(path + (key, slot), f"{what} field '{key}.{slot}' must be a slot value")
        return Node(
            name=name, say=say, expect={str(k): v for k, v in expect.items()},
            only_if={str(k): v for k, v in conditions["only_if"].items()},
            yes_sets={str(k): v for k, v in conditions["yes_sets"].items()},
            reprompt=self.text(spec.get("reprompt"), path + ("reprompt",), f"{what} field 'reprompt'", True),
            rephrase=self.text(spec.get("rephrase"), path + ("rephrase",), f"{what} field 'rephrase'", True),
            interruptible=self.flag(spec.get("interruptible"), path + ("interruptible",), f"{what} field "
                                    "'interruptible'", True),
            **{key: self.word(spec.get(key), path + (key,), f"{what} field {key!r}")
               for key in ("ask", "next", "confirms", "default", "fallback", "end")},
            dnc=self.flag(spec.get("dnc"), path + ("dnc",), f"{what} field 'dnc'", False),
            transfer=self.flag(spec.get("transfer"), path + ("transfer",), f"{what} field 'transfer'", False),
            task=self.task(spec.get("task"), path + ("task",), what),
            line=_source.line_of(self.lines, path),
        )

    def task(self, spec: Any, path: tuple, what: str) -> TaskSpec | None:
        if spec is None:
            return None
        spec = self.mapping(spec, path, f"{what} field 'task'", ("kind", "due", "channel"))
        kind = self.word(spec.get("kind"), path + ("kind",), f"{what} field 'task.kind'", optional=False)
        due = self.word(spec.get("due", "now"), path + ("due",), f"{what} field 'task.due'", optional=False)
        channel = spec.get("channel", "phone")
        if isinstance(channel, dict):
            channel = self.mapping(channel, path + ("channel",), f"{what} field 'task.channel'", ("slot", "default"))
            return TaskSpec(kind, due, self.word(channel.get("default", "phone"), path + ("channel", "default"),
                                                 f"{what} field 'task.channel.default'", optional=False),
                            self.word(channel.get("slot"), path + ("channel", "slot"),
                                      f"{what} field 'task.channel.slot'", optional=False))
        return TaskSpec(kind, due, self.word(channel, path + ("channel",), f"{what} field 'task.channel'", False))

    def handler(self, intent: str, spec: Any) -> Handler:
        path = ("globals", intent)
        what = f"global handler {intent!r}"
        spec = self.mapping(spec, path, what, ("say", "answer", "goto", "then"))
        goto = self.word(spec.get("goto"), path + ("goto",), f"{what} field 'goto'")
        then = spec.get("then")
        if then is not None and then not in THEN:
            self.fail(path + ("then",), f"{what} field 'then' must be one of {THEN} (or use `goto: node`)")
        if (goto is None) == (then is None):
            self.fail(path, f"{what}: give exactly one of `goto: node` or `then: resume|repeat`")
        return Handler(intent=intent, say=self.text(spec.get("say"), path + ("say",), f"{what} field 'say'", True),
                       answer=self.words(spec.get("answer"), path + ("answer",), f"{what} field 'answer'"),
                       goto=goto, then=then, line=_source.line_of(self.lines, path))

    def settings(self, spec: Any) -> Settings:
        spec = self.mapping(spec, ("settings",), "settings", ("max_no_match", "max_turns", "max_turns_node",
                                                              "fallback"))
        for key in ("max_no_match", "max_turns"):
            value = spec.get(key, getattr(Settings, key))
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
                self.fail(("settings", key), f"settings.{key} must be a whole number from 1 to 1000")
        return Settings(max_no_match=spec.get("max_no_match", 2), max_turns=spec.get("max_turns", 30),
                        max_turns_node=self.word(spec.get("max_turns_node"), ("settings", "max_turns_node"),
                                                 "settings.max_turns_node"),
                        fallback=self.word(spec.get("fallback"), ("settings", "fallback"), "settings.fallback"))

    def grading(self, spec: Any) -> tuple[tuple[GradeRule, ...], str]:
        spec = self.mapping(spec, ("grading",), "grading", ("rules", "default"))
        default = spec.get("default", "D")
        if default not in GRADES:
            self.fail(("grading", "default"), f"grading.default must be one of {GRADES}")
        rules_data = spec.get("rules") or []
        if not isinstance(rules_data, list):
            self.fail(("grading", "rules"), "grading.rules must be a list")
        rules = []
        for index, rule in enumerate(rules_data):
            path = ("grading", "rules", index)
            rule = self.mapping(rule, path, f"grading rule {index + 1}",
                                ("grade", "outcome", "decision_maker", "intents", "slots"))
            if rule.get("grade") not in GRADES:
                self.fail(path, f"grading rule {index + 1}: grade must be one of {GRADES}")
            decision = rule.get("decision_maker")
            if decision is not None and not isinstance(decision, bool):
                self.fail(path + ("decision_maker",), f"grading rule {index + 1}: decision_maker must be true or false")
            rules.append(GradeRule(
                grade=rule["grade"], decision_maker=decision,
                outcome=self.words(rule.get("outcome"), path + ("outcome",), f"grading rule {index + 1} field 'outcome'"),
                intents=self.words(rule.get("intents"), path + ("intents",), f"grading rule {index + 1} field 'intents'"),
                slots=self.words(rule.get("slots"), path + ("slots",), f"grading rule {index + 1} field 'slots'"),
                line=_source.line_of(self.lines, path)))
        return tuple(rules), default

    def spoken(self, spec: Any) -> dict[str, Any]:
        spec = self.mapping(spec, ("spoken",), "spoken", SPOKEN_KEYS)
        for key in SPOKEN_KEYS:
            if key not in spec:
                self.fail(("spoken",), f"spoken lacks {key!r}")
        if not isinstance(spec["weekdays"], list) or len(spec["weekdays"]) != 7:
            self.fail(("spoken", "weekdays"), "spoken.weekdays must list 7 names, Monday first")
        if not isinstance(spec["days"], list) or len(spec["days"]) != 3:
            self.fail(("spoken", "days"), "spoken.days must list 3 words: today, tomorrow, the day after")
        parts = {}
        for hour, word in self.mapping(spec["parts"], ("spoken", "parts"), "spoken.parts").items():
            if not str(hour).isdigit() or not 0 <= int(hour) <= 23 or not isinstance(word, str):
                self.fail(("spoken", "parts", hour), "spoken.parts maps a starting hour (0-23) to a word")
            parts[int(hour)] = word
        spec = {**spec, "parts": dict(sorted(parts.items()))}
        for key in ("date", "clock", "clock_half", "clock_minutes", "no_answer"):
            self.text(spec[key], ("spoken", key), f"spoken.{key}")
        self.mapping(spec["channels"], ("spoken", "channels"), "spoken.channels")
        return spec
