"""`salesbot call --simulate` and `salesbot demo` through click's runner (keyword intents, fake ASR)."""

import json

import pytest
from click.testing import CliRunner

import edge.cli_dialog
from edge.audio.wav import read_wav_native
from edge.cli import cli
from tests.fakes import KeywordClassifier


@pytest.fixture(autouse=True)
def fake_model(monkeypatch, tmp_path, voice_cache):
    monkeypatch.setattr(edge.cli_dialog, "load_classifier", lambda *args: KeywordClassifier())
    monkeypatch.setenv("SALESBOT_DATA_DIR", str(tmp_path / "data"))
    config = tmp_path / "salesbot.toml"
    config.write_text(f'[tts]\ncache_dir = "{voice_cache}"\n', encoding="utf-8")
    return config


def run(*args):
    return CliRunner().invoke(cli, list(args))


def test_call_simulate_prints_transcript_grade_latency_and_writes_stereo_wav(tmp_path, fake_model):
    caller = tmp_path / "caller.txt"
    caller.write_text("# voice: yue+m7\n喂，边位\n我而家开紧会，唔得闲\n听日上昼十点再打过嚟啦\n", encoding="utf-8")
    out = tmp_path / "call.wav"
    result = run("call", "--simulate", str(caller), "--out", str(out), "--oracle-asr", "--config", str(fake_model),
                 "--lead", "陈生,宏达贸易,13900000000", "--now", "2025-03-05T14:20",
                 "--records", str(tmp_path / "r.db"))
    assert result.exit_code == 0, result.output
    text = result.output
    assert "callee   喂，边位" in text and "heard: 喂，边位 | intents: greeting" in text
    assert "outcome: callback_booked   grade: C   dnc: no" in text
    assert "task: callback due 2025-03-06T10:00:00+08:00 by phone (13900000000)" in text
    assert "first audio p50" in text and "ASR: oracle" in text
    pcm, rate = read_wav_native(out)
    assert rate == 16000 and out.read_bytes()[22] == 2  # two channels: callee left, bot right
    assert (tmp_path / "r.db").is_file()


def test_call_simulate_json_has_the_post_call_report_and_latencies(tmp_path, fake_model):
    caller = tmp_path / "caller.txt"
    caller.write_text("喂，你好\n[hangup]\n", encoding="utf-8")
    result = run("call", "--simulate", str(caller), "--json", "--oracle-asr", "--no-record", "--config",
                 str(fake_model), "--now", "2025-03-05T14:20")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["format"] == "edge-salesbot/call@1" and report["outcome"] == "incomplete"
    assert report["voice"]["end_reason"] == "remote_hangup"
    (row,) = report["voice"]["latency_ms"]
    assert row["caller"] == "喂，你好" and row["first_audio"] >= row["reply_chosen"] >= 0
    assert [c["kind"] for c in report["voice"]["callee"]] == ["say", "hangup"]


def test_call_needs_exactly_one_caller_file_and_explains_a_missing_speech_model(tmp_path, fake_model):
    caller = tmp_path / "caller.txt"
    caller.write_text("喂\n", encoding="utf-8")
    result = run("call")
    assert result.exit_code == 2 and "give one of --text FILE" in result.output
    result = run("call", "--text", str(caller), "--simulate", str(caller))
    assert result.exit_code == 2
    result = run("call", "--text", str(caller), "--out", str(tmp_path / "x.wav"))
    assert result.exit_code == 2 and "--out and --oracle-asr go with --simulate" in result.output
    fake_model.write_text(fake_model.read_text() + f'[asr]\nmodel = "{tmp_path / "none"}"\n', encoding="utf-8")
    result = run("call", "--simulate", str(caller), "--config", str(fake_model), "--no-record")
    assert result.exit_code == 1 and "add --oracle-asr" in result.output and "Traceback" not in result.output
    bad = tmp_path / "bad.txt"
    bad.write_text("[shout] 喂\n", encoding="utf-8")
    result = run("call", "--simulate", str(bad), "--oracle-asr", "--config", str(fake_model), "--no-record")
    assert result.exit_code == 1 and "unknown marker '[shout]'" in result.output


def test_demo_lists_and_runs_a_scenario(tmp_path, fake_model, monkeypatch):
    result = run("demo", "--list")
    assert result.exit_code == 0 and "meeting" in result.output and "cantonese_callback" in result.output
    monkeypatch.chdir(tmp_path)
    result = run("demo", "--scenario", "complaint", "--oracle-asr", "--config", str(fake_model))
    assert result.exit_code == 0, result.output
    assert "outcome: do_not_call   grade: D   dnc: yes" in result.output
    assert (tmp_path / "demo.wav").is_file()
    result = run("demo", "--scenario", "nope")
    assert result.exit_code == 2 and "no demo scenario" in result.output
