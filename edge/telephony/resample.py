"""Streaming 2x resampling between the 8 kHz wire and the 16 kHz runtime.

One resampler per call and direction; it keeps the filter history between
20 ms frames, so frame boundaries leave no clicks, and it returns exactly
twice (or half) the samples it is given: a 160-sample wire frame becomes a
320-sample runtime frame with no buffering delay beyond the filter's own
group delay (1.5 ms). The filter is a 48-tap Kaiser-windowed sinc at 16 kHz,
cut off at 3.9 kHz: flat to 0.2 dB up to 3.4 kHz (the telephone band) and
at least 60 dB down from 4.6 kHz. A 20 ms frame is one product with a
cached banded matrix; `process_many` does every call's frame in one
matrix-matrix product (a server's inbound audio, once per loop iteration).

(libsoxr's streaming API holds ~100 ms of audio before it returns any, which
a 20 ms call loop cannot afford; scipy's `resample_poly` keeps no state
between calls.)

Example:
    >>> import numpy as np
    >>> up = resampler(8000, 16000)
    >>> up.process(np.zeros(160, dtype=np.int16)).shape
    (320,)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Final, Protocol

import numpy as np

from edge.errors import ConfigError

__all__ = ["Resampler", "process_block", "process_many", "resampler"]

TAPS: Final = 48
CUTOFF_HZ: Final = 3900.0
KAISER_BETA: Final = 6.0


class Resampler(Protocol):
    """Turns int16 audio at one rate into int16 audio at another, keeping state."""

    def process(self, pcm: np.ndarray) -> np.ndarray:
        """Resample the next chunk (int16, 1-D); returns int16."""

    def frames(self, pcm: np.ndarray, size: int) -> np.ndarray:
        """Resample the next chunk cut in frames of `size` input samples; returns (frames, output samples)."""

    def reset(self) -> None:
        """Forget the history (after a barge-in cut the stream)."""


def _lowpass(taps: int = TAPS, cutoff_hz: float = CUTOFF_HZ, rate_hz: float = 16000.0) -> np.ndarray:
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff_hz / rate_hz * np.sinc(2 * cutoff_hz / rate_hz * n) * np.kaiser(taps, KAISER_BETA)
    return h / h.sum()


_H: Final = _lowpass()


def _to_int16(y: np.ndarray) -> np.ndarray:
    """Round and saturate (np.clip is several times slower than two ufuncs)."""
    y = np.rint(y, out=y)
    np.maximum(y, -32768, out=y)
    np.minimum(y, 32767, out=y)
    return y.astype(np.int16)


class _Identity:
    def process(self, pcm: np.ndarray) -> np.ndarray:
        return np.asarray(pcm, dtype=np.int16)

    def frames(self, pcm: np.ndarray, size: int) -> np.ndarray:
        return np.asarray(pcm, dtype=np.int16).reshape(-1, size)

    def reset(self) -> None:
        pass


MATRIX_MAX: Final = 1024
"""Chunks up to this many samples take one matrix product with a cached banded matrix."""


class _Fir:
    """Filter history shared by both directions: the last HISTORY input samples."""

    HISTORY = 0

    def __init__(self) -> None:
        self._history = np.zeros(self.HISTORY, dtype=np.float32)

    def _window(self, pcm: np.ndarray) -> np.ndarray:
        x = np.empty(self.HISTORY + len(pcm), dtype=np.float32)
        x[:self.HISTORY] = self._history
        x[self.HISTORY:] = pcm
        return x

    def _advance(self, window: np.ndarray) -> None:
        self._history = window[len(window) - self.HISTORY:].copy()

    def frames(self, pcm: np.ndarray, size: int) -> np.ndarray:
        """`process` of a chunk of whole frames of `size` samples (size <= MATRIX_MAX), frame by frame:
        (frames, output samples per frame), all frames in one matrix product over overlapping windows.
        The same numbers as `process` called once per frame (the bot's reply is rendered this way when it
        is queued, so the 20 ms clock only writes bytes)."""
        pcm = np.asarray(pcm)
        if len(pcm) % size or not self._batchable(size) or len(pcm) == 0:
            raise ValueError(f"frames() takes whole frames of {size} samples, got {len(pcm)}")
        x = self._window(pcm)
        windows = np.lib.stride_tricks.sliding_window_view(x, self.HISTORY + size)[::size]
        out = _to_int16(windows @ self.matrix(size))
        self._advance(x)
        return out


class Upsample2x(_Fir):
    """8 kHz -> 16 kHz: zero-stuffing and the low-pass, as two polyphase branches.

    This is the hot path (every inbound 20 ms frame of every call). A chunk of
    up to MATRIX_MAX samples is one vector-matrix product with a cached
    (n + 23, 2n) banded matrix whose columns interleave the two branches; a
    longer one takes two convolutions. `process_many` runs many calls' chunks
    as one matrix-matrix product.
    """

    HISTORY = TAPS // 2 - 1

    def _batchable(self, n: int) -> bool:
        return 0 < n <= MATRIX_MAX

    @staticmethod
    def matrix(n: int) -> np.ndarray:
        return _up_matrix(n)

    def process(self, pcm: np.ndarray) -> np.ndarray:
        n = len(pcm)
        if n == 0:
            return np.zeros(0, dtype=np.int16)
        x = self._window(pcm)
        if n <= MATRIX_MAX:
            out = x @ _up_matrix(n)
        else:
            out = np.empty(2 * n, dtype=np.float32)
            out[0::2] = np.convolve(x, 2 * _H[0::2], "valid")
            out[1::2] = np.convolve(x, 2 * _H[1::2], "valid")
        self._advance(x)
        return _to_int16(out)

    def reset(self) -> None:
        self._history[:] = 0


class Downsample2x(_Fir):
    """16 kHz -> 8 kHz: the low-pass evaluated only at the kept (even) samples.

    Keeps the last 47 input samples; an odd-length chunk leaves one sample
    pending until the next call, so chunk boundaries never shift the phase.
    """

    HISTORY = TAPS - 1

    def __init__(self) -> None:
        super().__init__()
        self._pending: np.ndarray | None = None

    def _batchable(self, n: int) -> bool:
        return self._pending is None and 0 < n <= MATRIX_MAX and n % 2 == 0

    @staticmethod
    def matrix(n: int) -> np.ndarray:
        return _down_matrix(n)

    def process(self, pcm: np.ndarray) -> np.ndarray:
        pcm = np.asarray(pcm)
        if self._pending is not None:
            pcm = np.concatenate([self._pending, pcm])
            self._pending = None
        if len(pcm) % 2:
            self._pending, pcm = pcm[-1:].copy(), pcm[:-1]
        n = len(pcm)
        if n == 0:
            return np.zeros(0, dtype=np.int16)
        x = self._window(pcm)
        out = x @ _down_matrix(n) if n <= MATRIX_MAX else np.convolve(x, _H, "valid")[0::2].astype(np.float32)
        self._advance(x)
        return _to_int16(out)

    def reset(self) -> None:
        self._history[:] = 0
        self._pending = None


@lru_cache(maxsize=8)
def _up_matrix(n: int) -> np.ndarray:
    """(n + 23, 2n): column 2i is the even branch over inputs i..i+23, column 2i+1 the odd one."""
    even, odd = (2 * _H[0::2])[::-1], (2 * _H[1::2])[::-1]
    width = len(even)
    matrix = np.zeros((n + width - 1, 2 * n), dtype=np.float32)
    for i in range(n):
        matrix[i:i + width, 2 * i] = even
        matrix[i:i + width, 2 * i + 1] = odd
    matrix.setflags(write=False)
    return matrix


@lru_cache(maxsize=8)
def _down_matrix(n: int) -> np.ndarray:
    """(n + 47, n / 2): column m is the low-pass ending at input 2m (the filter is symmetric)."""
    matrix = np.zeros((n + TAPS - 1, n // 2), dtype=np.float32)
    for m in range(n // 2):
        matrix[2 * m:2 * m + TAPS, m] = _H[::-1]
    matrix.setflags(write=False)
    return matrix


def process_many(items: Sequence[tuple[Resampler, np.ndarray]]) -> list[np.ndarray]:
    """Same as `[r.process(x) for r, x in items]`, with one matrix product per (kind, length) group.

    This is how a server resamples every call's 20 ms frame at once: 100
    calls cost one (100, 183) x (183, 320) product instead of 100 small ones.
    A resampler listed twice is run in order (its second chunk in a later round).
    """
    results: list[np.ndarray | None] = [None] * len(items)
    todo = list(range(len(items)))
    while todo:
        seen: set[int] = set()
        later: list[int] = []
        groups: dict[tuple[type, int], list[int]] = {}
        for index in todo:
            rs, pcm = items[index]
            if id(rs) in seen:
                later.append(index)
                continue
            seen.add(id(rs))
            if isinstance(rs, (Upsample2x, Downsample2x)) and rs._batchable(len(pcm)):
                groups.setdefault((type(rs), len(pcm)), []).append(index)
            else:
                results[index] = rs.process(pcm)
        for indexes in groups.values():
            if len(indexes) == 1:
                results[indexes[0]] = items[indexes[0]][0].process(items[indexes[0]][1])
                continue
            out = process_block([items[i][0] for i in indexes], np.stack([items[i][1] for i in indexes]))
            for row, index in enumerate(indexes):
                results[index] = out[row].copy()  # a row of its own: a kept frame must not pin the block
        todo = later
    return results  # type: ignore[return-value]


def process_block(resamplers: Sequence[Upsample2x] | Sequence[Downsample2x], block: np.ndarray) -> np.ndarray:
    """One chunk per resampler, as the rows of `block` (all of one kind, distinct, `_batchable` at that
    length): the rows of `[r.process(row) for r, row in zip(resamplers, block)]` as one int16 array, in one
    matrix product, with the histories read and written as blocks (no per-call numpy work)."""
    kind = type(resamplers[0])
    history, n = kind.HISTORY, block.shape[1]
    windows = np.empty((len(resamplers), history + n), dtype=np.float32)
    windows[:, :history] = np.stack([rs._history for rs in resamplers])
    windows[:, history:] = block
    out = _to_int16(windows @ kind.matrix(n))
    tails = windows[:, n:].copy()
    for rs, tail in zip(resamplers, tails, strict=True):
        rs._history = tail
    return out


def resampler(from_hz: int, to_hz: int) -> Resampler:
    """A fresh per-call resampler between two rates of {8000, 16000}.

    Raises:
        ConfigError: any other pair of rates.
    """
    if from_hz == to_hz:
        return _Identity()
    if (from_hz, to_hz) == (8000, 16000):
        return Upsample2x()
    if (from_hz, to_hz) == (16000, 8000):
        return Downsample2x()
    raise ConfigError(f"telephony audio must be 8000 or 16000 Hz; cannot resample {from_hz} -> {to_hz} Hz. "
                      "Set the PBX media stream to 8000 or 16000 Hz.")
