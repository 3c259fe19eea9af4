"""YAML that remembers where each key was written, so errors can name the line."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from edge.errors import ScriptError

Lines = dict[tuple, int]
"""Path of keys/indices -> 1-based line number."""
MAX_NODES = 200_000
"""Values a script may expand to; YAML aliases (&a / *a) nested a few levels deep would
otherwise expand to billions ("billion laughs") and hang the box. The default script has ~3,000."""


def load(text: str, name: str) -> tuple[Any, Lines]:
    """Parse YAML text into plain Python values and a line map.

    Raises:
        ScriptError: YAML syntax errors, duplicate keys, non-string keys; with file and line.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise ScriptError(f"{name}: not valid YAML: nested too deeply") from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 1
        raise ScriptError(f"{name}:{line}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ScriptError(f"{name}: not valid YAML: {exc}") from None
    lines: Lines = {}
    if root is None:
        return None, lines
    constructor = SafeConstructor()
    try:
        return _walk(root, (), lines, constructor, name, [MAX_NODES]), lines
    except RecursionError:
        raise ScriptError(f"{name}: nested too deeply to be a script") from None


def _walk(node: yaml.Node, path: tuple, lines: Lines, constructor: SafeConstructor, name: str,
          budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise ScriptError(f"{name}:{node.start_mark.line + 1}: expands to more than {MAX_NODES} values "
                          "(YAML aliases nested too deep?); write the script out plainly")
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ScriptError(f"{name}:{key_node.start_mark.line + 1}: a key must be a plain word")
            key = str(_scalar(key_node, constructor, name))
            if key in result:
                raise ScriptError(f"{name}:{key_node.start_mark.line + 1}: duplicate key {key!r} "
                                  f"(first at line {lines[path + (key,)]})")
            lines[path + (key,)] = key_node.start_mark.line + 1
            result[key] = _walk(value_node, path + (key,), lines, constructor, name, budget)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, path + (index,), lines, constructor, name, budget)
                for index, item in enumerate(node.value)]
    return _scalar(node, constructor, name)


def _scalar(node: yaml.Node, constructor: SafeConstructor, name: str) -> Any:
    try:
        return constructor.construct_object(node, deep=True)
    except ConstructorError as exc:
        raise ScriptError(f"{name}:{node.start_mark.line + 1}: {exc.problem}") from None
    except (ValueError, OverflowError) as exc:  # 2025-13-45 as a date, an int of 5000 digits
        raise ScriptError(f"{name}:{node.start_mark.line + 1}: unusable value {node.value[:40]!r} ({exc})") from None


def line_of(lines: Lines, path: tuple) -> int:
    """Line of the deepest known prefix of `path` (1 if none)."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1
