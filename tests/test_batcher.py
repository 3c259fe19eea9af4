"""The micro-batcher: order, real batching under concurrency, limits, errors kept to their batch, cancellation."""

import asyncio
import threading
import time

import pytest

from edge.calls.batcher import IntentBatcher, MicroBatcher
from edge.errors import BatcherClosedError, BatchError, BatchTimeoutError, ConfigError, InputError
from tests.fakes import KeywordClassifier


def run(coro, timeout=10.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Recorder:
    """A batch function that records each batch and can sleep, raise or hang."""

    def __init__(self, sleep_s=0.0, fail_on=None, hang_first=False):
        self.batches: list[list] = []
        self.sleep_s = sleep_s
        self.fail_on = fail_on
        self.release = threading.Event()
        self.hang_first = hang_first

    def __call__(self, items):
        self.batches.append(list(items))
        if self.hang_first and len(self.batches) == 1:
            self.release.wait(5)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.fail_on is not None and self.fail_on in items:
            raise ValueError(f"poisoned by {self.fail_on}")
        return [item * 10 for item in items]


def test_results_come_back_to_their_callers_in_order():
    async def main():
        fn = Recorder(sleep_s=0.005)
        batcher = MicroBatcher(fn, max_batch=8, max_wait_ms=1)
        results = await asyncio.gather(*(batcher.submit(i) for i in range(50)))
        await batcher.close()
        return fn, results, batcher.stats

    fn, results, stats = run(main())
    assert results == [i * 10 for i in range(50)]
    flat = [item for batch in fn.batches for item in batch]
    assert flat == list(range(50)), "batches keep submission order"
    assert all(len(batch) <= 8 for batch in fn.batches) and stats.largest_batch == 8
    assert stats.items == 50 and stats.batches == len(fn.batches) < 50


def test_concurrent_callers_share_calls_of_fn():
    """40 'calls' each sending a turn every ~10 ms for a while: fn runs far fewer times than there are items."""
    async def caller(batcher, index, out):
        for turn in range(5):
            out.append(await batcher.submit(index * 100 + turn))
            await asyncio.sleep(0.01)

    async def main():
        fn = Recorder(sleep_s=0.01)  # a model call that costs 10 ms whatever the batch size
        batcher = MicroBatcher(fn, max_batch=32, max_wait_ms=2)
        out: list[int] = []
        await asyncio.gather(*(caller(batcher, i, out) for i in range(40)))
        await batcher.close()
        return fn, out, batcher.stats

    fn, out, stats = run(main())
    assert len(out) == 200
    assert stats.batches <= 40, f"{stats.batches} batches for 200 items: no batching happened"
    assert stats.largest_batch >= 16
    assert all(len(batch) <= 32 for batch in fn.batches)


def test_lone_item_waits_at_most_max_wait():
    async def main():
        batcher = MicroBatcher(Recorder(), max_wait_ms=30)
        started = time.perf_counter()
        await batcher.submit(1)
        took = time.perf_counter() - started
        await batcher.close()
        return took

    assert 0.025 <= run(main()) < 0.5


def test_an_exception_fails_only_the_poisoned_item():
    async def main():
        fn = Recorder(fail_on=7)
        batcher = MicroBatcher(fn, max_batch=16, max_wait_ms=5)
        results = await asyncio.gather(*(batcher.submit(i) for i in range(10)), return_exceptions=True)
        after = await batcher.submit(3)
        await batcher.close()
        return results, after, batcher.stats

    results, after, stats = run(main())
    assert isinstance(results[7], BatchError) and "poisoned by 7" in str(results[7])
    assert isinstance(results[7].__cause__, ValueError)
    assert [r for i, r in enumerate(results) if i != 7] == [i * 10 for i in range(10) if i != 7]
    assert after == 30 and stats.errors >= 1


def test_without_isolation_the_failing_batch_fails_and_the_next_batch_works():
    async def main():
        fn = Recorder(fail_on=2)
        batcher = MicroBatcher(fn, max_batch=16, max_wait_ms=5, isolate_errors=False)
        first = await asyncio.gather(*(batcher.submit(i) for i in range(4)), return_exceptions=True)
        second = await asyncio.gather(*(batcher.submit(i) for i in (5, 6)))
        await batcher.close()
        return first, second

    first, second = run(main())
    assert all(isinstance(r, BatchError) for r in first)
    assert second == [50, 60]


def test_a_wrong_number_of_results_is_a_batch_error():
    async def main():
        batcher = MicroBatcher(lambda items: items[:-1], max_wait_ms=5, isolate_errors=False)
        results = await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)
        await batcher.close()
        return results

    assert all(isinstance(r, BatchError) and "2 results for 3 items" in str(r) for r in run(main()))


def test_a_hung_batch_is_cut_off_and_later_batches_run_on_a_fresh_pool():
    fn = Recorder(hang_first=True)

    async def main():
        batcher = MicroBatcher(fn, max_wait_ms=0, batch_timeout_s=0.2, item_timeout_s=3)
        started = time.perf_counter()
        with pytest.raises(BatchTimeoutError, match="cut off"):
            await batcher.submit(1)
        cut_after = time.perf_counter() - started
        later = await batcher.submit(2)
        await batcher.close()
        return cut_after, later, batcher.stats

    try:
        cut_after, later, stats = run(main())
    finally:
        fn.release.set()
    assert 0.15 < cut_after < 1.0
    assert later == 20 and stats.hung == 1


def test_item_timeout_and_backpressure():
    fn = Recorder(hang_first=True)

    async def main():
        # fn blocks; the queue holds 2; everyone gives up after 0.2 s with a clear error.
        batcher = MicroBatcher(fn, max_batch=1, max_wait_ms=0, max_queue=2, item_timeout_s=0.2,
                               batch_timeout_s=5)
        results = await asyncio.gather(*(batcher.submit(i) for i in range(6)), return_exceptions=True)
        stats = batcher.stats
        fn.release.set()
        await batcher.close()
        return results, stats

    try:
        results, stats = run(main())
    finally:
        fn.release.set()
    assert all(isinstance(r, BatchTimeoutError) and "overloaded or hung" in str(r) for r in results)
    assert stats.timeouts == 6
    assert len(fn.batches) == 1, "items whose callers gave up are not run"


def test_a_cancelled_caller_leaves_the_others_alone():
    async def main():
        fn = Recorder(sleep_s=0.05)
        batcher = MicroBatcher(fn, max_batch=4, max_wait_ms=0)
        first = asyncio.create_task(batcher.submit(1))  # runs alone, 50 ms
        await asyncio.sleep(0.01)
        doomed = asyncio.create_task(batcher.submit(2))  # queued behind it
        kept = asyncio.create_task(batcher.submit(3))
        await asyncio.sleep(0.01)
        doomed.cancel()
        results = await asyncio.gather(first, kept)
        with pytest.raises(asyncio.CancelledError):
            await doomed
        await batcher.close()
        return fn, results, batcher.stats

    fn, results, stats = run(main())
    assert results == [10, 30]
    assert [2] not in fn.batches and all(2 not in batch for batch in fn.batches)
    assert stats.skipped == 1


def test_close_fails_waiting_callers_and_refuses_new_ones():
    fn = Recorder(hang_first=True)

    async def main():
        batcher = MicroBatcher(fn, max_batch=1, max_wait_ms=0, batch_timeout_s=5)
        running = asyncio.create_task(batcher.submit(1))
        queued = asyncio.create_task(batcher.submit(2))
        await asyncio.sleep(0.05)
        await batcher.close()
        results = await asyncio.gather(running, queued, return_exceptions=True)
        with pytest.raises(BatcherClosedError, match="closed"):
            await batcher.submit(3)
        return results

    try:
        results = run(main())
    finally:
        fn.release.set()
    assert all(isinstance(r, BatcherClosedError) for r in results)


def test_limits_are_checked():
    with pytest.raises(ConfigError, match="max_batch"):
        MicroBatcher(len, max_batch=0)
    with pytest.raises(ConfigError, match="timeouts"):
        MicroBatcher(len, item_timeout_s=0)


def test_intent_batcher_shares_predict_across_calls():
    async def main():
        model = KeywordClassifier()
        batcher = IntentBatcher(model, max_wait_ms=5)
        texts = ["多少钱", "能对接钉钉吗", "我在开会", "别再打了", "你好"] * 4
        results = await asyncio.gather(*(batcher.classify(t) for t in texts))
        with pytest.raises(InputError, match="str"):
            await batcher.classify(["多少钱"])
        await batcher.close()
        return model, texts, results, batcher

    model, texts, results, batcher = run(main())
    assert [r.labels for r in results] == [r.labels for r in KeywordClassifier().predict(texts)]
    assert model.calls < len(texts) and batcher.labels == model.labels


def test_runtime_batcher_runs_up_to_parallel_batches_at_once():
    """The call runtime's ASR batcher keeps every worker busy: queued batches start while others run."""
    from concurrent.futures import ThreadPoolExecutor

    lock, running, most = threading.Lock(), [0], [0]
    gate = threading.Barrier(2, timeout=5)  # two batches must be inside fn together to pass

    def fn(items):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        gate.wait()
        with lock:
            running[0] -= 1
        return [i * 2 for i in items]

    async def main():
        with ThreadPoolExecutor(2) as pool:
            batcher = MicroBatcher(fn, max_batch=2, max_wait_ms=0, workers=2, executor=pool)
            return await asyncio.gather(*(batcher.submit(i) for i in range(4))), batcher.stats.batches

    results, batches = asyncio.run(main())
    assert results == [0, 2, 4, 6] and batches == 2 and most[0] == 2
