"""Whole simulated voice calls, audio in to audio out: the callee speaks through espeak and a phone
line, the bot hears through the (fake) recognizer, the real VAD and endpointing, and answers through
the real TTS. The fake recognizer hears exactly what the callee said, so these check the call loop."""

import asyncio
import dataclasses
import json

import numpy as np
import pytest

from edge.calls import Records
from edge.calls.simcallee import parse_callee_lines, read_callee_file
from edge.calls.simulate import simulate
from edge.config import DATA_DIR
from tests.fakes import FakeRecognizer, voice_runtime

DEMO = DATA_DIR / "demo"


@pytest.fixture(scope="module")
def base_runtime(voice_cache):
    return voice_runtime(voice_cache)


@pytest.fixture
def runtime(base_runtime):
    """The shared models with a fresh fake recognizer (it holds the callee's lines)."""
    return dataclasses.replace(base_runtime, recognizer=FakeRecognizer(), _batchers={})


def call(runtime, script, **options):
    if isinstance(script, list):
        script = parse_callee_lines(["# lead: 张总,华星科技,13800000000", "# now: 2025-03-05T14:20", *script])
    return asyncio.run(asyncio.wait_for(simulate(runtime, script, **options), 120))


def expected(script):
    return dict(item.split("=", 1) for item in script.directives["expect"].split())


def spans(result, min_gap_s=0.3):
    return result.simulation.bot_spans(min_gap_s)


def test_meeting_booked_with_a_backchannel_and_a_barge_in(runtime, tmp_path):
    records = Records.open(tmp_path / "calls.db")
    script = read_callee_file(DEMO / "meeting.txt")
    result = call(runtime, script, records=records)
    report, want = result.report, expected(script)
    assert (report["outcome"], report["grade"]) == (want["outcome"], want["grade"]) == ("meeting_booked", "A")
    assert [(t["kind"], t["due"]) for t in report["tasks"]] == [("meeting", want["due"])]
    turns = report["turns"]
    backchannel = next(t for t in turns if t["caller"] == "嗯")
    assert backchannel["ignored"] and backchannel["overlap"] and not backchannel["bot"]
    barge = next(t for t in turns if "多少钱" in t["caller"])
    assert barge["barge_in"] and barge["answers"] and barge["timings_ms"]["endpoint_silence"] == 300
    time_turn = next(t for t in turns if t["caller"] == "明天下午三点")
    assert time_turn["timings_ms"]["endpoint_silence"] == 900  # a node asking for a time waits longer
    answered = [t for t in turns if not t["ignored"]]
    for turn in answered:  # the timing marks, in order
        marks = turn["timings_ms"]
        assert 0 <= marks["asr_final"] <= marks["nlu_done"] <= marks["reply_chosen"] <= marks["first_audio"] < 2000
    assert report["voice"]["end_reason"] == "local_hangup"  # the bot said goodbye and hung up
    db = records.db
    assert db["turns"].count == len(turns) and db["outcomes"].count == 1
    row = next(db.query("select timings, mood, speech from turns where idx = 1"))
    assert {"asr_final", "first_audio"} <= set(json.loads(row["timings"])) and row["mood"] == "neutral"
    assert json.loads(row["speech"])["asr"]["backend"] == "oracle"


def test_barge_in_stops_the_bot_within_200_ms_and_drops_the_rest(runtime):
    result = call(runtime, ["喂，你好", "我们有三十个销售", "[interrupt]你们这个多少钱", "[hangup]"])
    interrupt = next(s for s in result.callee_log if s.kind == "interrupt")
    cut = next(span for span in spans(result) if span[0] < interrupt.at_s < span[1] + 0.3)
    assert 0 < cut[1] - interrupt.at_s <= 0.2, (cut, interrupt.at_s)
    pitch_line = runtime.synthesizer.synthesize(result.report["turns"][1]["bot"])
    assert cut[1] - cut[0] < len(pitch_line) / 16000 - 1.0  # most of the pitch was never played
    turn = result.report["turns"][2]
    assert turn["barge_in"] and turn["bot"].startswith("我们按账号收费")
    assert result.stats["pauses"] >= 1


def test_a_backchannel_neither_interrupts_nor_counts_as_a_turn(runtime):
    result = call(runtime, ["喂，你好", "[interrupt]嗯", "我们有三十个销售", "[hangup]"])
    report = result.report
    assert [t["ignored"] for t in report["turns"]] == [False, True, False]
    line = np.concatenate([c.audio for c in runtime.synthesizer.stream(report["turns"][0]["bot"])])
    said = next(s for s in result.callee_log if s.kind == "interrupt")
    start = next(a for a, b in spans(result) if a > 15)
    window = result.bot_audio[int(start * 16000):int((said.at_s + 12) * 16000)].reshape(-1, 320)
    played = (np.abs(window).max(axis=1) > 0).sum() * 0.02
    sounding = (np.abs(line[:len(line) // 320 * 320].reshape(-1, 320)).max(axis=1) > 0).sum() * 0.02
    assert played == pytest.approx(sounding, abs=0.2)  # paused briefly, then all of it was said
    assert result.stats["pauses"] == 1
    assert report["outcome"] == "incomplete"


@pytest.mark.parametrize("name", ["cantonese_callback", "knowledge", "complaint", "impatient"])
def test_demo_scenarios_end_as_expected(runtime, name, tmp_path):
    records = Records.open(tmp_path / "calls.db")
    script = read_callee_file(DEMO / f"{name}.txt")
    report = call(runtime, script, records=records).report
    want = expected(script)
    assert (report["outcome"], report["grade"]) == (want["outcome"], want["grade"])
    if "task" in want:
        assert [t["kind"] for t in report["tasks"]] == [want["task"]]
        if "due" in want:
            assert report["tasks"][0]["due"] == want["due"]
    if name == "knowledge":
        assert [t["answers"] != [] for t in report["turns"][:3]] == [False, True, True]
        assert report["tasks"][0]["channel"] == "wechat" and report["tasks"][0]["contact"] == "13700000000"
    if name == "complaint":
        assert report["dnc"] and [r["key"] for r in records.db["dnc"].rows] == ["+8613600000000"]  # DNC keys are E.164
    if name == "impatient":
        moods = [t["mood"] for t in report["turns"]]
        assert "impatient" in moods and report["turns"][1]["node"] == "ask_callback"


def test_silence_gets_a_rephrase_then_a_polite_end(runtime):
    script = read_callee_file(DEMO / "silence.txt")
    result = call(runtime, script)
    report = result.report
    assert report["outcome"] == "no_response" and report["grade"] == "D"
    no_inputs = [t for t in report["turns"] if not t["caller"]]
    assert len(no_inputs) == 2 and all("no_input_at_s" in t["timings_ms"] for t in no_inputs)
    first = no_inputs[0]["timings_ms"]["no_input_at_s"]
    assert 6.0 <= first - spans(result)[0][1] <= 6.5  # the no-input time after the opening ended
    assert report["voice"]["end_reason"] == "local_hangup"


def test_hang_up_mid_sentence_leaves_an_incomplete_record(runtime, tmp_path):
    records = Records.open(tmp_path / "calls.db")
    result = call(runtime, read_callee_file(DEMO / "hangup.txt"), records=records)
    report = result.report
    assert report["outcome"] == "incomplete" and report["voice"]["end_reason"] == "remote_hangup"
    hangup = next(s for s in result.callee_log if s.kind == "hangup")
    assert np.abs(result.bot_audio[int((hangup.at_s - 0.1) * 16000):]).max() > 0  # the bot was mid-line
    assert records.db["outcomes"].count == 1 and records.db["turns"].count == 1
    assert records.report(report["call_id"])["outcome"] == "incomplete"


def test_the_sherpa_onnx_path_and_batching_across_concurrent_calls(base_runtime, tmp_path):
    """Three calls at once through a real sherpa-onnx recognizer (a tiny hand-built CTC model that
    writes 嗯 for each stretch of speech): decodes and intent predictions are batched across calls."""
    pytest.importorskip("onnx")
    from edge import asr
    from edge.config import AsrConfig
    from tests.helpers.fake_models import fake_ctc_dir

    recognizer = asr.open(AsrConfig(model=fake_ctc_dir(tmp_path / "ctc")))
    runtime = dataclasses.replace(base_runtime, recognizer=recognizer, _batchers={})
    script = parse_callee_lines(["# now: 2025-03-05T14:20", "喂，你好", "[hangup]"])

    async def three():
        return await asyncio.gather(*(simulate(runtime, script, call_id=f"sim-{i}") for i in range(3)))

    calls = asyncio.run(asyncio.wait_for(three(), 120))
    for result in calls:
        (turn,) = result.report["turns"]
        assert turn["speech"]["heard"] and set(turn["speech"]["heard"]) <= {"嗯"}
        assert result.report["voice"]["asr"]["backend"] == "sherpa-onnx" and not result.stats["stage_errors"]
        assert turn["timings_ms"]["asr_final"] < 1000
    asr_batch, intent_batch = runtime._batchers["asr"], runtime._batchers["intent"]
    assert (asr_batch.stats.items, asr_batch.stats.batches) == (3, 1)  # the three calls' turns decoded in one go
    assert (intent_batch.stats.items, intent_batch.stats.batches) == (3, 1)


def test_one_misheard_syllable_over_the_bot_does_not_cut_it(runtime):
    class Mishears(FakeRecognizer):
        def _take(self, seconds):
            text = super()._take(seconds)
            return "可" if text == "嗯" else text  # a weak recognizer turns the backchannel into a syllable

    mishearing = dataclasses.replace(runtime, recognizer=Mishears(), _batchers={})
    result = call(mishearing, ["喂，你好", "[interrupt]嗯", "我们有三十个销售", "[hangup]"])
    turns = result.report["turns"]
    assert [t["caller"] for t in turns] == ["喂，你好", "我们有三十个销售"] and not any(t["barge_in"] for t in turns)
    assert result.stats["pauses"] == 1 and turns[1]["node"] == "pitch"
