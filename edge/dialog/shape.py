"""Shape checks of a script file: each field's type, unknown fields, required
fields; the first problem raises ScriptError with file:line and the node and
field it is about. Flow checks (unknown or unreachable nodes) are in
edge.dialog.validate.
"""

from __future__ import annotations

import re
from typing import Any

from edge.dialog import source as _source
from edge.dialog.script import (GRADES, SPOKEN_KEYS, THEN, GradeRule, Handler, Node, Script, Settings,
                                TaskSpec, YesWords)
from edge.errors import ScriptError


class Reader:
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

    def milliseconds(self, value: Any, path: tuple, what: str) -> int | None:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not 100 <= value <= 5000:
            self.fail(path, f"{what} must be a whole number of ms from 100 to 5000")
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
        known = ("name", "version", "start", "variables", "backchannels", "yes_words", "settings", "spoken", "nodes",
                 "globals", "grading")
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
            yes_words=self.yes_words(data.get("yes_words")),
            source=self.source,
        )

    def node(self, name: str, spec: Any) -> Node:
        path = ("nodes", name)
        self.word(name, path, f"node name {name!r}", optional=False)
        what = f"node {name!r}"
        known = ("say", "expect", "reprompt", "rephrase", "brief", "silence_ms", "interruptible", "ask", "next",
                 "confirms", "only_if", "yes_sets", "default", "fallback", "end", "dnc", "transfer", "task")
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
            brief=self.text(spec.get("brief"), path + ("brief",), f"{what} field 'brief'", True),
            silence_ms=self.milliseconds(spec.get("silence_ms"), path + ("silence_ms",), f"{what} field 'silence_ms'"),
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

    def yes_words(self, spec: Any) -> YesWords | None:
        if spec is None:
            return None
        path = ("yes_words",)
        spec = self.mapping(spec, path, "yes_words", ("words", "not_before", "fillers"))
        if "words" not in spec:
            self.fail(path, "yes_words needs its 'words'")
        return YesWords(words=self.words(spec["words"], (*path, "words"), "yes_words.words"),
                        not_before=self.words(spec.get("not_before"), (*path, "not_before"),
                                              "yes_words.not_before") or (),
                        fillers=self.words(spec.get("fillers"), (*path, "fillers"), "yes_words.fillers") or ())

    def settings(self, spec: Any) -> Settings:
        spec = self.mapping(spec, ("settings",), "settings", ("max_no_match", "max_turns", "max_turns_node",
                                                              "fallback", "on_impatient", "on_angry", "min_scores"))
        for key in ("max_no_match", "max_turns"):
            value = spec.get(key, getattr(Settings, key))
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
                self.fail(("settings", key), f"settings.{key} must be a whole number from 1 to 1000")
        return Settings(max_no_match=spec.get("max_no_match", 2), max_turns=spec.get("max_turns", 30),
                        max_turns_node=self.word(spec.get("max_turns_node"), ("settings", "max_turns_node"),
                                                 "settings.max_turns_node"),
                        fallback=self.word(spec.get("fallback"), ("settings", "fallback"), "settings.fallback"),
                        on_impatient=self.word(spec.get("on_impatient"), ("settings", "on_impatient"),
                                               "settings.on_impatient"),
                        on_angry=self.word(spec.get("on_angry"), ("settings", "on_angry"), "settings.on_angry"),
                        min_scores=self.min_scores(spec.get("min_scores") or {}))

    def min_scores(self, spec: Any) -> dict[str, float]:
        path = ("settings", "min_scores")
        spec = self.mapping(spec, path, "settings.min_scores", None)
        out = {}
        for intent, score in spec.items():
            if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
                self.fail(path + (intent,), f"settings.min_scores.{intent} must be a number from 0 to 1")
            out[self.word(intent, path, "settings.min_scores")] = float(score)
        return out

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
