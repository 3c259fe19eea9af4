"""Sample conversions and resampling for 16 kHz mono int16 audio."""

from __future__ import annotations

import logging
from typing import Final

import numpy as np

from edge.errors import AudioFormatError

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE: Final = 16000
"""The runtime's one sample rate (Hz): every buffer between the telephony edges."""


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    """int16 samples -> float32 in [-1, 1) (the scale sherpa-onnx and vosk expect)."""
    return np.asarray(pcm, dtype=np.int16).astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1] -> int16, clipped (never wraps around)."""
    scaled = np.clip(np.asarray(samples, dtype=np.float32) * 32768.0, -32768, 32767)
    return np.round(scaled).astype(np.int16)


def to_mono(frames: np.ndarray) -> np.ndarray:
    """(n, channels) -> (n,) by averaging channels; 1-D input is returned as is."""
    if frames.ndim == 1:
        return frames
    if frames.ndim != 2:
        raise AudioFormatError(f"audio must be 1-D or (samples, channels), got shape {frames.shape}")
    if frames.shape[1] == 1:
        return frames[:, 0]
    mixed = frames.astype(np.float32).mean(axis=1)
    if np.issubdtype(frames.dtype, np.integer):
        info = np.iinfo(frames.dtype)
        return np.clip(np.round(mixed), info.min, info.max).astype(frames.dtype)
    return mixed.astype(frames.dtype)


def resample(samples: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling (soxr HQ, else scipy polyphase); keeps the dtype.

    Args:
        samples: 1-D int16 or float array.
        rate_in: its sample rate in Hz.
        rate_out: the wanted rate in Hz (default 16000).

    Returns:
        The resampled 1-D array, same dtype as ``samples``.
    """
    if rate_in <= 0 or rate_out <= 0:
        raise AudioFormatError(f"sample rates must be positive, got {rate_in} -> {rate_out}")
    samples = np.asarray(samples)
    if rate_in == rate_out or samples.size == 0:
        return samples.copy()
    dtype = samples.dtype
    data = pcm16_to_float(samples) if dtype == np.int16 else samples.astype(np.float32)
    out = _resample_float(data, rate_in, rate_out)
    return float_to_pcm16(out) if dtype == np.int16 else out.astype(dtype)


def _resample_float(data: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    try:
        import soxr
    except ImportError:
        from math import gcd

        from scipy.signal import resample_poly

        _LOGGER.debug("soxr not installed; resampling %d -> %d with scipy polyphase", rate_in, rate_out)
        g = gcd(rate_in, rate_out)
        return resample_poly(data, rate_out // g, rate_in // g).astype(np.float32)
    return soxr.resample(data, rate_in, rate_out, quality="HQ").astype(np.float32)
