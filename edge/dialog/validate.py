"""Flow checks of a parsed script: unknown or unreachable nodes, intents the
model does not know, undeclared variables, loops with no way out.

Each problem is one line, `file:line: node 'x' field 'y': what is wrong`.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from edge.dialog import source as _source
from edge.dialog.script import DUE_WORDS, VARIABLE_RE, Script
from edge.dialog.state import STATE_SLOTS, TIME_SLOTS

BUILTIN_OUTCOMES: Final = ("incomplete",)
"""Outcome of a call that stopped before reaching an end node (caller hung up)."""


def problems(script: Script, labels: list[str] | None = None, lines: _source.Lines | None = None) -> list[str]:
    """Every flow problem in `script`, in file order; empty when it is sound."""
    lines = lines or {}
    found: list[tuple[int, str]] = []

    def add(path: tuple, message: str) -> None:
        found.append((_source.line_of(lines, path), f"{script.source}:{_source.line_of(lines, path)}: {message}"))

    nodes = script.nodes
    known_labels = set(labels) if labels is not None else None
    if script.start not in nodes:
        add(("start",), f"start node {script.start!r} is not defined under nodes")
    for key in ("max_turns_node", "fallback", "on_impatient", "on_angry"):
        target = getattr(script.settings, key)
        if target is not None and target not in nodes:
            add(("settings", key), f"settings.{key}: unknown node {target!r}")
    for intent in script.settings.min_scores:
        if known_labels is not None and intent not in known_labels:
            add(("settings", "min_scores", intent), f"settings.min_scores: intent {intent!r} is not one of the "
                                                     "model's labels")
    for node in nodes.values():
        path = ("nodes", node.name)
        what = f"node {node.name!r}"
        for field_name, target in node.edges():
            if target not in nodes:
                add(path + tuple(field_name.split(".")), f"{what} field {field_name!r}: unknown node {target!r}")
        for intent in node.expect:
            if known_labels is not None and intent not in known_labels:
                add(path + ("expect", intent), f"{what} field 'expect': intent {intent!r} is not one of the model's "
                                               "labels (see `salesbot intent --help`)")
        for slot_field in ("ask", "confirms"):
            slot = getattr(node, slot_field)
            if slot is not None and slot not in STATE_SLOTS:
                add(path + (slot_field,), f"{what} field {slot_field!r}: unknown slot {slot!r}; known: "
                                          f"{', '.join(STATE_SLOTS)}")
        for key in ("only_if", "yes_sets"):
            for slot in getattr(node, key):
                if slot not in STATE_SLOTS:
                    add(path + (key, slot), f"{what} field {key!r}: unknown slot {slot!r}")
        if node.only_if and not node.next:
            add(path + ("only_if",), f"{what} has `only_if` but no `next` node to pass on to when it does not hold")
        if node.ask and not node.next:
            add(path + ("ask",), f"{what} asks for {node.ask!r} but has no `next` node for when it is filled")
        if node.is_end and (node.expect or node.ask or node.next or node.default):
            add(path, f"{what} ends the call (`end`), so expect/ask/next/default would never be used: remove them")
        if not node.is_end and not node.fallback and not script.settings.fallback:
            add(path, f"{what} has no `fallback` node and settings.fallback is not set")
        if node.task is not None:
            if node.task.due not in TIME_SLOTS and node.task.due not in DUE_WORDS:
                add(path + ("task", "due"), f"{what} field 'task.due': {node.task.due!r} is not a time slot "
                                            f"({', '.join(TIME_SLOTS)}) or one of {DUE_WORDS}")
            if node.task.channel_slot is not None and node.task.channel_slot not in STATE_SLOTS:
                add(path + ("task", "channel"), f"{what} field 'task.channel': unknown slot {node.task.channel_slot!r}")
        if (node.dnc or node.transfer or node.task) and not node.is_end:
            add(path, f"{what}: dnc, transfer and task take effect when the call ends: add `end: <outcome>`")
        texts = [("say", t) for t in node.say] + [(k, getattr(node, k)) for k in ("reprompt", "rephrase", "brief")]
        _check_variables(script, texts, path, what, add)
    for handler in script.handlers.values():
        path = ("globals", handler.intent)
        what = f"global handler {handler.intent!r}"
        if known_labels is not None and handler.intent not in known_labels:
            add(path, f"{what}: intent {handler.intent!r} is not one of the model's labels")
        if handler.goto is not None and handler.goto not in nodes:
            add(path + ("goto",), f"{what} field 'goto': unknown node {handler.goto!r}")
        _check_variables(script, [("say", handler.say)], path, what, add)
    outcomes = {node.end for node in nodes.values() if node.is_end} | set(BUILTIN_OUTCOMES)
    for index, rule in enumerate(script.grading):
        path = ("grading", "rules", index)
        for outcome in rule.outcome or ():
            if outcome not in outcomes:
                add(path + ("outcome",), f"grading rule {index + 1}: no end node has outcome {outcome!r}; "
                                         f"outcomes: {', '.join(sorted(outcomes))}")
        for intent in rule.intents or ():
            if known_labels is not None and intent not in known_labels:
                add(path + ("intents",), f"grading rule {index + 1}: intent {intent!r} is not one of the model's labels")
        for slot in rule.slots or ():
            if slot not in STATE_SLOTS:
                add(path + ("slots",), f"grading rule {index + 1}: unknown slot {slot!r}")
    if script.start in nodes:
        _check_graph(script, add)
    return [message for _, message in sorted(found, key=lambda item: item[0])]


def _check_variables(script: Script, texts, path: tuple, what: str, add) -> None:
    for field_name, text in texts:
        for name in VARIABLE_RE.findall(text or ""):
            if name not in script.variables:
                add(path + (field_name,), f"{what} field {field_name!r}: variable {{{name}}} is not declared under "
                                          "`variables` (declare it with the value to say when nothing fills it)")


def _targets(script: Script, name: str) -> list[str]:
    node = script.nodes[name]
    out = [target for _, target in node.edges() if target in script.nodes]
    fallback = node.fallback or script.settings.fallback
    if not node.is_end and fallback in script.nodes:
        out.append(fallback)
    return out


def _check_graph(script: Script, add) -> None:
    from_globals = [h.goto for h in script.handlers.values() if h.goto in script.nodes]
    settings = script.settings
    extra = [n for n in (settings.max_turns_node, settings.fallback, settings.on_impatient, settings.on_angry)
             if n in script.nodes]
    seen = {script.start}
    queue = deque([script.start, *from_globals, *extra])
    seen.update(queue)
    while queue:
        for target in _targets(script, queue.popleft()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    for name in script.nodes:
        if name not in seen:
            add(("nodes", name), f"node {name!r} is unreachable: no node, global handler or setting leads to it")
    # A loop with no exit: from some reachable node no end node can be reached
    # through the nodes' own transitions and fallbacks.
    reaches_end = {name for name, node in script.nodes.items() if node.is_end}
    changed = True
    while changed:
        changed = False
        for name in script.nodes:
            if name not in reaches_end and any(t in reaches_end for t in _targets(script, name)):
                reaches_end.add(name)
                changed = True
    for name in sorted(seen - reaches_end, key=lambda n: script.nodes[n].line):
        add(("nodes", name), f"node {name!r} cannot reach any end node (a loop with no exit): give it or a node "
                             "it leads to a path to a node with `end`")
