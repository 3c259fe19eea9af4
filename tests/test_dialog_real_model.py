"""Text calls through the real built-in intent model (skipped, visibly, until the bundle is installed)."""

import json

import pytest
from click.testing import CliRunner

from edge.calls import run_text_call
from edge.calls.textcall import parse_caller_lines
from edge.config import DEFAULT_INTENT_DIR
from edge.kb import KnowledgeBase
from tests.fakes import NOW, dialogue

pytestmark = pytest.mark.skipif(not (DEFAULT_INTENT_DIR / "manifest.json").is_file(),
                                reason=f"no intent bundle at {DEFAULT_INTENT_DIR} (built by `make export-default`)")


@pytest.fixture(scope="module")
def model():
    from edge.nlu import IntentModel

    return IntentModel.load()


@pytest.fixture(scope="module")
def kb():
    return KnowledgeBase.builtin()


def call(model, kb, lines):
    return run_text_call(dialogue(classifier=model, knowledge=kb), parse_caller_lines(lines), NOW)


def test_busy_caller_gets_a_callback(model, kb):
    report = call(model, kb, ["我现在在开会 明天下午三点再打给我"])
    assert report["outcome"] == "callback_booked" and report["grade"] == "C"
    assert report["tasks"][0]["due"] == "2025-03-06T15:00:00+08:00"


def test_complaint_is_do_not_call(model, kb):
    report = call(model, kb, ["别再给我打电话了 再打我就投诉"])
    assert report["dnc"] is True and report["outcome"] == "do_not_call"


def test_price_question_is_answered_and_the_call_resumes(model, kb):
    report = call(model, kb, ["你们这个软件多少钱"])
    assert "ask_price" in report["turns"][0]["intents"]
    assert report["turns"][0]["answers"][0].startswith("price-")
    assert report["turns"][0]["node"] == "opening"


def test_cantonese_callback(model, kb):
    report = call(model, kb, ["唔得闲啊 听日下昼三点再打过嚟"])
    assert report["outcome"] == "callback_booked"
    assert report["tasks"][0]["due"] == "2025-03-06T15:00:00+08:00"


def test_cli_call_with_the_real_model(tmp_path):
    from edge.cli import cli

    caller = tmp_path / "caller.txt"
    caller.write_text("你好\n我们在开会 你下周一上午再打\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["call", "--text", str(caller), "--json", "--now", "2025-03-05T14:20",
                                      "--no-record"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["grade"] in "ABCDE" and isinstance(report["dnc"], bool)
