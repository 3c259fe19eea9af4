"""A stand-in recognizer for simulated calls: it "hears" exactly what the simulated callee said.

For checking the call loop (timing, barge-in, endpointing, the dialogue)
apart from recognition errors, and for running it where no speech model is
installed. The simulated callee tells it each line as it starts speaking
(`said(text)`); each utterance the endpointer cuts takes the oldest line not
yet heard, or nothing when the audio is near silence or no line is waiting
(noise). It implements edge.asr's Recognizer interface.

Example:
    >>> oracle = OracleRecognizer()
    >>> oracle.said("喂，你好")
    >>> s = oracle.stream(); s.accept(pcm); s.finish(); oracle.decode([s])
    >>> s.results()[0].text
    '喂，你好'
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Final

import numpy as np

from edge.asr.result import Result

MIN_PEAK_RMS: Final = 300.0
"""An utterance whose loudest 20 ms is quieter than this (int16 RMS, ~-40 dBFS) is heard as nothing."""
LEAD_S: Final = 0.4
"""An utterance carries about this much audio besides the line (pre-roll and tail)."""


class OracleRecognizer:
    """Recognizer interface; the text comes from the simulated callee, not the audio."""

    def __init__(self) -> None:
        self.pending: deque[tuple[str, float | None]] = deque()
        self.info = {"backend": "oracle", "kind": "simulated-callee-text", "model": None, "streaming": False}
        self.heard: list[str] = []
        self.missed: list[str] = []
        """Lines skipped because the endpointer never cut an utterance for them."""

    def said(self, text: str, seconds: float | None = None) -> None:
        """The callee starts saying `text` (lasting `seconds`, when known)."""
        self.pending.append((text, seconds))

    def _take(self, seconds: float) -> str:
        """The line an utterance of `seconds` is: the oldest waiting one, unless a later one fits its
        length much better (the earlier was missed); "" for a fragment of a line."""
        candidates = list(self.pending)[:3]
        if not candidates:
            return ""

        def misfit(entry: tuple[str, float | None]) -> float:
            return 0.0 if entry[1] is None else abs(seconds - (entry[1] + LEAD_S))

        best = min(range(len(candidates)), key=lambda i: (misfit(candidates[i]) - 0.5 * (i == 0), i))
        text, length = candidates[best]
        if length is not None and seconds < 0.4 * length:
            return ""  # part of a line cut in two: the rest will bring it
        for _ in range(best):
            self.missed.append(self.pending.popleft()[0])
        self.pending.popleft()
        self.heard.append(text)
        return text

    def stream(self) -> _OracleStream:
        return _OracleStream(self)

    def decode(self, streams: Sequence[_OracleStream]) -> None:
        for stream in streams:
            stream._decode()


class _OracleStream:
    def __init__(self, owner: OracleRecognizer) -> None:
        self._owner = owner
        self._audio: list[np.ndarray] = []
        self._finished = False
        self._done = False
        self._results: list[Result] = []

    def accept(self, pcm16: np.ndarray) -> None:
        self._audio.append(np.asarray(pcm16, dtype=np.int16))

    def finish(self) -> None:
        self._finished = True

    def results(self) -> list[Result]:
        out, self._results = self._results, []
        return out

    @property
    def done(self) -> bool:
        return self._done

    def _decode(self) -> None:
        if not self._finished or self._done:
            return
        self._done = True
        audio = np.concatenate(self._audio) if self._audio else np.zeros(0, np.int16)
        frames = audio[:len(audio) // 320 * 320].astype(np.float32).reshape(-1, 320)
        if not frames.size:
            return
        frames -= frames.mean(axis=1, keepdims=True)
        if float(np.sqrt((frames ** 2).mean(axis=1)).max()) < MIN_PEAK_RMS:
            return
        text = self._owner._take(audio.size / 16000)
        if text:
            self._results.append(Result(text=text, is_final=True, start_s=0.0, end_s=round(audio.size / 16000, 3)))
