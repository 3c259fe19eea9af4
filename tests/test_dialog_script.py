"""Script loading and validation: every problem names file, line, node and field."""

import pytest

from edge.config import DEFAULT_SCRIPT
from edge.dialog.script import Script
from edge.dialog.validate import problems
from edge.errors import ScriptError
from tests.fakes import LABELS

SMALL = """\
name: test
start: hello
variables:
  lead_name: ""
backchannels: [嗯]
settings:
  fallback: bye
nodes:
  hello:
    say: "{lead_name}您好，方便吗？"
    expect:
      confirm_yes: pitch
      deny_no: bye
  pitch:
    say: 约个演示？
    expect:
      agree_meeting: bye
  bye:
    say: 再见
    end: closed
globals:
  ask_price: {say: 一年一千二, then: resume}
grading:
  rules:
    - {grade: D, outcome: [closed]}
  default: D
spoken:
  days: [今天, 明天, 后天]
  weekdays: [周一, 周二, 周三, 周四, 周五, 周六, 周日]
  date: "{month}月{day}日"
  parts: {0: 凌晨, 12: 中午, 13: 下午}
  clock: "{hour}点"
  clock_half: "{hour}点半"
  clock_minutes: "{hour}点{minute}分"
  channels: {wechat: 微信}
  no_answer: 稍后回复您
"""


def load(tmp_path, text, labels=LABELS):
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    return Script.load(path, labels)


def test_default_script_is_sound_and_round_trips():
    script = Script.load(DEFAULT_SCRIPT, LABELS)
    assert script.nodes[script.start].interruptible is False
    assert Script.from_dict(script.to_dict()) == script
    handled = set(script.handlers) | {i for n in script.nodes.values() for i in n.expect}
    assert handled >= set(LABELS) - {"other", "interested", "confirm_yes", "deny_no"}


def test_small_script_loads(tmp_path):
    script = load(tmp_path, SMALL)
    assert list(script.nodes) == ["hello", "pitch", "bye"] and script.nodes["bye"].is_end


@pytest.mark.parametrize("change, message", [
    (("confirm_yes: pitch", "confirm_yes: pich"), r"s.yaml:12: node 'hello' field 'expect.confirm_yes': unknown node 'pich'"),
    (("confirm_yes: pitch", "confirm_yes: bye"), r"s.yaml:14: node 'pitch' is unreachable"),
    (("confirm_yes: pitch", "say_yes: pitch"), r"s.yaml:12: node 'hello' field 'expect': intent 'say_yes' is not one "
                                               "of the model's labels"),
    (("约个演示？", "约个演示，{product}？"), r"s.yaml:15: node 'pitch' field 'say': variable \{product\} is not declared"),
    (("  ask_price: {say", "  ask_prize: {say"), r"s.yaml:22: global handler 'ask_prize': intent 'ask_prize'"),
    (("start: hello", "start: hullo"), r"s.yaml:2: start node 'hullo' is not defined"),
    (("outcome: [closed]", "outcome: [clozed]"), r"s.yaml:25: grading rule 1: no end node has outcome 'clozed'"),
    (("    end: closed", "    end: closed\n    expect: {greeting: hello}"), r"s.yaml:18: node 'bye' ends the call"),
    (("  fallback: bye", "  fallbak: bye"), r"s.yaml:7: settings: unknown field 'fallbak'"),
    (("  fallback: bye", "  fallback: bye\n  min_scores: {wrong_person: 1.5}"),
     r"s.yaml:8: settings.min_scores.wrong_person must be a number from 0 to 1"),
    (("  fallback: bye", "  fallback: bye\n  min_scores: {wrong_persons: 0.4}"),
     r"s.yaml:8: settings.min_scores: intent 'wrong_persons' is not one of the model's labels"),
    (("backchannels: [嗯]", "backchannels: [嗯]\nyes_words: {not_before: [不]}"),
     r"s.yaml:6: yes_words needs its 'words'"),
    (("backchannels: [嗯]", "backchannels: [嗯]\nyes_words: {words: [对], before: [喂]}"),
     r"s.yaml:6: yes_words: unknown field 'before'"),
    (("    say: 再见", "    sya: 再见"), r"s.yaml:19: node 'bye': unknown field 'sya'"),
    (("    say: 约个演示？", "    say: 约个演示？\n    say: 再约"), r"s.yaml:16: duplicate key 'say' \(first at line 15\)"),
    (("  ask_price: {say: 一年一千二, then: resume}", "  ask_price: {say: 一年一千二, then: later}"),
     r"s.yaml:22: global handler 'ask_price' field 'then' must be one of"),
    (("    expect:\n      agree_meeting", "    ask: budgett\n    next: bye\n    expect:\n      agree_meeting"),
     r"s.yaml:16: node 'pitch' field 'ask': unknown slot 'budgett'"),
    (("nodes:", "nodes: [\n"), r"s.yaml:\d+: not valid YAML"),
    (("  fallback: bye\n", ""), r"node 'hello' has no `fallback` node"),
])
def test_broken_scripts_name_the_line(tmp_path, change, message):
    old, new = change
    assert old in SMALL
    with pytest.raises(ScriptError, match=message):
        load(tmp_path, SMALL.replace(old, new, 1))


def test_loop_with_no_exit(tmp_path):
    text = (SMALL.replace("      deny_no: bye\n", "      deny_no: pitch\n    fallback: pitch\n")
            .replace("      agree_meeting: bye\n", "      agree_meeting: hello\n    fallback: hello\n")
            .replace("  fallback: bye\n", "  max_turns_node: bye\n"))
    with pytest.raises(ScriptError, match=r"s.yaml:9: node 'hello' cannot reach any end node \(a loop with no exit\)"):
        load(tmp_path, text)


def test_all_problems_are_listed(tmp_path):
    text = SMALL.replace("confirm_yes: pitch", "confirm_yes: pich").replace("再见", "再见{x}")
    path = tmp_path / "s.yaml"
    path.write_text(text, encoding="utf-8")
    script, lines = Script.parse(path)
    found = problems(script, LABELS, lines)
    assert len(found) >= 3  # unknown node, unreachable pitch, undeclared {x}
    with pytest.raises(ScriptError, match=r"and \d+ more: run `salesbot script check"):
        Script.load(path, LABELS)


@pytest.mark.parametrize("data, message", [
    (b"", "a script must be a mapping"),
    (b"\xff\xfe name: x", "not valid UTF-8"),
    (b"- a\n- b\n", "a script must be a mapping"),
    (b"name: x\n", "lacks the top-level field 'start'"),
])
def test_unusable_files(tmp_path, data, message):
    path = tmp_path / "s.yaml"
    path.write_bytes(data)
    with pytest.raises(ScriptError, match=message):
        Script.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ScriptError, match="cannot read script"):
        Script.load(tmp_path / "none.yaml")


def test_labels_are_optional(tmp_path):
    script = load(tmp_path, SMALL.replace("confirm_yes: pitch", "say_yes: pitch"), labels=None)
    assert "say_yes" in script.nodes["hello"].expect
