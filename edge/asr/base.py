"""The recognizer interface shared by every backend.

A :class:`Recognizer` holds the model (loaded once, shared by all calls); a
:class:`Stream` holds one call's state. ``stream.accept(pcm16)`` only
buffers; ``recognizer.decode(streams)`` does the work for many calls at once
(sherpa-onnx batches them in one ``decode_streams``), after which
``stream.results()`` returns what is new.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from edge.asr.result import Result
from edge.errors import AudioFormatError


class Stream(Protocol):
    language: str | None
    """The caller's language ("cmn", "yue") when known: it picks the rescoring's sound table. None guesses
    it from each utterance's text (edge/asr/language.py)."""

    def accept(self, pcm16: np.ndarray) -> None:
        """Append 16 kHz mono int16 samples."""

    def finish(self) -> None:
        """No more audio will come; the next decode flushes the last segment."""

    def results(self) -> list[Result]:
        """Partial and final results produced since the last call, oldest first."""

    @property
    def done(self) -> bool:
        """True once finished and everything has been decoded."""


class Recognizer(Protocol):
    info: dict
    """Backend, model kind and path: stored with each call's turns."""

    def stream(self) -> Stream:
        """A new stream for one call."""

    def decode(self, streams: Sequence[Stream]) -> None:
        """Decode whatever audio the streams have buffered, batching model calls."""


def check_pcm(pcm16: np.ndarray) -> np.ndarray:
    """Refuse anything that is not 1-D int16 (the runtime's audio convention)."""
    pcm16 = np.asarray(pcm16)
    if pcm16.dtype != np.int16 or pcm16.ndim != 1:
        raise AudioFormatError(f"streams take 1-D int16 samples at 16 kHz, got {pcm16.dtype} of shape "
                               f"{pcm16.shape}; convert with edge.audio (read_wav, resample, float_to_pcm16)")
    return pcm16


def transcribe(recognizer: Recognizer, pcm16: np.ndarray, chunk_ms: int = 0, language: str | None = None
               ) -> list[Result]:
    """Final results for a whole recording (``chunk_ms`` > 0 feeds it in pieces, like a call).

    Example:
        >>> finals = transcribe(asr.open(), read_wav("call.wav"))
        >>> " ".join(r.text for r in finals)
    """
    stream = recognizer.stream()
    stream.language = language
    finals: list[Result] = []
    step = len(pcm16) if chunk_ms <= 0 else max(1, 16 * chunk_ms)
    for start in range(0, len(pcm16), max(1, step)):
        stream.accept(pcm16[start:start + step])
        recognizer.decode([stream])
        finals += [r for r in stream.results() if r.is_final]
    stream.finish()
    while not stream.done:
        recognizer.decode([stream])
        finals += [r for r in stream.results() if r.is_final]
    return finals


def decode_segments(recognizer: Recognizer, segments: Sequence[np.ndarray],
                    languages: Sequence[str | None] | None = None) -> list[Result]:
    """One final result per segment (an utterance already cut by the caller's endpointer), decoded together.

    Uses the recognizer's own `decode_segments` where it has one (no second VAD pass); otherwise feeds a
    stream per segment through `decode` and joins each stream's final results.

    Example:
        >>> [r.text for r in decode_segments(asr.open(), [pcm_a, pcm_b], ["cmn", None])]
    """
    languages = list(languages) if languages is not None else [None] * len(segments)
    own = getattr(recognizer, "decode_segments", None)
    if own is not None:
        return list(own(segments, languages))
    streams = []
    for pcm, language in zip(segments, languages):
        stream = recognizer.stream()
        stream.language = language
        stream.accept(pcm)
        stream.finish()
        streams.append(stream)
    finals: list[list[Result]] = [[] for _ in streams]
    for _ in range(1000):
        waiting = [s for s in streams if not s.done]
        if not waiting:
            break
        recognizer.decode(waiting)
        for index, stream in enumerate(streams):
            finals[index] += [r for r in stream.results() if r.is_final]
    for index, stream in enumerate(streams):
        finals[index] += [r for r in stream.results() if r.is_final]
    out = []
    for pcm, results in zip(segments, finals):
        raws = [r.raw_text for r in results if r.raw_text is not None]
        out.append(Result(text="".join(r.text for r in results).strip(), is_final=True, start_s=0.0,
                          end_s=round(len(pcm) / 16000, 3), tokens=tuple(t for r in results for t in r.tokens),
                          raw_text="".join(raws) if raws else None))
    return out
