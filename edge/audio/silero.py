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

import threading
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
        with self._lock:  # onnxruntime sessions are thread-safe, but one thread keeps the box's 2 cores free
            prob, new_state = self._session.run(None, {"input": window[None, :], "state": state, "sr": self._sr})
        return float(prob[0, 0]), new_state


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
        pending = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        size = WINDOW + CONTEXT
        if len(pending) < size:
            self._pending = pending
            return
        speech = False
        offset = 0
        while len(pending) - offset >= size:
            prob, self._state = self._model.probability(pending[offset:offset + size], self._state)
            speech = self._decide(prob) or speech
            offset += WINDOW
        self._pending = pending[offset:]
        self._speech = speech

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
