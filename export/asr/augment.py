"""Make clean synthetic speech sound like a phone call.

Phone line: 300-3400 Hz band, down to 8 kHz, G.711 mu-law round trip, back
to 16 kHz, additive noise at a given SNR, gain change, silence padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import butter, sosfilt

from edge.audio.convert import float_to_pcm16, pcm16_to_float, resample
from edge.audio.g711 import ulaw_decode, ulaw_encode


@dataclass(frozen=True)
class LineSettings:
    """One phone-line condition."""

    phone: bool = True
    """Band-limit to 300-3400 Hz, 8 kHz and mu-law; False keeps the clean 16 kHz band."""
    snr_db: float | None = 25.0
    """Additive noise level relative to the speech, dB; None adds none."""
    noise: str = "white"
    """Noise colour: "white", "pink" or "brown"."""
    gain_db: float = 0.0
    """Gain applied before the codec (clips like a hot line would)."""
    pad_ms: tuple[int, int] = (100, 100)
    """Silence before and after the speech, ms."""


@lru_cache(maxsize=2)
def _band(rate: int):
    return butter(4, [300, 3400], btype="bandpass", fs=rate, output="sos")


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n).astype(np.float32)
    if colour == "white" or n < 2:
        return white
    spectrum = np.fft.rfft(white)
    freqs = np.maximum(np.fft.rfftfreq(n), 1.0 / n)
    spectrum /= np.sqrt(freqs) if colour == "pink" else freqs
    out = np.fft.irfft(spectrum, n).astype(np.float32)
    return out / (np.std(out) + 1e-9)


def apply(pcm: np.ndarray, settings: LineSettings, rng: np.random.Generator, rate: int = 16000) -> np.ndarray:
    """Return a new int16 signal at ``rate`` that sounds like ``settings``."""
    x = pcm16_to_float(pcm)
    before, after = (int(rate * ms / 1000) for ms in settings.pad_ms)
    x = np.concatenate([np.zeros(before, np.float32), x, np.zeros(after, np.float32)])
    x = x * np.float32(10 ** (settings.gain_db / 20))
    if settings.snr_db is not None:
        speech_power = np.mean(pcm16_to_float(pcm) ** 2) * 10 ** (settings.gain_db / 10) + 1e-10
        noise = coloured_noise(len(x), settings.noise, rng)
        x = x + noise * np.float32(np.sqrt(speech_power / 10 ** (settings.snr_db / 10)))
    if settings.phone:
        x = sosfilt(_band(rate), x).astype(np.float32)
        narrow = float_to_pcm16(resample(x, rate, 8000))
        narrow = ulaw_decode(ulaw_encode(narrow))
        return resample(narrow, 8000, rate)
    return float_to_pcm16(x)
