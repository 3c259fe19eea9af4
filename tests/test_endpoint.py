"""Endpointing as a state machine, and the VAD in front of it (energy gate, silero via sherpa-onnx)."""

import numpy as np
import pytest

from edge.audio.endpoint import Endpointer, EndpointSettings, NoInputTimer, VadState
from edge.audio.vad import EnergyGate, SileroPool, VoiceDetector, frame_dbfs, silero_model_path


def run(endpointer, confidences):
    """[(frame index, kind, at_ms, reason)] for a confidence per 20 ms frame."""
    out = []
    for index, confidence in enumerate(confidences):
        out += [(index, e.kind, e.at_ms, e.reason) for e in endpointer.update(confidence)]
    return out


def test_a_turn_starts_after_start_ms_and_ends_after_the_trailing_silence():
    ep = Endpointer(EndpointSettings(start_ms=60, silence_ms=500))
    states = []
    events = []
    for index, c in enumerate([0, 0, 1, 1, 1, 1, 1, 0, 0] + [0] * 30):
        events += [(index, e.kind, e.at_ms) for e in ep.update(c)]
        states.append(ep.state)
    assert events == [(4, "start", 40), (31, "end", 140)]  # start stamped at its first speech frame
    assert states[2] is VadState.STARTING and states[4] is VadState.SPEAKING and states[8] is VadState.STOPPING
    assert states[-1] is VadState.QUIET


def test_clicks_shorter_than_start_ms_are_not_turns():
    ep = Endpointer(EndpointSettings(start_ms=60, start_gap_ms=40))
    assert run(ep, [1, 0, 0, 0, 1, 1, 0, 0, 0, 0] * 5) == []
    assert ep.state in (VadState.QUIET, VadState.STARTING)


def test_pauses_shorter_than_the_silence_stay_in_the_turn_and_silence_is_per_turn():
    ep = Endpointer(EndpointSettings(start_ms=40, silence_ms=500))
    speech = [1] * 10 + [0] * 20 + [1] * 10  # a 400 ms pause inside the turn
    assert [e[1] for e in run(ep, speech + [0] * 30)] == ["start", "end"]
    ep.set_silence(900)  # the next node asks for a phone number: people pause while giving it
    events = run(ep, speech + [0] * 40)
    assert [e[1] for e in events if e[1] == "end"] == []
    events = run(ep, [0] * 10)
    assert [(kind, at) for _, kind, at, _ in events] == [("end", 600 + 40 * 20 + 800)]


def test_a_monologue_is_cut_at_max_length_and_goes_on_as_a_new_turn():
    ep = Endpointer(EndpointSettings(start_ms=40, max_utterance_ms=2000))
    events = run(ep, [1] * 250)  # 5 s of speech
    kinds = [(kind, reason) for _, kind, _, reason in events]
    assert kinds == [("start", ""), ("end", "max_length"), ("start", ""), ("end", "max_length"), ("start", "")]
    assert ep.in_turn


def test_no_input_timer_fires_once():
    timer = NoInputTimer(6000)
    assert not timer.expired(10_000)  # not armed
    timer.arm(1000)
    assert not timer.expired(6900) and timer.expired(7000) and not timer.expired(9000)
    timer.arm(0)
    timer.disarm()
    assert not timer.expired(99_999)


def test_energy_gate_keeps_silence_and_line_noise_from_the_model():
    rng = np.random.default_rng(1)
    line_noise = (rng.standard_normal(320) * 32768 * 10 ** (-60 / 20)).astype(np.int16)
    assert frame_dbfs(np.zeros(320, np.int16)) == pytest.approx(-120, abs=1)
    assert frame_dbfs(np.full(320, 9000, np.int16)) < -100  # a DC offset alone is silence
    assert not EnergyGate(-45).passes(line_noise)
    detector = VoiceDetector(SileroPool(), EnergyGate(-45))
    assert [detector.confidence(line_noise) for _ in range(50)] == [0.0] * 50
    assert detector.stats.windows == 0 and detector.stats.gated == 50


def test_silero_hears_speech_not_noise_and_gives_its_state_back(speech):
    assert silero_model_path().name == "silero_vad.onnx"
    pool = SileroPool()
    detector = VoiceDetector(pool, EnergyGate(-45))
    frames = np.concatenate([np.zeros(8000, np.int16), speech, np.zeros(8000, np.int16)])
    frames = frames[:len(frames) // 320 * 320].reshape(-1, 320)
    flags = [detector.confidence(f) for f in frames]
    assert sum(flags) > 0.6 * len(speech) / 320  # most of the sentence
    assert flags[:20] == [0.0] * 20 and flags[-15:] == [0.0] * 15
    assert pool._free  # the gate closed after the speech: the detector went back to the pool
    rng = np.random.default_rng(2)
    noisy = VoiceDetector(pool, EnergyGate(-45))
    loud_noise = (rng.standard_normal((100, 320)) * 3000).astype(np.int16)
    assert sum(noisy.confidence(f) for f in loud_noise) <= 5  # white noise passes the gate, not silero
    offset = VoiceDetector(pool, EnergyGate(-45))
    shifted = np.clip(frames.astype(np.int32) + 6000, -32768, 32767).astype(np.int16)
    assert sum(offset.confidence(f) for f in shifted) >= 0.9 * sum(flags)  # DC offset changes nothing


def test_shared_silero_decides_as_sherpa_onnx_does(speech):
    """The per-call state on one shared session gives sherpa-onnx's VoiceActivityDetector decisions."""
    sherpa_onnx = pytest.importorskip("sherpa_onnx")
    from edge.audio.silero import SileroModel

    config = sherpa_onnx.VadModelConfig()
    config.silero_vad.model = str(silero_model_path())
    config.silero_vad.threshold = 0.5
    config.silero_vad.min_silence_duration = 0.0
    config.silero_vad.min_speech_duration = 0.0
    config.silero_vad.window_size = 512
    config.sample_rate = 16000
    reference = sherpa_onnx.VoiceActivityDetector(config, buffer_size_in_seconds=30)
    state = SileroModel(silero_model_path(), 0.5).state()
    rng = np.random.default_rng(3)
    audio = np.concatenate([np.zeros(3000, np.int16), speech, np.zeros(6000, np.int16), speech[:2500]])
    x = (audio.astype(np.float32) + rng.normal(0, 60, len(audio)).astype(np.float32)) / 32768
    theirs, ours = [], []
    for start in range(0, len(x) - 511, 512):
        reference.accept_waveform(x[start:start + 512])
        state.accept_waveform(x[start:start + 512])
        theirs.append(reference.is_speech_detected())
        ours.append(state.is_speech_detected())
        while not reference.empty():
            reference.pop()
    assert sum(ours) > 10 and ours == theirs


def test_batched_vad_across_calls_decides_as_each_call_alone(speech):
    """Calls scored together (one batch per loop turn, on the VAD thread) get the flags they get alone."""
    import asyncio

    frames = np.concatenate([np.zeros(4000, np.int16), speech, np.zeros(6000, np.int16)])
    frames = frames[:len(frames) // 320 * 320].reshape(-1, 320)
    calls = [frames, frames[7:], np.roll(frames, 13, axis=0)]
    alone = []
    for call in calls:
        detector = VoiceDetector(SileroPool(), EnergyGate(-45))
        alone.append([detector.confidence(f) for f in call])
    pool = SileroPool(offload=True)

    async def one(call):
        detector = VoiceDetector(pool, EnergyGate(-45))
        return [await detector.confidence_async(f) for f in call]

    async def together():
        return await asyncio.gather(*(one(c) for c in calls))

    try:
        batched = asyncio.run(together())
    finally:
        pool.close()
    assert batched == alone and sum(alone[0]) > 10
    assert pool.scorer.windows > pool.scorer.batches  # windows of different calls shared a batch


def test_a_frame_power_measured_by_the_server_gives_the_same_decisions(speech):
    """The server measures every call's frame power in one pass (edge.telephony.media.AudioBatcher);
    a detector given it decides as one that measures each frame itself."""
    frames = np.concatenate([np.zeros(4000, np.int16), speech, np.zeros(6000, np.int16)])
    frames = frames[:len(frames) // 320 * 320].reshape(-1, 320) + np.int16(40)  # a DC offset, removed
    x = frames.astype(np.float64)
    power = (x * x).mean(axis=1) - x.mean(axis=1) ** 2
    measured, given = VoiceDetector(SileroPool(), EnergyGate(-45)), VoiceDetector(SileroPool(), EnergyGate(-45))
    ours = [measured.confidence(f) for f in frames]
    theirs = [given.confidence(f, float(p)) for f, p in zip(frames, power)]
    assert ours == theirs and sum(ours) > 10
    assert vars(measured.stats) == vars(given.stats) and given.stats.gated > 10


def test_a_quiet_caller_is_one_turn_not_pieces(speech):
    """A quiet line dips under the energy gate between syllables. Silero keeps its state through short
    dips (EnergyGate.hold_ms): when each dip restarted it cold, this sentence at -24 dB came out as three
    turns, the middle one 80 ms long, and most of its words were never recognized."""
    rng = np.random.default_rng(5)
    x = np.concatenate([np.zeros(8000), speech * 10 ** (-24 / 20), np.zeros(16000)])
    x = x + rng.standard_normal(len(x)) * 32768 * 10 ** (-60 / 20)  # line noise, under the gate
    frames = x.astype(np.int16)[:len(x) // 320 * 320].reshape(-1, 320)
    detector, endpointer = VoiceDetector(SileroPool(), EnergyGate(-45)), Endpointer(EndpointSettings())
    events = [(e.kind, e.at_ms) for f in frames for e in endpointer.update(detector.confidence(f))]
    speech_ms = len(speech) * 1000 // 16000
    assert [kind for kind, _ in events] == ["start", "end"]
    assert events[0][1] < 1000 and events[1][1] >= 500 + speech_ms - 300
    assert detector.stats.gated > 0  # the silence after the hold still skips the model
