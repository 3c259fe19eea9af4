"""Simulated voice calls through the real built-in ASR (skipped, visibly, where the model is absent)."""

import asyncio

import pytest

from edge.calls.simcallee import read_callee_file
from edge.calls.simulate import simulate
from edge.config import DATA_DIR, DEFAULT_ASR_DIR, AsrConfig
from tests.fakes import voice_runtime

pytestmark = pytest.mark.skipif(not (DEFAULT_ASR_DIR / "manifest.json").is_file(),
                                reason=f"the built-in ASR model is not installed ({DEFAULT_ASR_DIR} has no "
                                       "manifest.json); it comes with branch `speech`")


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate, punctuation and spaces ignored."""
    ref = [c for c in reference if c.isalnum()]
    hyp = [c for c in hypothesis if c.isalnum()]
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1] / max(1, len(ref))


@pytest.fixture(scope="module")
def runtime(voice_cache):
    from edge import asr

    return voice_runtime(voice_cache, recognizer=asr.open(AsrConfig()))


@pytest.mark.parametrize("name", ["meeting", "cantonese_callback"])
def test_the_bot_hears_the_callee_through_the_built_in_asr(runtime, name):
    script = read_callee_file(DATA_DIR / "demo" / f"{name}.txt")
    call = asyncio.run(asyncio.wait_for(simulate(runtime, script), 300))
    said = [s.text for s in call.callee_log if s.kind in ("say", "interrupt")]
    heard = [t["speech"].get("heard", "") for t in call.report["turns"] if t["caller"]]
    assert call.report["voice"]["asr"]["backend"] == "sherpa-onnx"
    assert len(heard) >= len(said) - 1  # at most one line missed (a backchannel can be too short)
    errors = [min(cer(s, h) for h in heard) for s in said if len(s) > 2]
    assert sum(errors) / len(errors) <= 0.35, list(zip(said, heard, strict=False))
    for turn in call.report["turns"]:
        if turn["caller"] and not turn["ignored"]:
            assert turn["timings_ms"]["asr_final"] < 500


def test_the_warm_up_loads_each_languages_graph_before_the_first_call(runtime):
    # loaded on first use, a graph would cost a call's first known-language turn ~0.2 s
    assert runtime.recognizer.graphs_loaded == ["cmn", "yue"]
