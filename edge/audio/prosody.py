"""Prosody of one utterance: pitch level and range, loudness, speaking rate, pauses.

Pitch is found per 40 ms frame (20 ms hop) by normalised autocorrelation
(computed for all frames in one FFT), which also works on the 300-3400 Hz
phone band where the fundamental itself is filtered out: the harmonics keep
its period. Speaking rate is Chinese characters per second of speaking time
when the recognized text is given (one character is one syllable), else
loudness peaks per second.

Example:
    >>> p = measure(pcm16, text="你们这个多少钱")
    >>> round(p.f0_hz), round(p.rate_sps, 1)
    (212, 4.3)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Final

import numpy as np

from edge.audio.convert import SAMPLE_RATE

FRAME: Final = 640
"""Analysis frame, samples (40 ms)."""
HOP: Final = 320
"""Frame step, samples (20 ms)."""
F0_MIN_HZ: Final = 70.0
F0_MAX_HZ: Final = 400.0
VOICING: Final = 0.55
"""Normalised autocorrelation peak a frame needs to count as voiced."""
ACTIVE_BELOW_PEAK_DB: Final = 30.0
"""Frames within this many dB of the loudest frame are active (speech, not pause)."""


@dataclass(frozen=True)
class Prosody:
    """What an utterance sounds like, independent of the words."""

    f0_hz: float
    """Median pitch of voiced frames, Hz (0 when nothing is voiced)."""
    f0_range_st: float
    """Pitch spread, semitones between the 10th and 90th percentile of voiced frames."""
    energy_db: float
    """Mean level of active frames, dB below full scale."""
    rate_sps: float
    """Syllables per second of speaking time (pauses excluded)."""
    pause_ratio: float
    """Share of the time between the first and last active frame that is pause."""
    speech_s: float
    """Seconds from the first to the last active frame."""
    voiced_ratio: float
    """Share of active frames with a pitch."""

    def to_dict(self) -> dict:
        return {k: round(v, 3) for k, v in asdict(self).items()}


EMPTY: Final = Prosody(0.0, 0.0, -120.0, 0.0, 0.0, 0.0, 0.0)


def _frames(x: np.ndarray, frame: int = FRAME, hop: int = HOP) -> np.ndarray:
    if len(x) < frame:
        x = np.concatenate([x, np.zeros(frame - len(x), np.float32)])
    count = 1 + (len(x) - frame) // hop
    index = np.arange(frame)[None, :] + hop * np.arange(count)[:, None]
    return x[index]


def _pitch(frames: np.ndarray, rate: int) -> np.ndarray:
    """F0 per frame in Hz, 0 where unvoiced."""
    frames = frames - frames.mean(axis=1, keepdims=True)
    windowed = frames * np.hanning(frames.shape[1])[None, :]
    size = 1 << (2 * frames.shape[1] - 1).bit_length()
    spectrum = np.fft.rfft(windowed, size, axis=1)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size, axis=1)[:, :frames.shape[1]]
    window_acf = np.correlate(np.hanning(frames.shape[1]), np.hanning(frames.shape[1]), "full")
    window_acf = window_acf[frames.shape[1] - 1:] / window_acf[frames.shape[1] - 1]
    energy = acf[:, :1]
    norm = acf / np.maximum(energy, 1e-9) / np.maximum(window_acf[None, :], 1e-3)
    low, high = int(rate / F0_MAX_HZ), int(rate / F0_MIN_HZ)
    band = norm[:, low:high + 1]
    best = band.max(axis=1)
    # The first lag close to the best peak: avoids picking a multiple of the period (octave errors).
    first = np.argmax(band >= 0.9 * best[:, None], axis=1)
    # walk to the local maximum from there
    lag = first.copy()
    rows = np.arange(len(band))
    for _ in range(8):
        right = np.minimum(lag + 1, band.shape[1] - 1)
        better = band[rows, right] > band[rows, lag]
        if not better.any():
            break
        lag = np.where(better, right, lag)
    # parabolic refinement
    left, right = np.maximum(lag - 1, 0), np.minimum(lag + 1, band.shape[1] - 1)
    a, b, c = band[rows, left], band[rows, lag], band[rows, right]
    denominator = a - 2 * b + c
    shift = np.where(np.abs(denominator) > 1e-9, 0.5 * (a - c) / np.where(denominator == 0, 1, denominator), 0.0)
    period = lag + low + np.clip(shift, -0.5, 0.5)
    f0 = rate / np.maximum(period, 1.0)
    return np.where((best >= VOICING) & (energy[:, 0] > 0), f0, 0.0)


def _half_rate(x: np.ndarray) -> np.ndarray:
    """Half the sample rate: a [1, 2, 1] / 4 low-pass, then every other sample."""
    smoothed = np.convolve(x, np.array([0.25, 0.5, 0.25], np.float32), mode="same")
    return smoothed[::2]


def _syllable_peaks(level_db: np.ndarray, active: np.ndarray) -> int:
    """Loudness peaks at least 3 dB above the dips around them, 80 ms apart: roughly syllables."""
    smooth = np.convolve(level_db, np.ones(3) / 3, mode="same")
    peaks, last, dip = 0, -10, np.inf
    for i in range(1, len(smooth) - 1):
        dip = min(dip, smooth[i])
        if active[i] and smooth[i] >= smooth[i - 1] and smooth[i] > smooth[i + 1] and smooth[i] - dip >= 3.0 \
                and i - last >= 4:
            peaks, last, dip = peaks + 1, i, np.inf
    return peaks


def _syllables(text: str) -> int:
    return sum(1 for ch in text if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff")


def measure(pcm16: np.ndarray, text: str | None = None, rate: int = SAMPLE_RATE) -> Prosody:
    """Prosody of int16 speech at `rate` Hz; `text` (what was said) makes the rate exact for Chinese."""
    x = np.asarray(pcm16, dtype=np.float32) / 32768.0
    if x.size < FRAME // 2 or not np.any(x):
        return EMPTY
    x = x - x.mean()
    frames = _frames(x)
    power = (frames ** 2).mean(axis=1)
    level_db = 10 * np.log10(power + 1e-12)
    active = level_db >= max(level_db.max() - ACTIVE_BELOW_PEAK_DB, -60.0)
    where = np.flatnonzero(active)
    if where.size == 0:
        return EMPTY
    span = where[-1] - where[0] + 1
    speech_s = span * HOP / rate
    pause_ratio = 1.0 - active[where[0]:where[-1] + 1].mean()
    # Pitch at half the rate: the phone band fits in 8 kHz, and it costs a third.
    f0 = _pitch(_frames(_half_rate(x), FRAME // 2, HOP // 2)[:len(frames)], rate // 2)
    voiced = f0[active & (f0 > 0)]
    if voiced.size:
        f0_hz = float(np.median(voiced))
        p10, p90 = np.percentile(voiced, [10, 90])
        f0_range = float(12 * np.log2(p90 / p10)) if p10 > 0 else 0.0
    else:
        f0_hz, f0_range = 0.0, 0.0
    speaking_s = max(speech_s * (1.0 - pause_ratio), HOP / rate)
    count = _syllables(text or "")
    if count == 0:
        count = _syllable_peaks(level_db, active)
    energy_db = float(10 * np.log10(power[active].mean() + 1e-12))
    return Prosody(f0_hz=f0_hz, f0_range_st=f0_range, energy_db=energy_db, rate_sps=count / speaking_s,
                   pause_ratio=float(pause_ratio), speech_s=float(speech_s),
                   voiced_ratio=float(voiced.size / max(1, active.sum())))
