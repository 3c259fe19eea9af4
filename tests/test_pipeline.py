"""The stage base: system events at once, data events in order, interruption handled once for all stages."""

import asyncio
from dataclasses import dataclass

import numpy as np

from edge.calls.events import (BotReply, DataEvent, Interruption, ReplyDone, ResumePlayback, Transcript,
                               Uninterruptible, Utterance)
from edge.calls.pipeline import Pipeline, Stage
from edge.calls.batcher import MicroBatcher


def run(coro, timeout=10.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Slow(Stage):
    """Takes a while over each data event (like a synthesizer), then passes it on."""

    name = "slow"

    def __init__(self):
        super().__init__()
        self.started = []
        self.cancelled = []

    async def process(self, event):
        self.started.append(event)
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            self.cancelled.append(event)
            raise
        await self.push(event)


class Collect(Stage):
    name = "collect"

    def __init__(self):
        super().__init__()
        self.seen = []

    async def process(self, event):
        self.seen.append(event)

    async def on_system(self, event, upstream):
        self.seen.append(event)
        await self.push(event, upstream)


def reply(turn):
    return BotReply(turn, f"line {turn}", [], "node", True, False)


def test_interruption_drops_queued_replies_and_the_one_in_progress_but_keeps_the_callers_words():
    async def go():
        slow, end = Slow(), Collect()
        pipeline = Pipeline([slow, end])
        pipeline.start()
        utterance = Utterance(np.zeros(320, np.int16), 0.0, 0.02)
        heard = Transcript("多少钱", utterance)
        for event in (reply(1), reply(2), heard, ReplyDone(2)):
            await pipeline.push(event)
        await asyncio.sleep(0.01)  # reply 1 is being worked on
        await pipeline.push(Interruption(3))
        await pipeline.push(reply(4))
        await pipeline.idle()
        await pipeline.stop()
        return slow, end

    slow, end = run(go())
    assert [type(e).__name__ for e in end.seen] == ["Interruption", "Transcript", "BotReply"]
    assert end.seen[2].turn == 4  # the reply after the barge-in survives; 1, 2 and ReplyDone(2) do not
    assert [e.turn for e in slow.cancelled] == [1]
    assert isinstance(Transcript("x", None), Uninterruptible) and not isinstance(reply(1), Uninterruptible)


def test_system_events_overtake_queued_data_and_travel_both_ways():
    async def go():
        first, slow, last = Collect(), Slow(), Collect()
        upstream_seen = []
        pipeline = Pipeline([first, slow, last], sink=lambda event, up: upstream_seen.append((event, up)))
        pipeline.start()
        await slow.receive(reply(1))
        await slow.receive(ResumePlayback())
        assert isinstance(last.seen[0], ResumePlayback)  # delivered before reply 1 finished
        await last.push(ResumePlayback(), upstream=True)
        await pipeline.idle()
        await pipeline.stop()
        return first, last, upstream_seen

    first, last, upstream_seen = run(go())
    assert [type(e).__name__ for e in last.seen] == ["ResumePlayback", "BotReply"]
    assert [type(e).__name__ for e in first.seen] == ["ResumePlayback"]
    assert [up for _, up in upstream_seen] == [False, True]  # out of the last stage, then of the first


def test_a_failing_event_does_not_stop_the_stage():
    @dataclass
    class Bad(DataEvent):
        pass

    class Fragile(Stage):
        async def process(self, event):
            if isinstance(event, Bad):
                raise ValueError("broken")
            await self.push(event)

    async def go():
        fragile, end = Fragile(), Collect()
        pipeline = Pipeline([fragile, end])
        pipeline.start()
        await pipeline.push(Bad())
        await pipeline.push(reply(1))
        await pipeline.idle()
        await pipeline.stop()
        return fragile, end

    fragile, end = run(go())
    assert fragile.errors == 1 and [e.turn for e in end.seen] == [1]


def test_batcher_runs_requests_of_many_calls_together_inline_and_on_threads():
    from concurrent.futures import ThreadPoolExecutor

    sizes = []

    def double(items):
        sizes.append(len(items))
        return [2 * x for x in items]

    async def go(executor):
        batcher = MicroBatcher(double, max_batch=8, max_wait_ms=0, executor=executor, inline=executor is None)
        return await asyncio.gather(*(batcher.submit(i) for i in range(20)))

    assert run(go(None)) == [2 * i for i in range(20)] and sizes == [8, 8, 4]
    sizes.clear()
    with ThreadPoolExecutor(1) as pool:
        assert run(go(pool)) == [2 * i for i in range(20)]
    assert sum(sizes) == 20 and max(sizes) == 8


def test_tts_stage_sends_cached_lines_with_the_first_answer_sentence_in_one_trip():
    """Script lines (prompt cache) come in one trip to the reply thread together with the first sentence
    of an answer after them; the rest of an answer a sentence per trip; the order is the reply's."""
    from types import SimpleNamespace

    from edge.calls.events import BotAudio
    from edge.calls.speak import TtsStage

    class Runtime:
        def __init__(self):
            self.trips = []

        def sentences(self, text, cached):
            return iter([SimpleNamespace(text=s, audio=np.ones(160, np.int16), cached=cached)
                         for s in text.split("|")])

        async def run(self, fn):
            batch, index = fn()
            self.trips.append([c.text for c in batch])
            return batch, index

    async def go():
        runtime, sink = Runtime(), Collect()
        pipeline = Pipeline([TtsStage(runtime), sink])
        pipeline.start()
        parts = [SimpleNamespace(text="l1|l2", kind="line"), SimpleNamespace(text="a1|a2|a3", kind="answer"),
                 SimpleNamespace(text="l3", kind="line")]
        await pipeline.push(BotReply(1, "...", parts, "node", True, False))
        await pipeline.idle()
        await pipeline.stop()
        return runtime.trips, [e for e in sink.seen if isinstance(e, BotAudio)]

    trips, audio = run(go())
    assert trips == [["l1", "l2", "a1"], ["a2"], ["a3"], ["l3"]]
    assert [a.text for a in audio] == ["l1", "l2", "a1", "a2", "a3", "l3"]
    assert [a.first for a in audio] == [True] + [False] * 5
