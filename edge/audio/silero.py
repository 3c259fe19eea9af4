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
import threading
from concurrent.futures import Future, ThreadPoolExecutor
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


class WindowScorer:
    """Scores the windows of every call that sent one in the same event-loop iteration, in one batch.

    Batched, silero costs ~3x less per window (measured: 0.47 ms alone, 15.5 ms for 100), and with
    `offload` the batch runs on a thread of its own (onnxruntime releases the GIL), so the event loop
    keeps the 20 ms media clock while the model uses the other core. Windows that arrive while a batch
    runs go into the next one.
    """

    def __init__(self, model: SileroModel, offload: bool = False) -> None:
        self._model = model
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="vad") if offload else None
        self.offloaded = offload
        self._pending: list[tuple[np.ndarray, np.ndarray, asyncio.Future]] = []
        self._scheduled = False
        self._running = False
        self.batches = 0
        self.windows = 0

    async def score(self, window: np.ndarray, state: np.ndarray) -> tuple[float, np.ndarray]:
        """Probability of one input and the next state, once its batch has run."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((window, state, future))
        if not self._scheduled and not self._running:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        batch = [item for item in self._pending if not item[2].done()]
        self._pending = []
        if not batch:
            return
        inputs = np.stack([window for window, _, _ in batch])
        states = np.concatenate([state for _, state, _ in batch], axis=1)
        self.batches += 1
        self.windows += len(batch)
        if self._executor is None:
            try:
                result: tuple[np.ndarray, np.ndarray] | BaseException = self._model.probabilities(inputs, states)
            except Exception as exc:
                result = exc
            self._deliver(batch, result)
            return
        self._running = True
        job = self._executor.submit(self._model.probabilities, inputs, states)
        loop = asyncio.get_running_loop()
        job.add_done_callback(lambda done: loop.call_soon_threadsafe(self._finished, batch, done))

    def _finished(self, batch: list, job: Future) -> None:
        self._running = False
        error = job.exception()
        self._deliver(batch, error if error is not None else job.result())
        if self._pending and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    @staticmethod
    def _deliver(batch: list, result: tuple[np.ndarray, np.ndarray] | BaseException) -> None:
        for index, (_, _, future) in enumerate(batch):
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                probs, states = result
                future.set_result((float(probs[index]), np.ascontiguousarray(states[:, index:index + 1])))

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


class SileroState:
    """One call's silero detector, with the methods of sherpa-onnx's VoiceActivityDetector we use.

    As sherpa-onnx does for v5, each model input is WINDOW + CONTEXT samples read forward (a window
    and the first 64 samples after it), advancing by WINDOW; so a window is scored once the next
    chunk has arrived, and `is_speech_detected()` answers for the windows scored by the last
    `accept_waveform`.
    """

    def __init__(self, model: SileroModel) -> None:
        self._model = model
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
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

    async def accept(self, samples: np.ndarray, scorer: WindowScorer) -> None:
        """`accept_waveform`, with the model run by `scorer` in a batch with other calls' windows."""
        inputs = self._inputs(samples)
        if inputs:
            speech = False
            for window in inputs:
                prob, self._state = await scorer.score(window, self._state)
                speech = self._decide(prob) or speech
            self._speech = speech

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
