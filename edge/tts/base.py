"""The synthesizer interface: one sentence-chunked generator, one whole-text call."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np

from edge.audio.convert import SAMPLE_RATE

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…\n])")
_CLAUSE_END = re.compile(r"(?<=[，,、：:])")
MAX_SENTENCE_CHARS = 40
"""Longer sentences are split at commas too, so the first audio leaves early."""


@dataclass(frozen=True)
class SynthesisSettings:
    """Per-call overrides; None leaves the voice's default (as piper's SynthesisConfig does)."""

    speed: float | None = None
    """Speaking speed relative to the voice's normal (1.0); 0.5-2.0 is sensible."""
    pitch: int | None = None
    """Base pitch 0-100 (espeak-ng voices only; 50 is normal)."""

    def to_dict(self) -> dict:
        return {"speed": self.speed, "pitch": self.pitch}


@dataclass(frozen=True)
class AudioChunk:
    """One sentence of speech: 16 kHz mono int16."""

    text: str
    """The sentence this audio speaks."""
    audio: np.ndarray
    """int16 samples at :attr:`rate`."""
    rate: int = SAMPLE_RATE
    cached: bool = False
    """True when it came from the prompt cache (no synthesis ran)."""

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.rate

    def audio_int16_bytes(self) -> bytes:
        return self.audio.astype("<i2").tobytes()


class Synthesizer(Protocol):
    """What :func:`edge.tts.open` returns."""

    voice_id: str
    """Identifies the voice and its model file (part of the prompt-cache key)."""

    def stream(self, text: str, settings: SynthesisSettings | None = None) -> Iterator[AudioChunk]:
        """Yield one :class:`AudioChunk` per sentence, as soon as each is ready."""

    def synthesize(self, text: str, settings: SynthesisSettings | None = None) -> np.ndarray:
        """The whole text as one int16 array at 16 kHz."""


def split_sentences(text: str) -> list[str]:
    """Split at sentence ends, and long sentences at commas; drop empty pieces.

    Example:
        >>> split_sentences("您好！我是小王。请问您方便吗？")
        ['您好！', '我是小王。', '请问您方便吗？']
    """
    out: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        if not sentence:
            continue
        if len(sentence) <= MAX_SENTENCE_CHARS:
            out.append(sentence)
            continue
        piece = ""
        for clause in _CLAUSE_END.split(sentence):
            if piece and len(piece) + len(clause) > MAX_SENTENCE_CHARS:
                out.append(piece.strip())
                piece = ""
            piece += clause
        if piece.strip():
            out.append(piece.strip())
    return [s for s in out if any(ch.isalnum() for ch in s)]


class SentenceSynthesizer:
    """Base for backends that synthesize one sentence at a time."""

    voice_id: str = ""

    def _sentence(self, sentence: str, settings: SynthesisSettings) -> np.ndarray:
        raise NotImplementedError

    def stream(self, text: str, settings: SynthesisSettings | None = None) -> Iterator[AudioChunk]:
        settings = settings or SynthesisSettings()
        for sentence in split_sentences(text):
            yield AudioChunk(sentence, self._sentence(sentence, settings))

    def synthesize(self, text: str, settings: SynthesisSettings | None = None) -> np.ndarray:
        chunks = [chunk.audio for chunk in self.stream(text, settings)]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
