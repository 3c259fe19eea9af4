"""Model work from many calls in one batch: callers `await submit(item)`, one `fn(items)` runs for all.

A call never runs a model itself, and no call has its own thread. Each call
awaits `submit(item)`; one consumer task takes the first queued item (it
awaits the queue, so an idle batcher costs no wake-ups), gathers more until it
has `max_batch` of them or `max_wait_ms` has passed, runs `fn(items)` on a
small thread pool (`run_in_executor`), so the event loop keeps the 20 ms
media clock, and hands each caller its own result. Requests that arrive while
a batch runs go into the next one. This is sherpa-onnx's streaming-server
batcher, without its idle polling.

Limits, so one slow model cannot take the box down:

- **Backpressure**: the queue holds `max_queue` items; `submit` waits for room.
- **Per-item timeout**: a caller waits at most `item_timeout_s` in all (queue
  and model); then it gets `BatchTimeoutError` and its item is skipped.
- **Errors stay with their batch**: if `fn` raises, only that batch's callers
  get a `BatchError`, and with `isolate_errors` each of their items is retried
  alone first, so one poisonous utterance fails only its own caller.
- **A hung model is cut off**: a batch running longer than `batch_timeout_s`
  fails its callers with `BatchTimeoutError`, is logged and counted
  (`stats.hung`); its thread is abandoned (a Python thread cannot be killed)
  and later batches run on a fresh pool.

Example:
    >>> import asyncio
    >>> async def main():
    ...     batcher = MicroBatcher(lambda texts: [t.upper() for t in texts], max_batch=16)
    ...     results = await asyncio.gather(*(batcher.submit(t) for t in ["a", "b", "c"]))
    ...     await batcher.close()
    ...     return results, batcher.stats.batches
    >>> asyncio.run(main())
    (['A', 'B', 'C'], 1)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from edge.errors import BatcherClosedError, BatchError, BatchTimeoutError, ConfigError, InputError

if TYPE_CHECKING:
    from edge.nlu import IntentResult

__all__ = ["BatcherStats", "IntentBatcher", "MicroBatcher", "abandoned_threads"]

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_MAX_BATCH: Final = 32
DEFAULT_MAX_WAIT_MS: Final = 2.0
"""A lone request waits this long for company; 2 ms is small next to a 600 ms turn budget."""

_abandoned_lock = threading.Lock()
_abandoned = 0


def abandoned_threads() -> int:
    """Worker threads left running by hung batches in this process (the daemon exits hard if any remain)."""
    with _abandoned_lock:
        return _abandoned


def _abandon(count: int) -> None:
    global _abandoned
    with _abandoned_lock:
        _abandoned += count


@dataclass
class BatcherStats:
    submitted: int = 0
    """Items handed to submit()."""
    batches: int = 0
    """Calls of fn (retries of single items included)."""
    items: int = 0
    """Items that went into those calls."""
    largest_batch: int = 0
    errors: int = 0
    """Batches in which fn raised or returned the wrong number of results."""
    timeouts: int = 0
    """Callers that gave up after item_timeout_s."""
    hung: int = 0
    """Batches cut off after batch_timeout_s."""
    skipped: int = 0
    """Items dropped before running because their caller had gone (timeout, cancelled call)."""


@dataclass(slots=True)
class _Entry(Generic[T, R]):
    item: T
    future: asyncio.Future[R]


class MicroBatcher(Generic[T, R]):
    """Runs `fn(list_of_items) -> list_of_results` once for many concurrent `submit(item)` calls.

    Args:
        fn: the batch function; called in a worker thread, must return one result per item, in order.
        max_batch: most items per call of fn.
        max_wait_ms: how long the first item of a batch waits for others (0: take only what is queued).
        max_queue: items waiting at most; submit() waits for room beyond it (backpressure).
        item_timeout_s: a caller's whole wait (queue + run); then BatchTimeoutError.
        batch_timeout_s: one call of fn may take this long; then its callers fail and the pool is replaced.
        workers: threads in the pool (1 is right for one model on 2 cores: batches run one after another).
        isolate_errors: when fn raises on a batch of several, retry each item alone so only bad ones fail.
        name: for logs and errors.
        on_batch: called as on_batch(size, seconds) after every call of fn (metrics).

    Raises:
        ConfigError: a limit out of range.
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, max_batch: int = DEFAULT_MAX_BATCH,
                 max_wait_ms: float = DEFAULT_MAX_WAIT_MS, max_queue: int = 1024, item_timeout_s: float = 5.0,
                 batch_timeout_s: float = 5.0, workers: int = 1, isolate_errors: bool = True,
                 name: str = "batch", on_batch: Callable[[int, float], None] | None = None) -> None:
        if max_batch < 1 or max_queue < 1 or workers < 1:
            raise ConfigError(f"{name} batcher: max_batch, max_queue and workers must be >= 1 "
                              f"(got {max_batch}, {max_queue}, {workers})")
        if max_wait_ms < 0 or item_timeout_s <= 0 or batch_timeout_s <= 0:
            raise ConfigError(f"{name} batcher: max_wait_ms must be >= 0 and the timeouts > 0 "
                              f"(got {max_wait_ms}, {item_timeout_s}, {batch_timeout_s})")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self.item_timeout_s = item_timeout_s
        self.batch_timeout_s = batch_timeout_s
        self.workers = workers
        self.isolate_errors = isolate_errors
        self.name = name
        self.on_batch = on_batch
        self.stats = BatcherStats()
        self._queue: asyncio.Queue[_Entry[T, R]] = asyncio.Queue(max_queue)
        self._executor: ThreadPoolExecutor | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def queued(self) -> int:
        """Items waiting for a batch."""
        return self._queue.qsize()

    async def submit(self, item: T) -> R:
        """Queue one item and wait for its result.

        Raises:
            BatchTimeoutError: no result within item_timeout_s (queue full or the model slow or hung).
            BatchError: fn raised on this item (the cause is chained) or returned a wrong-length list.
            BatcherClosedError: the batcher is closed.
        """
        if self._closed:
            raise BatcherClosedError(f"{self.name} batcher is closed (the daemon is stopping); the call must end")
        self._start()
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self.stats.submitted += 1
        try:
            async with asyncio.timeout(self.item_timeout_s):
                await self._queue.put(_Entry(item, future))
                return await future
        except TimeoutError:
            if future.done() and not future.cancelled():
                return future.result()  # resolved in the same instant the deadline passed
            future.cancel()
            self.stats.timeouts += 1
            raise BatchTimeoutError(
                f"{self.name}: no result within {self.item_timeout_s:g} s ({self.queued} items queued); the "
                "model is overloaded or hung: lower max_calls or check the model") from None

    async def close(self) -> None:
        """Stop the consumer; queued and running callers get BatcherClosedError. Idempotent."""
        self._closed = True
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None
        while not self._queue.empty():
            self._fail([self._queue.get_nowait()], BatcherClosedError(f"{self.name} batcher closed"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # ---- the consumer ---------------------------------------------------------------------------

    def _start(self) -> None:
        if self._consumer is None or self._consumer.done():
            self._consumer = asyncio.get_running_loop().create_task(self._consume(), name=f"{self.name}-batcher")

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]  # idle: sleeps here, no polling
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        batch.append(await self._queue.get())
                except TimeoutError:
                    break
            live = [entry for entry in batch if not entry.future.done()]
            self.stats.skipped += len(batch) - len(live)
            if not live:
                continue
            try:
                await self._run(live)
            except asyncio.CancelledError:
                self._fail(live, BatcherClosedError(f"{self.name} batcher closed while a batch ran"))
                raise
            except Exception:  # a bug here must not kill the consumer and strand every later caller
                _LOGGER.exception("%s batcher: unexpected failure; failing this batch only", self.name)
                self._fail(live, BatchError(f"{self.name}: internal batcher failure"))

    async def _run(self, batch: list[_Entry[T, R]]) -> None:
        try:
            results = await self._call([entry.item for entry in batch])
        except BatchTimeoutError as exc:
            self._fail(batch, exc)
            return
        except Exception as exc:
            self.stats.errors += 1
            if not self.isolate_errors or len(batch) == 1:
                _LOGGER.warning("%s batcher: batch of %d failed: %s", self.name, len(batch), exc,
                                extra={"event": "batch_error", "batcher": self.name})
                self._fail(batch, exc)
                return
            _LOGGER.warning("%s batcher: batch of %d failed (%s); retrying its items one by one", self.name,
                            len(batch), exc, extra={"event": "batch_error", "batcher": self.name})
            for entry in batch:
                if not entry.future.done():
                    await self._run([entry])
            return
        for entry, result in zip(batch, results, strict=True):
            if not entry.future.done():
                entry.future.set_result(result)

    async def _call(self, items: list[T]) -> Sequence[R]:
        """fn(items) on the pool, cut off after batch_timeout_s."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=f"{self.name}-batch")
        started = time.perf_counter()
        running = asyncio.get_running_loop().run_in_executor(self._executor, self.fn, items)
        try:
            async with asyncio.timeout(self.batch_timeout_s):
                results = await running
        except TimeoutError:
            self.stats.hung += 1
            _LOGGER.error("%s batcher: a batch of %d ran past %g s; failing its callers and moving later batches "
                          "to a fresh thread pool (the stuck thread is abandoned; restart the service if this "
                          "repeats)", self.name, len(items), self.batch_timeout_s,
                          extra={"event": "batch_hung", "batcher": self.name})
            _abandon(1)
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            raise BatchTimeoutError(f"{self.name}: the model ran past {self.batch_timeout_s:g} s and was cut "
                                    "off") from None
        finally:
            seconds = time.perf_counter() - started
            self.stats.batches += 1
            self.stats.items += len(items)
            self.stats.largest_batch = max(self.stats.largest_batch, len(items))
            if self.on_batch is not None:
                with contextlib.suppress(Exception):
                    self.on_batch(len(items), seconds)
        if results is None or len(results) != len(items):
            raise BatchError(f"{self.name}: fn returned {0 if results is None else len(results)} results "
                             f"for {len(items)} items")
        return results

    def _fail(self, batch: list[_Entry[Any, Any]], error: BaseException) -> None:
        for entry in batch:
            if entry.future.done():
                continue
            if isinstance(error, BatchError):
                exc: BaseException = type(error)(str(error))
            else:
                exc = BatchError(f"{self.name}: {type(error).__name__}: {error}")
            exc.__cause__ = error
            entry.future.set_exception(exc)


class IntentBatcher(MicroBatcher[str, "IntentResult"]):
    """One `IntentModel.predict` call for the turns of all concurrent calls.

    Example:
        >>> batcher = IntentBatcher(IntentModel.load())   # once per process
        >>> result = await batcher.classify("多少钱 能对接企业微信吗")   # in each call
        >>> result.labels
        ['ask_price', 'ask_integration']
    """

    def __init__(self, model: Any, **options: Any) -> None:
        options.setdefault("name", "intent")
        super().__init__(model.predict, **options)
        self.model = model

    @property
    def labels(self) -> list[str]:
        return list(self.model.labels)

    async def classify(self, text: str) -> IntentResult:
        """The intents of one utterance, batched with other calls' utterances.

        Raises:
            InputError: not a string.
            BatchTimeoutError, BatchError, BatcherClosedError: as `submit`.
        """
        if not isinstance(text, str):
            raise InputError(f"classify() takes one utterance as a str, got {type(text).__name__}")
        return await self.submit(text)
