import json

import pytest
from click.testing import CliRunner

from edge.cli import cli


def _commands(group, prefix=()):
    for name, command in group.commands.items():
        yield prefix + (name,), command
        if hasattr(command, "commands"):
            yield from _commands(command, prefix + (name,))


@pytest.mark.parametrize("path", [p for p, _ in _commands(cli)], ids=lambda p: " ".join(p))
def test_every_command_has_help(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_intent_text_and_json():
    runner = CliRunner()
    result = runner.invoke(cli, ["intent", "你们这个多少钱"])
    assert result.exit_code == 0, result.output
    assert "ask_price" in result.output
    result = runner.invoke(cli, ["intent", "--json", "你们这个多少钱", "我是他同事 他不在"])
    lines = [json.loads(line) for line in result.output.strip().splitlines()]
    assert [l["text"] for l in lines] == ["你们这个多少钱", "我是他同事 他不在"]
    assert lines[0]["label"] == "ask_price" and set(lines[0]) == {"text", "label", "score", "labels", "scores"}


def test_intent_eval_prints_metrics(tmp_path):
    data = tmp_path / "mine.csv"
    data.write_text("transcript,intent_label\n你们这个多少钱,ask_price\n别再打了,complaint_do_not_call\n"
                    "打错了吧,wrong_person\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["intent", "eval", str(data)])
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output and "ask_price" in result.output
    result = CliRunner().invoke(cli, ["intent", "eval", "--json", str(data)])
    assert json.loads(result.output)["n"] == 3
    report = tmp_path / "quality"
    result = CliRunner().invoke(cli, ["intent", "eval", str(data), "--report", str(report)])
    assert result.exit_code == 0, result.output
    quality = json.loads((report / "quality.json").read_text(encoding="utf-8"))
    assert quality["n"] == 3 and "ece" in quality["calibration"] and "by_dialect" in quality
    for png in ("confusion.png", "reliability.png"):
        assert (report / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_are_one_line_without_traceback(tmp_path):
    result = CliRunner().invoke(cli, ["intent", "--bundle", str(tmp_path), "多少钱"])
    assert result.exit_code == 1
    assert "Error: " in result.output and "no manifest.json" in result.output
    assert "Traceback" not in result.output
    bad = tmp_path / "bad.csv"
    bad.write_bytes("transcript,intent_label\n多少钱,\n".encode())
    result = CliRunner().invoke(cli, ["intent", "eval", str(bad)])
    assert result.exit_code == 1 and "bad.csv:2: empty intent label" in result.output
