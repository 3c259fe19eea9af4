"""A call as a pipeline of small stages; interruption is handled here, once.

Each stage has one task working through its queue of data events in order.
System events skip the queue: `receive` hands them to `on_system` at once.
An `Interruption` going downstream makes every stage it reaches drop its
queued data events (except `Uninterruptible` ones) and cancel the data event
it is working on, then restart its task (Pipecat's `_start_interruption`).
No stage special-cases barge-in beyond undoing its own state.

Example:
    >>> class Upper(Stage):
    ...     async def process(self, event):
    ...         await self.push(Transcript(event.text.upper(), event.utterance))
    >>> pipeline = Pipeline([Upper(), Collect()])
    >>> await pipeline.start(); await pipeline.push(transcript); await pipeline.idle()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence

from edge.calls.events import DataEvent, Event, Interruption, SystemEvent, Uninterruptible

_LOGGER = logging.getLogger(__name__)


def _nothing() -> None:
    pass


class Stage:
    """One step of a call. Override `process` (data events) and/or `on_system` (system events)."""

    name = "stage"

    def __init__(self) -> None:
        self.next: Stage | None = None
        self.prev: Stage | None = None
        self.call_id = ""
        self.sink: Callable[[Event, bool], None] | None = None
        self._queue: deque[DataEvent] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._current: DataEvent | None = None
        self.errors = 0
        self.keep_time: Callable[[], None] = _nothing
        """Lets the line's 20 ms clock send what fell due (MediaCall.keep_time); called after every data
        event, and by stages between the steps of long work."""

    # ---- what a stage overrides ----------------------------------------------------------------

    async def process(self, event: DataEvent) -> None:
        """Handle one data event (in order, in this stage's task); default: pass it on."""
        await self.push(event)

    async def on_system(self, event: SystemEvent, upstream: bool) -> None:
        """Handle a system event at once; default: pass it on in the direction it travels."""
        await self.push(event, upstream)

    async def stopped(self) -> None:
        """The call is over: release what the stage holds."""

    # ---- plumbing --------------------------------------------------------------------------------

    async def push(self, event: Event, upstream: bool = False) -> None:
        """Send an event to the next stage (or the previous one, upstream)."""
        target = self.prev if upstream else self.next
        if target is not None:
            await target.receive(event, upstream)
        elif self.sink is not None:
            self.sink(event, upstream)

    async def receive(self, event: Event, upstream: bool = False) -> None:
        if isinstance(event, SystemEvent):
            if isinstance(event, Interruption) and not upstream:
                self._interrupt()
            await self.on_system(event, upstream)
        else:
            self._queue.append(event)
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.name}-{self.call_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.stopped()

    @property
    def busy(self) -> bool:
        return bool(self._queue) or self._current is not None

    def _interrupt(self) -> None:
        self._queue = deque(e for e in self._queue if isinstance(e, Uninterruptible))
        current = self._current
        if current is None or isinstance(current, Uninterruptible) or self._task is None:
            return
        if self._task is asyncio.current_task():  # the stage interrupting itself finishes its event
            return
        self._task.cancel()
        self._current = None
        self.start()
        if self._queue:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            event = self._queue.popleft()
            self._current = event
            try:
                await self.process(event)
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad event must not end the call
                self.errors += 1
                _LOGGER.exception("call %s: stage %s failed on %s", self.call_id, self.name, type(event).__name__)
            finally:
                if self._current is event:
                    self._current = None
            self.keep_time()


class Pipeline:
    """Stages linked in a line; events pushed in go to the first stage."""

    def __init__(self, stages: Sequence[Stage], call_id: str = "",
                 sink: Callable[[Event, bool], None] | None = None,
                 keep_time: Callable[[], None] | None = None) -> None:
        self.stages = list(stages)
        for before, after in zip(self.stages, self.stages[1:], strict=False):
            before.next, after.prev = after, before
        for stage in self.stages:
            stage.call_id = call_id
            if keep_time is not None:
                stage.keep_time = keep_time
        self.stages[-1].sink = sink
        self.stages[0].sink = sink

    def start(self) -> None:
        for stage in self.stages:
            stage.start()

    async def push(self, event: Event) -> None:
        await self.stages[0].receive(event)

    async def idle(self, timeout_s: float = 5.0) -> None:
        """Wait until no stage has queued or running data events (tests, end of call)."""
        async def settle() -> None:
            quiet = 0
            while quiet < 3:  # three passes in a row with nothing to do: events in flight have landed
                await asyncio.sleep(0)
                quiet = quiet + 1 if not any(stage.busy for stage in self.stages) else 0

        await asyncio.wait_for(settle(), timeout_s)

    async def stop(self) -> None:
        for stage in self.stages:
            await stage.stop()
