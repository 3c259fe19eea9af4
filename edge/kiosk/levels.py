"""Audio levels of 20 ms frames: what counts as sound from the speaker and as speech at the microphone."""

from __future__ import annotations

import math
from typing import Final

import numpy as np

__all__ = ["AUDIBLE_PEAK", "audible", "rms_dbfs"]

AUDIBLE_PEAK: Final = 32
"""A speaker frame whose peak is above this (about -60 dBFS) is sound; zero padding and dither are not."""


def audible(frame: np.ndarray) -> bool:
    """True when an int16 frame carries sound (peak above AUDIBLE_PEAK)."""
    return bool(len(frame)) and int(np.abs(frame.astype(np.int32)).max()) > AUDIBLE_PEAK


def rms_dbfs(frame: np.ndarray) -> float:
    """RMS level in dB below full scale (int16); -inf for digital silence."""
    if not len(frame):
        return -math.inf
    power = float(np.mean(np.square(frame.astype(np.float64))))
    return 10 * math.log10(power / 32768.0**2) if power > 0 else -math.inf
