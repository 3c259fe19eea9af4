"""Bad audio on the line: clipping, DC offset, pure noise, long silence, a 10-minute monologue.
Whatever comes in, the call ends cleanly, with a record, and nothing crashes."""

import asyncio
import copy
import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from edge.audio.line import LineSettings
from edge.calls import Records
from edge.calls.session import CallLoop
from edge.calls.simcallee import CalleeTiming, SimulatedCallee, parse_callee_lines
from edge.telephony.simulator import CallSimulator
from edge.tts.espeak import EspeakSettings, speak
from tests.fakes import FakeRecognizer, voice_runtime

START = datetime(2025, 3, 5, 14, 20, tzinfo=ZoneInfo("Asia/Shanghai"))


@pytest.fixture(scope="module")
def base_runtime(voice_cache):
    return voice_runtime(voice_cache, max_call_s=120)


@pytest.fixture
def runtime(base_runtime):
    return dataclasses.replace(base_runtime, recognizer=FakeRecognizer(), _batchers={})


class Distorted:
    """Whatever the callee sends, passed through `change` (the whole call: speech and pauses)."""

    def __init__(self, callee, change):
        self.callee, self.change = callee, change

    def next_frame(self, bot_frame):
        frame = self.callee.next_frame(bot_frame)
        return self.change(frame) if isinstance(frame, np.ndarray) else frame


def run_call(runtime, lines, records, *, change=None, line=None, audio_for=None, timing=None, max_s=300.0,
             on_say=None):
    callee = SimulatedCallee(parse_callee_lines(lines).lines, line=line, on_say=on_say or runtime.recognizer.said,
                             audio_for=audio_for, timing=timing)
    caller = Distorted(callee, change) if change else callee
    loop = CallLoop(runtime, records, lead_for=lambda info: {"lead_name": "张总", "phone": "13800000000"},
                    start_for=lambda info: START)
    simulation = asyncio.run(asyncio.wait_for(
        CallSimulator(reactive=caller, max_duration_s=max_s).run(loop), 300))
    assert simulation.handler_error is None
    result = loop.results["sim-0001"]
    assert records.db["outcomes"].count == 1 and not result.stats["stage_errors"]
    return result.report, simulation


def clip(frame):
    return np.clip(frame.astype(np.int32) * 12, -32768, 32767).astype(np.int16)


def test_clipped_speech_still_makes_a_call(runtime, tmp_path):
    records = Records.open(tmp_path / "calls.db")
    report, _ = run_call(runtime, ["喂，你好", "我们有三十个销售", "不需要了"], records, change=clip)
    assert [t["caller"] for t in report["turns"]][:2] == ["喂，你好", "我们有三十个销售"]
    assert report["outcome"] in ("refused", "incomplete") and records.db["turns"].count >= 3


def test_a_dc_offset_on_the_line_changes_nothing(runtime, tmp_path):
    records = Records.open(tmp_path / "calls.db")
    offset = lambda f: np.clip(f.astype(np.int32) + 9000, -32768, 32767).astype(np.int16)  # noqa: E731
    report, _ = run_call(runtime, ["喂，你好", "我在开会，明天上午十点再打吧"], records, change=offset)
    assert report["outcome"] == "callback_booked" and report["tasks"][0]["due"] == "2025-03-06T10:00:00+08:00"


def test_pure_noise_is_no_caller(runtime, tmp_path):
    records = Records.open(tmp_path / "calls.db")
    rng = np.random.default_rng(3)
    noise = lambda f: (rng.standard_normal(320) * 4000).astype(np.int16)  # noqa: E731  ~-18 dBFS hiss
    report, simulation = run_call(runtime, [], records, change=noise, timing=CalleeTiming(linger_s=60))
    assert report["outcome"] == "no_response" and all(not t["caller"] for t in report["turns"])
    assert report["voice"]["end_reason"] == "local_hangup" and simulation.duration_s < 60


def test_sixty_seconds_of_silence(runtime, tmp_path):
    records = Records.open(tmp_path / "calls.db")
    report, simulation = run_call(runtime, [], records, line=LineSettings(noise_dbfs=None),
                                  timing=CalleeTiming(linger_s=60))
    assert not np.any(simulation.caller_audio)  # digital silence all call long
    assert report["outcome"] == "no_response" and report["voice"]["end_reason"] == "local_hangup"
    assert [bool(t["caller"]) for t in report["turns"]] == [False, False]


@pytest.mark.slow
def test_a_ten_minute_monologue_ends_cleanly(runtime, tmp_path):
    config = copy.deepcopy(runtime.config)
    config.call.max_call_s = 600  # the default: the caller is still talking when it runs out
    runtime = dataclasses.replace(runtime, config=config, _batchers={})
    records = Records.open(tmp_path / "calls.db")
    sentence = speak("我跟你说，我们公司的情况是这样的，销售团队有三十多个人，每天都要跑客户。",
                     EspeakSettings(voice="cmn+m7", rate_wpm=190))
    monologue = np.tile(sentence, int(600 * 16000 / len(sentence)) + 1)[:600 * 16000]
    heard_once = lambda text, seconds: runtime.recognizer.said(text)  # noqa: E731  the first cut hears it
    report, simulation = run_call(runtime, ["我跟你说，我们公司的情况是这样的"], records,
                                  audio_for=lambda text: monologue, max_s=900, on_say=heard_once)
    assert report["voice"]["end_reason"] == "max_call_length" and simulation.duration_s == pytest.approx(600, abs=1)
    assert report["outcome"] == "incomplete" and records.db["turns"].count >= 1
    cut = [t for t in report["turns"] if t.get("speech", {}).get("cut") == "max_length"]
    assert cut  # the endpointer cut the monologue at call.max_utterance_ms
