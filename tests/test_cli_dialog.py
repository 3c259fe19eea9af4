"""`salesbot call | chat | kb | script` through click's runner (keyword classifier in place of the model)."""

import json

import pytest
from click.testing import CliRunner

import edge.cli_dialog
from edge.cli import cli
from tests.fakes import KeywordClassifier

NOW = "2025-03-05T14:20"


@pytest.fixture(autouse=True)
def fake_model(monkeypatch, tmp_path):
    monkeypatch.setattr(edge.cli_dialog, "load_classifier", lambda *args: KeywordClassifier())
    monkeypatch.setenv("SALESBOT_DATA_DIR", str(tmp_path / "data"))


def run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input)


def test_call_prints_transcript_grade_and_tasks(tmp_path):
    caller = tmp_path / "caller.txt"
    caller.write_text("# 忙\n~嗯\n喂 你好\n我在开会 明天下午三点再打\n", encoding="utf-8")
    result = run("call", "--text", str(caller), "--lead", "张总,华星科技", "--now", NOW)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("bot    张总您好")
    assert "caller~ 嗯" in lines and "outcome: callback_booked   grade: C   dnc: no" in result.output
    assert "task: callback due 2025-03-06T15:00:00+08:00 by phone" in result.output
    assert (tmp_path / "data" / "calls.db").is_file()


def test_call_json(tmp_path):
    caller = tmp_path / "caller.txt"
    caller.write_text("别再打了\n", encoding="utf-8")
    records = tmp_path / "r.db"
    result = run("call", "--text", str(caller), "--json", "--now", NOW, "--records", str(records))
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["grade"] == "D" and report["dnc"] is True and report["tasks"] == []
    assert isinstance(report["slots"], dict) and report["turns"][0]["intents"] == ["complaint_do_not_call"]
    assert records.is_file()


def test_call_errors_are_one_line(tmp_path):
    result = run("call", "--text", str(tmp_path / "none.txt"), "--no-record")
    assert result.exit_code == 1 and "cannot read caller file" in result.output and "Traceback" not in result.output
    caller = tmp_path / "c.txt"
    caller.write_text("喂\n", encoding="utf-8")
    broken = tmp_path / "s.yaml"
    broken.write_text("name: x\nstart: a\nnodes: {a: {say: hi, expect: {confirm_yes: b}}}\n", encoding="utf-8")
    result = run("call", "--text", str(caller), "--script", str(broken), "--no-record")
    assert result.exit_code == 1 and "s.yaml" in result.output and "Traceback" not in result.output
    result = run("call", "--text", str(caller), "--lead", ",x", "--no-record")
    assert result.exit_code == 2 and "NAME,COMPANY" in result.output
    result = run("call", "--text", str(caller), "--now", "yesterday", "--no-record")
    assert result.exit_code == 2 and "ISO" in result.output


def test_chat_in_a_plain_terminal(tmp_path):
    result = run("chat", "--now", NOW, "--records", str(tmp_path / "r.db"), input="你好\n多少钱\n\n不需要\n不用了\n")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("bot> 您好，我是智销云的小智")
    assert "1200元" in result.output and "outcome: refused   grade: D" in result.output


def test_chat_hang_up_with_ctrl_d():
    result = run("chat", "--now", NOW, "--no-record", input="好的\n")
    assert result.exit_code == 0 and "outcome: incomplete" in result.output


def test_kb_import_and_search(tmp_path):
    data = tmp_path / "faq.csv"
    data.write_text("question,answer,tags\n能开发票吗,可以开专票。,财务\n", encoding="utf-8")
    db = tmp_path / "kb.db"
    result = run("kb", "import", str(data), "--db", str(db))
    assert result.exit_code == 0 and "1 added, 0 updated, 0 unchanged, 0 removed (knowledge version 1)" in result.output
    result = run("kb", "import", str(data), "--db", str(db))
    assert "0 added, 0 updated, 1 unchanged" in result.output and "version 1)" in result.output
    result = run("kb", "search", "发票", "--db", str(db), "--json")
    assert json.loads(result.output.splitlines()[0])["answer"] == "可以开专票。"
    result = run("kb", "search", "你们这个几多钱", "-k", "1")
    assert result.exit_code == 0 and "[price-model]" in result.output


def test_kb_errors(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\n多少钱,\n", encoding="utf-8")
    result = run("kb", "import", str(bad), "--db", str(tmp_path / "kb.db"))
    assert result.exit_code == 1 and "bad.csv:2: empty or missing answer" in result.output
    assert "Traceback" not in result.output
    result = run("kb", "import", str(bad))
    assert result.exit_code == 2 and "--db" in result.output
    result = run("kb", "search", "x", "--db", str(tmp_path / "none.db"))
    assert result.exit_code == 1 and "salesbot kb import" in result.output


def test_script_check(tmp_path):
    result = run("script", "check")
    assert result.exit_code == 0 and result.output.startswith("ok: ") and "23 labels" in result.output
    broken = tmp_path / "s.yaml"
    broken.write_text("name: x\nstart: a\nnodes: {a: {say: 'hi {who}', expect: {say_yes: b}}}\n"
                      "grading: {rules: []}\nspoken: {}\n", encoding="utf-8")
    result = run("script", "check", str(broken))
    assert result.exit_code == 1 and "spoken lacks 'days'" in result.output


def test_script_check_lists_every_problem(tmp_path):
    text = open(edge.cli_dialog.DATA_DIR / "script.yaml", encoding="utf-8").read()
    broken = tmp_path / "s.yaml"
    broken.write_text(text.replace("confirm_yes: discovery", "say_yes: discoverie").replace("{company}", "{firm}"),
                      encoding="utf-8")
    result = run("script", "check", str(broken))
    assert result.exit_code == 1
    assert "intent 'say_yes' is not one of the model's labels" in result.output
    assert "unknown node 'discoverie'" in result.output and "variable {firm} is not declared" in result.output
    assert "problem(s) in" in result.output
