"""Silero VAD (v5) on one shared onnxruntime session; each call keeps only its state (~1 KB).

sherpa-onnx's `VoiceActivityDetector` loads its own model per detector
(~0.25 s and ~8 MB each): with 100 calls in speech that is 800 MB, and each
build blocks the event loop. Here the session is built once and a call's
`SileroState` holds the recurrent state, the samples not scored yet and
the speech flag. The decision rule is sherpa-onnx's `SileroVadModel::IsSpeech`
with min_speech = min_silence = 0 (the endpointer in edge.audio.endpoint does
the timing): a window above the threshold starts speech from the second
one on; once in speech, it lasts while the probability stays above
threshold - 0.15.

Example:
    >>> model = SileroModel(silero_model_path(), threshold=0.5)
    >>> state = model.state()
    >>> state.accept_waveform(window)      # 512 float32 samples in [-1, 1]
    >>> state.is_speech_detected()
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from pathlib import Path
from typing import Final

import numpy as np

from edge.audio.convert import SAMPLE_RATE

WINDOW: Final = 512
CONTEXT: Final = 64
"""Samples past the window that silero v5 sees with it (sherpa-onnx's window overlap at 16 kHz)."""
HYSTERESIS: Final = 0.15
"""Speech continues while the probability stays above threshold minus this (sherpa-onnx, silero)."""


class SileroModel:
    """The silero v5 ONNX model, one session for all calls (1 thread, no memory arena)."""

    def __init__(self, path: Path, threshold: float = 0.5) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self._lock = threading.Lock()
        self.threshold = threshold

    def state(self) -> SileroState:
        return SileroState(self)

    def probability(self, window: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        """Speech probability of one [CONTEXT + WINDOW] input, and the next recurrent state."""
        probs, new_state = self.probabilities(window[None, :], state)
        return float(probs[0]), new_state

    def probabilities(self, inputs: np.ndarray, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[B, CONTEXT + WINDOW] inputs with their [2, B, 128] states -> B probabilities, next states."""
        with self._lock:  # onnxruntime sessions are thread-safe, but one thread keeps the box's 2 cores free
            probs, new_states = self._session.run(None, {"input": inputs, "state": states, "sr": self._sr})
        return probs[:, 0], new_states


class _Job:
    """One call's model inputs, scored in order; `future` gets 1.0 (speech) or 0.0 after the last."""

    __slots__ = ("future", "index", "inputs", "loop", "speech")

    def __init__(self, inputs: list[np.ndarray] | None, future: asyncio.Future | None,
                 loop: asyncio.AbstractEventLoop | None) -> None:
        self.inputs = inputs
        """None: a reset marker (the state starts cold after what was queued before it)."""
        self.future = future
        self.loop = loop
        self.index = 0
        self.speech = False


class WindowScorer:
    """Scores every call's windows on one thread of its own, batched across calls, in order per call.

    A call queues its windows and gets a future per chunk; the thread takes the next window of every
    call with work queued, runs them as one batch (batched, silero costs ~4x less per window: 0.45 ms
    alone, 10 ms for 100), keeps each call's recurrent state and speech decision itself, and starts the
    next batch at once. So a call's next window never waits for a round trip through the event loop
    (with 100 calls in speech that round trip, not the model, limited how fast a call was heard), and
    the event loop keeps the 20 ms media clock while the model uses the other core (onnxruntime
    releases the GIL). Without `offload` it is not used: `VoiceDetector.confidence` runs inline.
    """

    def __init__(self, model: SileroModel, offload: bool = False) -> None:
        self._model = model
        self.offloaded = offload
        self._cond = threading.Condition()
        self._queues: dict[SileroState, deque[_Job]] = {}
        self._thread: threading.Thread | None = None
        self._closed = False
        self.batches = 0
        self.windows = 0

    def submit(self, state: SileroState, inputs: list[np.ndarray]) -> asyncio.Future:
        """Queue one chunk's model inputs for `state`; the future gets its speech decision (1.0 / 0.0)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._put(state, _Job(inputs, future, loop))
        return future

    def reset(self, state: SileroState) -> None:
        """Start `state` cold once the work queued for it is done."""
        self._put(state, _Job(None, None, None))

    def _put(self, state: SileroState, job: _Job) -> None:
        with self._cond:
            if self._closed:
                if job.future is not None:
                    job.future.set_exception(RuntimeError("the VAD scorer is closed"))
                return
            self._queues.setdefault(state, deque()).append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vad", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    done: list[tuple[_Job, float | BaseException]] = []
                    work = self._collect(done)
                    _resolve(done)
                    if work:
                        break
                    self._cond.wait()
            inputs = np.stack([job.inputs[job.index] for _, job in work])  # type: ignore[index]
            states = np.concatenate([state._state for state, _ in work], axis=1)
            try:
                probs, new_states = self._model.probabilities(inputs, states)
            except Exception as exc:  # noqa: BLE001 - each caller gets it; the thread goes on
                self._fail(work, exc)
                continue
            self.batches += 1
            self.windows += len(work)
            done = []
            with self._cond:
                if self._closed:  # close() came while the model ran: it answered these jobs already
                    return
                for index, (state, job) in enumerate(work):
                    state._state = np.ascontiguousarray(new_states[:, index:index + 1])
                    job.speech = state._decide(float(probs[index])) or job.speech
                    job.index += 1
                    if job.index == len(job.inputs):  # type: ignore[arg-type]
                        state._speech = job.speech
                        self._queues[state].popleft()
                        done.append((job, 1.0 if job.speech else 0.0))
                        if not self._queues[state]:
                            del self._queues[state]
            _resolve(done)

    def _collect(self, done: list) -> list[tuple[SileroState, _Job]]:
        """The next input of every state with work (reset markers and empty chunks answered on the way)."""
        work = []
        for state in list(self._queues):
            queue = self._queues[state]
            while queue:
                job = queue[0]
                if job.inputs is None:
                    state._cold()
                elif not job.inputs:
                    done.append((job, 1.0 if state._speech else 0.0))
                else:
                    work.append((state, job))
                    break
                queue.popleft()
            if not queue:
                del self._queues[state]
        return work

    def _fail(self, work: list[tuple[SileroState, _Job]], error: BaseException) -> None:
        with self._cond:
            for state, job in work:
                queue = self._queues.get(state)
                if queue and queue[0] is job:
                    queue.popleft()
                    if not queue:
                        del self._queues[state]
        _resolve([(job, error) for _, job in work])

    def close(self) -> None:
        with self._cond:
            self._closed = True
            pending = [job for queue in self._queues.values() for job in queue if job.future is not None]
            self._queues.clear()
            self._cond.notify_all()
        _resolve([(job, RuntimeError("the VAD scorer is closed")) for job in pending])


def _resolve(done: list[tuple[_Job, float | BaseException]]) -> None:
    """Hand results to their event loops, one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list] = {}
    for job, value in done:
        if job.future is not None and job.loop is not None:
            by_loop.setdefault(job.loop, []).append((job.future, value))
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_set_all, items)


def _set_all(items: list[tuple[asyncio.Future, float | BaseException]]) -> None:
    for future, value in items:
        if future.done():
            continue
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)


class SileroState:
    """One call's silero detector, with the methods of sherpa-onnx's VoiceActivityDetector we use.

    As sherpa-onnx does for v5, each model input is WINDOW + CONTEXT samples read forward (a window
    and the first 64 samples after it), advancing by WINDOW; so a window is scored once the next
    chunk has arrived, and `is_speech_detected()` answers for the windows scored by the last
    `accept_waveform`.
    """

    def __init__(self, model: SileroModel) -> None:
        self._model = model
        self._scorer: WindowScorer | None = None
        """Set once the state is scored on a WindowScorer's thread: from then on that thread owns the
        recurrent state and the decision, and a reset is queued behind the work in flight."""
        self._pending = np.zeros(0, dtype=np.float32)
        self._cold()

    def reset(self) -> None:
        self._pending = np.zeros(0, dtype=np.float32)
        if self._scorer is not None:
            self._scorer.reset(self)
        else:
            self._cold()

    def _cold(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._triggered = False
        self._started = False
        self._speech = False

    def accept_waveform(self, samples: np.ndarray) -> None:
        """Add samples (float32 in [-1, 1]; WINDOW at a time in the call loop) and score what is complete."""
        inputs = self._inputs(samples)
        if inputs:
            speech = False
            for window in inputs:
                prob, self._state = self._model.probability(window, self._state)
                speech = self._decide(prob) or speech
            self._speech = speech

    def submit(self, samples: np.ndarray, scorer: WindowScorer) -> asyncio.Future:
        """`accept_waveform` on the scorer's thread, batched with other calls' windows; the future gets
        1.0 when the chunk's windows were speech (as `is_speech_detected()` would say), else 0.0."""
        self._scorer = scorer
        return scorer.submit(self, self._inputs(samples))

    def _inputs(self, samples: np.ndarray) -> list[np.ndarray]:
        """The complete model inputs the new samples make (each WINDOW + CONTEXT long, WINDOW apart)."""
        pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        size = WINDOW + CONTEXT
        inputs = []
        offset = 0
        while len(pending) - offset >= size:
            inputs.append(pending[offset:offset + size])
            offset += WINDOW
        self._pending = pending[offset:]
        return inputs

    def _decide(self, prob: float) -> bool:
        threshold = self._model.threshold
        if not self._triggered:
            if prob > threshold:
                if not self._started:  # the first loud window only arms it (sherpa: temp_start)
                    self._started = True
                    return False
                self._triggered = True
                return True
            self._started = False
            return False
        if prob > threshold - HYSTERESIS:
            return True
        self._triggered = self._started = False
        return False

    def is_speech_detected(self) -> bool:
        return self._speech

    def empty(self) -> bool:
        return True  # segments are sherpa's; the endpointer cuts utterances here

    def pop(self) -> None:
        return None
