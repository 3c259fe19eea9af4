"""What a phone line does to a voice: 8 kHz band, G.711 round trip, a noise floor.

Used by the simulated callee (edge.calls.simcallee) so the bot hears speech
the way it arrives from a PBX; the simulator's 8 kHz wire adds the band
limit again on the way in.

Example:
    >>> rng = np.random.default_rng(0)
    >>> heard = phone_line(speak("喂，你好"), LineSettings(noise_dbfs=-55), rng)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.audio import g711
from edge.audio.convert import SAMPLE_RATE, resample


@dataclass(frozen=True)
class LineSettings:
    """One line condition."""

    codec: str = "ulaw"
    """"ulaw" or "alaw" round trip at 8 kHz; "none" keeps 16 kHz linear."""
    noise_dbfs: float | None = -55.0
    """White noise floor, RMS dB below full scale (a quiet line is ~-60); None adds none."""
    gain_db: float = 0.0
    """Gain before the codec (a hot line clips)."""


def noise(samples: int, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """White noise as float samples at `level_dbfs` RMS (int16 scale)."""
    return rng.standard_normal(samples).astype(np.float32) * np.float32(32768.0 * 10 ** (level_dbfs / 20))


def phone_line(pcm16: np.ndarray, settings: LineSettings, rng: np.random.Generator) -> np.ndarray:
    """16 kHz int16 speech as it sounds after the line (still 16 kHz int16)."""
    x = np.asarray(pcm16, dtype=np.float32) * np.float32(10 ** (settings.gain_db / 20))
    if settings.noise_dbfs is not None:
        x = x + noise(len(x), settings.noise_dbfs, rng)
    pcm = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    if settings.codec == "none":
        return pcm
    narrow = resample(pcm, SAMPLE_RATE, 8000)
    if settings.codec == "alaw":
        narrow = g711.alaw_decode(g711.alaw_encode(narrow))
    else:
        narrow = g711.ulaw_decode(g711.ulaw_encode(narrow))
    return resample(narrow, 8000, SAMPLE_RATE)
