"""Model work from many calls in one batch: callers `await submit(item)`, one `fn(items)` runs for all.

A call never runs a model itself, and no call has its own thread. Each call
awaits `submit(item)`; the first item of a batch schedules a flush on the
event loop (at once with `max_wait_ms=0`, else after that long, or as soon as
`max_batch` items are queued: an idle batcher costs no wake-ups); the flush
runs `fn(items)` on a small thread pool (`run_in_executor`), so the event
loop keeps the 20 ms media clock, and hands each caller its own result.
Requests that arrive while batches run go into the next one; up to `workers`
batches run at once. With `inline=True` (the simulator, tests) `fn` runs on
the event loop instead, one batch per loop iteration, deterministically.
This is sherpa-onnx's streaming-server batcher, without its idle polling;
the call runtime's recognition and intents and the daemon's hooks all use it.

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
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from edge.errors import (
    BatcherClosedError,
    BatchError,
    BatchTimeoutError,
    ConfigError,
    InputError,
)

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
        fn: the batch function; called in a worker thread (or inline), must return one result per item,
            in order.
        max_batch: most items per call of fn.
        max_wait_ms: how long the first item of a batch waits for others (0: take what is queued in this
            event-loop iteration).
        max_queue: items waiting at most; submit() waits for room beyond it (backpressure).
        item_timeout_s: a caller's whole wait (queue + run); then BatchTimeoutError. None: no limit (a
            hung model is still cut off by batch_timeout_s).
        batch_timeout_s: one call of fn may take this long; then its callers fail and the pool is replaced.
        workers: most batches running at once; also the threads of the pool it makes for itself.
        isolate_errors: when fn raises on a batch of several, retry each item alone so only bad ones fail.
        name: for logs and errors.
        on_batch: called as on_batch(size, seconds) after every call of fn (metrics).
        executor: run fn on this pool (shared with other work) instead of a pool of its own.
        inline: run fn on the event loop (no threads, no cut-off): deterministic, for the simulator.

    Raises:
        ConfigError: a limit out of range.
    """

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], *, max_batch: int = DEFAULT_MAX_BATCH,
                 max_wait_ms: float = DEFAULT_MAX_WAIT_MS, max_queue: int = 1024,
                 item_timeout_s: float | None = 5.0, batch_timeout_s: float = 5.0, workers: int = 1,
                 isolate_errors: bool = True, name: str = "batch",
                 on_batch: Callable[[int, float], None] | None = None,
                 executor: ThreadPoolExecutor | None = None, inline: bool = False) -> None:
        if max_batch < 1 or max_queue < 1 or workers < 1:
            raise ConfigError(f"{name} batcher: max_batch, max_queue and workers must be >= 1 "
                              f"(got {max_batch}, {max_queue}, {workers})")
        if max_wait_ms < 0 or (item_timeout_s is not None and item_timeout_s <= 0) or batch_timeout_s <= 0:
            raise ConfigError(f"{name} batcher: max_wait_ms must be >= 0 and the timeouts > 0 "
                              f"(got {max_wait_ms}, {item_timeout_s}, {batch_timeout_s})")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self.max_queue = max_queue
        self.item_timeout_s = item_timeout_s
        self.batch_timeout_s = batch_timeout_s
        self.workers = workers
        self.isolate_errors = isolate_errors
        self.name = name
        self.on_batch = on_batch
        self.inline = inline
        self.stats = BatcherStats()
        self._shared = executor
        self._executor: ThreadPoolExecutor | None = None
        self._pending: deque[_Entry[T, R]] = deque()
        self._alone: deque[_Entry[T, R]] = deque()
        """Items of a failed batch, each to run on its own."""
        self._running: set[int] = set()
        self._in_flight: dict[int, list[_Entry[T, R]]] = {}
        self._timer: asyncio.Handle | asyncio.TimerHandle | None = None
        self._timer_soon = False
        self._room: asyncio.Event | None = None
        self._closed = False

    @property
    def queued(self) -> int:
        """Items waiting for a batch."""
        return len(self._pending) + len(self._alone)

    async def submit(self, item: T) -> R:
        """Queue one item and wait for its result.

        Raises:
            BatchTimeoutError: no result within item_timeout_s (queue full or the model slow or hung).
            BatchError: fn raised on this item (the cause is chained) or returned a wrong-length list.
            BatcherClosedError: the batcher is closed.
        """
        if self._closed:
            raise BatcherClosedError(f"{self.name} batcher is closed (the daemon is stopping); the call must end")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self.stats.submitted += 1
        try:
            async with asyncio.timeout(self.item_timeout_s):
                while len(self._pending) >= self.max_queue and not self._closed:
                    if self._room is None:
                        self._room = asyncio.Event()
                    self._room.clear()
                    await self._room.wait()
                if self._closed:
                    raise BatcherClosedError(f"{self.name} batcher closed")
                self._pending.append(_Entry(item, future))
                self._schedule(loop)
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
        """Queued and running callers get BatcherClosedError; new ones are refused. Idempotent."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting = [*self._pending, *self._alone, *(e for batch in self._in_flight.values() for e in batch)]
        self._pending.clear()
        self._alone.clear()
        self._in_flight.clear()
        self._fail(waiting, BatcherClosedError(f"{self.name} batcher closed"))
        if self._room is not None:
            self._room.set()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # ---- scheduling -----------------------------------------------------------------------------

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """A flush for what is queued: now (a full batch, no wait, retries) or once max_wait has passed."""
        if self._closed or not (self._pending or self._alone) or len(self._running) >= self.workers:
            return
        soon = self.max_wait_s == 0 or len(self._pending) >= self.max_batch or bool(self._alone)
        if self._timer is not None:
            if self._timer_soon or not soon:
                return
            self._timer.cancel()
        self._timer_soon = soon
        self._timer = loop.call_soon(self._flush) if soon else loop.call_later(self.max_wait_s, self._flush)

    def _flush(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        while len(self._running) < self.workers and (self._pending or self._alone):
            batch = self._take()
            if batch:
                self._start(batch, loop)
            if self.inline:
                break  # one batch per iteration, as a simulated call expects
        if self._room is not None and len(self._pending) < self.max_queue:
            self._room.set()
        self._schedule(loop)

    def _take(self) -> list[_Entry[T, R]]:
        source = self._alone if self._alone else self._pending
        size = 1 if source is self._alone else self.max_batch
        batch: list[_Entry[T, R]] = []
        while source and len(batch) < size:
            entry = source.popleft()
            if entry.future.done():  # its caller gave up or was cancelled
                self.stats.skipped += 1
                continue
            batch.append(entry)
        return batch

    def _start(self, batch: list[_Entry[T, R]], loop: asyncio.AbstractEventLoop) -> None:
        items = [entry.item for entry in batch]
        started = time.perf_counter()
        if self.inline:
            try:
                results: Sequence[R] | None = self.fn(items)
                error: BaseException | None = None
            except Exception as exc:  # noqa: BLE001 - handed to the batch's callers
                results, error = None, exc
            self._account(len(items), started)
            self._finish(batch, results, error)
            return
        token = id(batch)
        self._running.add(token)
        self._in_flight[token] = batch
        running = loop.run_in_executor(self._pool(), self.fn, items)
        watchdog = loop.call_later(self.batch_timeout_s, self._cut_off, running, token)

        def done(task: asyncio.Future) -> None:
            watchdog.cancel()
            if token not in self._running:
                return  # cut off (its callers were failed already) or closed: a late result is dropped
            self._running.discard(token)
            self._in_flight.pop(token, None)
            self._account(len(items), started)
            if task.cancelled():
                self._fail(batch, BatcherClosedError(f"{self.name} batcher closed while a batch ran"))
            else:
                error = task.exception()
                self._finish(batch, task.result() if error is None else None, error)
            self._schedule(loop)

        running.add_done_callback(done)

    def _pool(self) -> ThreadPoolExecutor:
        if self._shared is not None:
            return self._shared
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix=f"{self.name}-batch")
        return self._executor

    def _cut_off(self, running: asyncio.Future, token: int) -> None:
        """The batch ran past batch_timeout_s: fail its callers, abandon its thread, go on on a fresh pool."""
        batch = self._in_flight.pop(token, [])
        self._running.discard(token)
        self.stats.hung += 1
        _LOGGER.error("%s batcher: a batch of %d ran past %g s; failing its callers and moving later batches "
                      "to a fresh thread pool (the stuck thread is abandoned; restart the service if this "
                      "repeats)", self.name, len(batch), self.batch_timeout_s,
                      extra={"event": "batch_hung", "batcher": self.name})
        _abandon(1)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._shared = None  # a shared pool has a stuck thread too: this batcher goes on on its own
        self._executor = None
        self._fail(batch, BatchTimeoutError(f"{self.name}: the model ran past {self.batch_timeout_s:g} s and "
                                            "was cut off"))
        self._schedule(asyncio.get_running_loop())

    def _account(self, size: int, started: float) -> None:
        self.stats.batches += 1
        self.stats.items += size
        self.stats.largest_batch = max(self.stats.largest_batch, size)
        if self.on_batch is not None:
            with contextlib.suppress(Exception):
                self.on_batch(size, time.perf_counter() - started)

    def _finish(self, batch: list[_Entry[T, R]], results: Sequence[R] | None, error: BaseException | None) -> None:
        if error is None and (results is None or len(results) != len(batch)):
            error = BatchError(f"{self.name}: fn returned {0 if results is None else len(results)} results "
                               f"for {len(batch)} items")
        if error is None:
            for entry, result in zip(batch, results, strict=True):  # type: ignore[arg-type]
                if not entry.future.done():
                    entry.future.set_result(result)
            return
        self.stats.errors += 1
        if self.isolate_errors and len(batch) > 1:
            _LOGGER.warning("%s batcher: batch of %d failed (%s); retrying its items one by one", self.name,
                            len(batch), error, extra={"event": "batch_error", "batcher": self.name})
            self._alone.extend(batch)
            return
        _LOGGER.warning("%s batcher: batch of %d failed: %s", self.name, len(batch), error,
                        extra={"event": "batch_error", "batcher": self.name})
        self._fail(batch, error)

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
