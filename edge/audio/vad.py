"""Voice activity per 20 ms frame: a cheap energy gate in front of Silero VAD (one shared session).

Frames quieter than the gate never reach the model, so the silence that
fills most of a call costs a mean and a dot product. Louder frames go to
silero in its 512-sample windows; each frame's confidence is the latest
window's decision. The model file comes from the built-in bundle
(edge/models/default/vad) or the `silero-vad` wheel, found without
importing it (its import needs torch).

Example:
    >>> pool = SileroPool(threshold=0.5)          # once per process
    >>> detector = VoiceDetector(pool, EnergyGate(-45.0))  # once per call
    >>> [detector.confidence(frame) for frame in frames]   # 320-sample int16 frames
    [0.0, 0.0, 1.0, ...]
    >>> detector.close()                           # the silero state goes back to the pool
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from edge.audio.endpoint import FRAME_MS
from edge.bundle import Bundle
from edge.config import DEFAULT_BUNDLE_DIR
from edge.errors import ModelDirError, SpeechEngineError

_LOGGER = logging.getLogger(__name__)

DEFAULT_VAD_DIR: Final = DEFAULT_BUNDLE_DIR / "vad"
WINDOW: Final = 512
"""Samples per silero window at 16 kHz (32 ms)."""
LOOKBACK_FRAMES: Final = 4
"""Quiet frames (80 ms) fed to the model before the first loud one, so it is warm at a word's onset."""
_FULL_SCALE: Final = 32768.0


def silero_model_path() -> Path:
    """Path of silero_vad.onnx; raises ModelDirError saying how to get one."""
    if (DEFAULT_VAD_DIR / "manifest.json").is_file():
        return Bundle.open(DEFAULT_VAD_DIR, kind="vad", verify=False).path("silero_vad.onnx")
    spec = importlib.util.find_spec("silero_vad")  # never import it: its import needs torch
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "data" / "silero_vad.onnx"
        if path.is_file():
            _LOGGER.debug("VAD model from the silero-vad wheel: %s", path)
            return path
    raise ModelDirError(f"no silero VAD model: {DEFAULT_VAD_DIR} is missing and the silero-vad wheel is not "
                        "installed (pip install --no-deps silero-vad)")


def frame_dbfs(frame: np.ndarray) -> float:
    """RMS level of int16 samples in dB below full scale, DC removed (-120 for digital silence)."""
    x = np.asarray(frame, dtype=np.float32)
    if x.size == 0:
        return -120.0
    mean = float(x.sum()) / x.size  # (np.mean costs ~10x more on a 320-sample frame)
    power = max(float(np.dot(x, x)) / x.size - mean * mean, 0.0)
    return 10.0 * np.log10(power / (_FULL_SCALE * _FULL_SCALE) + 1e-12)


def _scaled(frame: np.ndarray) -> np.ndarray:
    """int16 samples -> float32 for silero: DC removed, full scale 1.0."""
    x = np.asarray(frame, dtype=np.float32)
    mean = float(x.sum()) / max(1, x.size)
    return (x - mean) * (1.0 / _FULL_SCALE)


@dataclass(frozen=True)
class EnergyGate:
    """Lets a frame through to the model only when it is louder than `threshold_dbfs`."""

    threshold_dbfs: float = -45.0
    """RMS level (DC removed) a frame needs, dB below full scale; a phone line's noise floor is ~-60."""
    hold_ms: int = 300
    """Once open, the gate keeps the model's state through this much quiet: the quiet frames still count
    as silence, but silero goes on hearing them. A quiet line dips under the threshold between
    syllables, and each dip used to restart silero cold, which then missed the next 300-600 ms of
    speech: 48 of the built-in ASR's 1,470 held-out sentences, all over the phone line, were cut into
    two turns or more, and the set's CER cut as calls was 8.7%; with the hold (and the 500 ms pre-roll)
    it is 6.4% (benchmarks/asr.py, its call-loop row)."""

    def passes(self, frame: np.ndarray) -> bool:
        return frame_dbfs(frame) >= self.threshold_dbfs

    @property
    def power(self) -> float:
        """The threshold as mean power of int16 samples (DC removed): no log10 per frame."""
        return (_FULL_SCALE * _FULL_SCALE) * (10.0 ** (self.threshold_dbfs / 10.0) - 1e-12)


class SileroPool:
    """The silero model (one onnxruntime session, edge.audio.silero) and a pool of per-call states.

    A state holds one call's recurrent tensors (~1 KB, built in microseconds), so a call takes one
    while it hears sound and gives it back when the gate closes; the model is loaded once.
    """

    def __init__(self, threshold: float = 0.5, model_path: Path | None = None, offload: bool = False) -> None:
        try:
            from edge.audio.silero import SileroModel, WindowScorer

            self._model = SileroModel(model_path or silero_model_path(), threshold)
        except ImportError:
            raise SpeechEngineError("the VAD needs the onnxruntime package: pip install onnxruntime") from None
        self.scorer = WindowScorer(self._model, offload)
        """Batches the windows of all calls (`VoiceDetector.confidence_async`); offload: on its own thread."""
        self._free: list = []
        self._lock = threading.Lock()
        self.built = 0
        """States built so far (the most calls that were ever in speech at once)."""

    def take(self):
        with self._lock:
            if self._free:
                return self._free.pop()
        self.built += 1
        return self._model.state()

    def give_back(self, detector) -> None:
        detector.reset()
        with self._lock:
            self._free.append(detector)

    def close(self) -> None:
        self.scorer.close()


@dataclass
class VadStats:
    frames: int = 0
    """Frames scored."""
    gated: int = 0
    """Frames the energy gate kept from the model."""
    windows: int = 0
    """512-sample windows the model ran on."""


class VoiceDetector:
    """One call's voice activity: `confidence(frame)` per 20 ms frame, 0.0 or 1.0.

    The model is behind this one method (as Pipecat's `voice_confidence`), so
    the endpointing rules in edge.audio.endpoint are tested without it.
    """

    def __init__(self, pool: SileroPool, gate: EnergyGate) -> None:
        self._pool = pool
        self._gate = gate
        self._detector = None
        self._buffer = np.zeros(0, dtype=np.float32)
        self._recent: deque[np.ndarray] = deque(maxlen=LOOKBACK_FRAMES)
        self._last = 0.0
        self._handle: float | asyncio.Future = 0.0
        """The latest frame's confidence (or its future), offloaded."""
        self._gate_power = gate.power
        self._hold_frames = gate.hold_ms // FRAME_MS
        self._quiet_frames = 0
        """Quiet frames in a row; the gate closes (the state goes back to the pool) after `_hold_frames`."""
        self.stats = VadStats()

    def confidence(self, frame: np.ndarray, power: float | None = None) -> float:
        """Voice (1.0) or not (0.0) at this frame, the model run here and now.

        `power`: the frame's mean square less its squared mean (int16 scale), when the caller measured it
        already (a server does, for every call's frame at once); else it is measured here.
        """
        for window in self._windows(frame, power):
            self._detector.accept_waveform(window)
            self._scored()
        return 0.0 if self._quiet_frames else self._last

    def submit(self, frame: np.ndarray, power: float | None = None) -> float | asyncio.Future:
        """This frame's confidence: a number when it is known now (inline, or the gate closed), else a
        future that gets it once the pool's thread has scored this call's windows up to this frame.

        Results come in frame order, so a caller may queue several frames' futures before the first
        is done (edge.calls.listen.VadStage does): a call's frames never wait for one another's round trip.
        """
        if not self._pool.scorer.offloaded:
            return self.confidence(frame, power)
        windows = self._windows(frame, power)
        if self._detector is None:  # the gate is closed (or just closed): silence
            self._handle = 0.0
            return 0.0
        for window in windows:
            self.stats.windows += 1
            self._handle = self._detector.submit(window, self._pool.scorer)
        return 0.0 if self._quiet_frames else self._handle

    async def confidence_async(self, frame: np.ndarray, power: float | None = None) -> float:
        """`confidence`, with the model run in one batch with the other calls' windows on the pool's thread.

        Without `offload` (the simulator, tests) it is `confidence`: no extra event-loop turns, so a
        simulated call's timing stays that of one call scored inline.
        """
        handle = self.submit(frame, power)
        return handle if isinstance(handle, float) else await handle

    def _scored(self) -> None:
        self.stats.windows += 1
        self._last = 1.0 if self._detector.is_speech_detected() else 0.0

    def _windows(self, frame: np.ndarray, power: float | None = None) -> list[np.ndarray]:
        """The silero windows this frame completes (none while the gate is closed)."""
        # Runs for every call's every 20 ms frame on the event loop. The gate compares power (the same
        # test as EnergyGate.passes, without its log10); a quiet frame is only kept, as it came, for the
        # lead-in: it is scaled for the model only if speech follows.
        self.stats.frames += 1
        if power is None:
            x = np.asarray(frame, dtype=np.float32)
            n = max(1, x.size)
            mean = float(x.sum()) / n
            power = float(np.dot(x, x)) / n - mean * mean
        quiet = power < self._gate_power
        self._quiet_frames = self._quiet_frames + 1 if quiet else 0
        if quiet and (self._detector is None or self._quiet_frames > self._hold_frames):
            self.stats.gated += 1
            self._recent.append(frame)
            if self._detector is not None:  # stale state when speech comes back; and only calls
                self.close()                # with sound hold a detector (100 calls, a few in speech)
                self._buffer = self._buffer[:0]
            self._last = 0.0
            return []
        if self._detector is None:
            # The model starts cold: give it the quiet lead-in too, or a word's onset is heard late.
            self._detector = self._pool.take()
            lead = [_scaled(f) for f in self._recent]
            self._buffer = np.concatenate([*lead, self._buffer]) if lead else self._buffer
            self._recent.clear()
        self._buffer = np.concatenate([self._buffer, _scaled(frame)])
        windows = []
        while len(self._buffer) >= WINDOW:
            windows.append(self._buffer[:WINDOW])
            self._buffer = self._buffer[WINDOW:]
        return windows

    def close(self) -> None:
        if self._detector is not None:
            self._pool.give_back(self._detector)
            self._detector = None
