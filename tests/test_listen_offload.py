"""The listening half on a server: VAD scored on its own thread without a round trip per window, and
recognition started early, during the endpoint's silence."""

import asyncio
from types import SimpleNamespace

import numpy as np
import pytest

from edge.audio.vad import EnergyGate, SileroPool, VoiceDetector
from edge.calls.events import AudioIn, CallEnded, EarlyUtterance, Transcript, Utterance, UserStoppedSpeaking
from edge.calls.listen import AsrStage, VadStage
from edge.calls.pipeline import Pipeline
from edge.calls.runtime import Heard
from edge.config import AsrConfig, CallConfig
from tests.test_pipeline import Collect


def run(coro, timeout=30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def caller_audio(speech, turns=2):
    """Quiet, then `turns` times (speech, 0.9 s of quiet): 320-sample frames."""
    quiet = np.random.default_rng(0).normal(0, 20, 4800).astype(np.int16)
    parts = [quiet]
    for _ in range(turns):
        parts += [speech, quiet, quiet, quiet]
    pcm = np.concatenate(parts)
    return pcm[:len(pcm) // 320 * 320].reshape(-1, 320)


def turns_of(events):
    return [(type(e).__name__, round(e.start_s, 2), round(e.end_s, 2), len(e.pcm)) for e in events
            if isinstance(e, Utterance)]


async def listen(pool, frames, early_ms=0, wait_each=False):
    """Push a call's frames through a VadStage as fast as they come (a server that fell behind does the
    same: the frames are queued), then let the scoring finish."""
    vad, sink = VadStage(VoiceDetector(pool, EnergyGate(-45)), CallConfig(), early_ms=early_ms), Collect()
    pipeline = Pipeline([vad, sink])
    pipeline.start()
    for index, frame in enumerate(frames):
        await pipeline.push(AudioIn(frame, index * 0.02))
        if wait_each:
            await asyncio.sleep(0)
    while vad._fifo or vad._waiting or vad._draining:
        await asyncio.sleep(0.005)
    await pipeline.idle()
    await pipeline.stop()
    return sink.seen, vad


def test_offloaded_vad_keeps_frame_order_and_decides_as_inline(speech):
    """Three calls' frames pushed at once: each call's turns are those it gets scored inline, one frame at
    a time; the thread scored windows of different calls together, and more than one window of a call
    was in flight at once (no round trip per window)."""
    frames = caller_audio(speech)
    calls = [frames, frames[9:], np.roll(frames, 17, axis=0)]
    inline = SileroPool()
    alone = [turns_of(run(listen(inline, call))[0]) for call in calls]
    pool = SileroPool(offload=True)

    async def together():
        stages = [(VadStage(VoiceDetector(pool, EnergyGate(-45)), CallConfig()), Collect()) for _ in calls]
        pipelines = [Pipeline(list(pair)) for pair in stages]
        for pipeline in pipelines:
            pipeline.start()
        for index in range(len(frames)):  # a server's tick: every call's frame, none waiting for another
            for call, pipeline in zip(calls, pipelines):
                if index < len(call):
                    await pipeline.push(AudioIn(call[index], index * 0.02))
            if index % 5 == 0:
                await asyncio.sleep(0)
        while any(vad._fifo or vad._waiting or vad._draining for vad, _ in stages):
            await asyncio.sleep(0.005)
        for pipeline in pipelines:
            await pipeline.idle()
            await pipeline.stop()
        return [sink.seen for _, sink in stages]

    try:
        results = run(together())
    finally:
        pool.close()
    assert [turns_of(seen) for seen in results] == alone
    assert all(len(turns) == 2 for turns in alone)
    assert pool.scorer.windows > 1.5 * pool.scorer.batches  # windows of different calls shared batches


def test_a_call_that_ends_mid_speech_leaves_the_other_calls_scored(speech):
    """One call ends (its detector closed, its futures abandoned) while its windows are queued; the
    other call's turns are unchanged."""
    frames = caller_audio(speech)
    alone = turns_of(run(listen(SileroPool(), frames))[0])
    pool = SileroPool(offload=True)

    async def main():
        vad = VadStage(VoiceDetector(pool, EnergyGate(-45)), CallConfig())
        doomed = Pipeline([vad, Collect()])
        doomed.start()
        other = asyncio.ensure_future(listen(pool, frames))
        for index, frame in enumerate(frames[:60]):
            await doomed.push(AudioIn(frame, index * 0.02))
        await doomed.push(CallEnded("remote_hangup", 1.2))
        await doomed.stop()
        return await other

    try:
        seen, _ = run(main())
    finally:
        pool.close()
    assert turns_of(seen) == alone


def test_early_utterance_is_the_utterance_the_turn_ends_with(speech):
    """With early_ms, a pause sends the utterance the turn would be; when the silence holds, the
    Utterance that follows is exactly it (same audio), and it came early_ms into the silence."""
    frames = caller_audio(speech, turns=1)
    seen, _ = run(listen(SileroPool(), frames, early_ms=200))
    early = [e.utterance for e in seen if isinstance(e, EarlyUtterance) and e.utterance is not None]
    final = [e for e in seen if isinstance(e, Utterance)]
    stopped = [e for e in seen if isinstance(e, UserStoppedSpeaking)]
    assert len(final) == 1 and early and stopped
    last = early[-1]
    assert (last.start_s, last.end_s, last.over_bot) == (final[0].start_s, final[0].end_s, final[0].over_bot)
    assert np.array_equal(last.pcm, final[0].pcm)
    index = next(i for i, e in enumerate(seen) if e is final[0])
    assert seen.index(next(e for e in seen if isinstance(e, EarlyUtterance) and e.utterance is last)) < index
    without, _ = run(listen(SileroPool(), frames))
    assert turns_of(without) == turns_of(seen) and not any(isinstance(e, EarlyUtterance) for e in without)


class CountingRuntime:
    """recognize() counts its calls and can be held; classify() and run() as the runtime's."""

    def __init__(self):
        self.heard = []
        self.release = asyncio.Event()
        self.release.set()
        self.cues = None
        self.config = SimpleNamespace(asr=AsrConfig())

    async def recognize(self, pcm, language=None):
        self.heard.append(len(pcm))
        await self.release.wait()
        return Heard(f"heard {len(pcm)}")

    async def classify(self, text):
        return SimpleNamespace(labels=["x"], text=text)


def utterance(samples, end_s=1.0):
    return Utterance(np.ones(samples, np.int16), 0.5, end_s, False, "silence", 500)


async def asr_with_a_turn_ending_at_its_pause(runtime):
    """An early-recognizing AsrStage that has heard one turn end at the pause it was guessed at."""
    asr, sink = AsrStage(runtime, early=True), Collect()
    pipeline = Pipeline([asr, sink])
    pipeline.start()
    first = utterance(3200)
    await pipeline.push(EarlyUtterance(first))
    await asyncio.sleep(0.01)
    await pipeline.push(first)
    await pipeline.idle()
    return asr, sink, pipeline


def test_asr_stage_uses_the_early_result_and_recognizes_a_turn_that_goes_on_whole():
    async def main():
        runtime = CountingRuntime()
        # the turn ended at that pause: the early result is the result
        asr, sink, pipeline = await asr_with_a_turn_ending_at_its_pause(runtime)
        # A pause, then the caller goes on: the candidate is dropped and the whole turn is recognized when
        # it ends (never pieces cut at pauses: words across a cut are lost)
        await pipeline.push(EarlyUtterance(utterance(1600, 0.8)))
        await asyncio.sleep(0.01)
        await pipeline.push(EarlyUtterance(None))
        await pipeline.push(utterance(4800, 1.6))
        await pipeline.idle()
        # A candidate for another turn is not taken for this one
        await pipeline.push(EarlyUtterance(Utterance(np.ones(800, np.int16), 3.0, 3.2, False, "silence", 500)))
        await asyncio.sleep(0.01)
        await pipeline.push(Utterance(np.ones(2400, np.int16), 4.0, 4.4, False, "silence", 500))
        await pipeline.idle()
        await pipeline.stop()
        return runtime, asr, sink

    runtime, asr, sink = run(main())
    transcripts = [e for e in sink.seen if isinstance(e, Transcript)]
    assert [t.text for t in transcripts] == ["heard 3200", "heard 4800", "heard 2400"]
    assert transcripts[0].prepared == {"intents": SimpleNamespace(labels=["x"], text="heard 3200")}
    assert transcripts[1].prepared is None and transcripts[2].prepared is None
    assert runtime.heard == [3200, 1600, 4800, 800, 2400]
    assert (asr.early_used, asr.early_dropped) == (1, 1)
    assert not any(isinstance(e, EarlyUtterance) for e in sink.seen), "early utterances stop at the ASR stage"


def test_a_failed_candidate_is_dropped_and_a_failed_turn_is_unreadable():
    class Failing(CountingRuntime):
        async def recognize(self, pcm, language=None):
            if len(pcm) in (1600, 4000):
                raise RuntimeError("decoder crashed")
            return await super().recognize(pcm, language)

    async def main():
        runtime = Failing()
        asr, sink = AsrStage(runtime, early=True), Collect()
        pipeline = Pipeline([asr, sink])
        pipeline.start()
        await pipeline.push(EarlyUtterance(utterance(1600, 0.8)))  # its decode fails, but the caller goes on
        await asyncio.sleep(0.01)
        await pipeline.push(EarlyUtterance(None))
        await pipeline.push(utterance(4800, 1.6))
        await pipeline.push(utterance(4000, 2.0))  # fails: heard as nothing
        await pipeline.push(Utterance(np.ones(2400, np.int16), 4.0, 4.4, False, "silence", 500))
        await pipeline.idle()
        await pipeline.stop()
        return sink

    sink = run(main())
    assert [e.text for e in sink.seen if isinstance(e, Transcript)] == ["heard 4800", "", "heard 2400"]


@pytest.mark.parametrize("early_ms", [50, 6000])
def test_early_asr_ms_is_checked(early_ms):
    from edge.errors import ConfigError

    with pytest.raises(ConfigError, match="early_asr_ms"):
        CallConfig(early_asr_ms=early_ms).validate()


def test_no_candidate_is_made_while_other_turns_wait_for_recognition():
    class Busy(CountingRuntime):
        recognition_backlog = 3

    async def main():
        runtime = Busy()
        asr, sink, pipeline = await asr_with_a_turn_ending_at_its_pause(runtime)
        await pipeline.stop()
        return runtime, asr, sink

    runtime, asr, sink = run(main())
    assert [e.text for e in sink.seen if isinstance(e, Transcript)] == ["heard 3200"]
    assert runtime.heard == [3200]  # decoded once, when the turn ended
    assert (asr.early_used, asr.early_dropped, asr.early_shed) == (0, 0, 1)
