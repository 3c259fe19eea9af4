"""On-disk prompt cache: a fixed script line is synthesized once, then read back (~0 ms).

Keyed by text + voice id + settings, stored as 16 kHz WAV files (an operator
can listen to them), written atomically; safe across threads and processes.
Lines read back are also kept in memory (`memory_mb`, least recently used
out first): with 100 calls on the same script, every call says the same
few lines, and reading and decoding the file each time was work for the
reply thread and the GIL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from edge.audio.wav import read_wav_native, write_wav
from edge.errors import AudioFormatError
from edge.tts.base import AudioChunk, Synthesizer, SynthesisSettings, split_sentences

_LOGGER = logging.getLogger(__name__)
KEY_VERSION = 1
"""Bump when synthesis changes in a way that makes old entries wrong."""


def cache_key(text: str, voice_id: str, settings: SynthesisSettings) -> str:
    blob = json.dumps({"v": KEY_VERSION, "text": text, "voice": voice_id, "settings": settings.to_dict()},
                      ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class RecentAudio:
    """Rendered audio by key, least recently used out first past `memory_mb` (read-only arrays)."""

    def __init__(self, memory_mb: float) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, np.ndarray] = OrderedDict()
        self.bytes = 0
        self.limit = int(memory_mb * 1024 * 1024)

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            pcm = self._items.get(key)
            if pcm is not None:
                self._items.move_to_end(key)
            return pcm

    def put(self, key: str, pcm: np.ndarray) -> None:
        if pcm.nbytes > self.limit:
            return
        pcm.setflags(write=False)  # shared by every call that says it
        with self._lock:
            if key in self._items:
                return
            self._items[key] = pcm
            self.bytes += pcm.nbytes
            while self.bytes > self.limit:
                _, old = self._items.popitem(last=False)
                self.bytes -= old.nbytes


class RecentSentences:
    """Wraps a synthesizer without a prompt cache (answers from the knowledge base): sentences said
    lately are kept in memory, so many calls asking the same question at once synthesize its answer
    once, not once each on the reply thread; nothing is written to disk."""

    def __init__(self, inner: Synthesizer, memory_mb: float = 8.0) -> None:
        self.inner = inner
        self.voice_id = inner.voice_id
        self.recent = RecentAudio(memory_mb)

    def stream(self, text: str, settings: SynthesisSettings | None = None) -> Iterator[AudioChunk]:
        settings = settings or SynthesisSettings()
        for sentence in split_sentences(text):
            key = cache_key(sentence, self.voice_id, settings)
            pcm = self.recent.get(key)
            if pcm is None:
                pcm = self.inner.synthesize(sentence, settings)
                self.recent.put(key, pcm)
            yield AudioChunk(sentence, pcm)

    def synthesize(self, text: str, settings: SynthesisSettings | None = None) -> np.ndarray:
        return self.inner.synthesize(text, settings)


class PromptCache:
    """A directory of rendered prompts, the recently used ones also in memory (read-only arrays).

    Args:
        root: the directory.
        memory_mb: audio kept in memory at most, MB (16 kHz int16: 1 MB is ~33 s); 0: none.
    """

    def __init__(self, root: Path, memory_mb: float = 16.0) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.recent = RecentAudio(memory_mb)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.wav"

    def get(self, key: str) -> np.ndarray | None:
        pcm = self.recent.get(key)
        if pcm is not None:
            return pcm
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            pcm, _ = read_wav_native(path)
        except AudioFormatError:
            _LOGGER.warning("prompt cache entry %s is damaged; re-rendering it", path)
            return None
        self.recent.put(key, pcm)
        return pcm

    def put(self, key: str, pcm: np.ndarray) -> None:
        path = self._path(key)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            os.close(handle)
            write_wav(tmp, pcm)
            os.replace(tmp, path)


class CachedSynthesizer:
    """Wraps a synthesizer: whole texts and sentences are looked up before synthesis."""

    def __init__(self, inner: Synthesizer, cache: PromptCache) -> None:
        self.inner = inner
        self.cache = cache
        self.voice_id = inner.voice_id

    def stream(self, text: str, settings: SynthesisSettings | None = None) -> Iterator[AudioChunk]:
        yield from self._chunks(text, settings or SynthesisSettings())

    def _chunks(self, text: str, settings: SynthesisSettings) -> Iterator[AudioChunk]:
        for sentence in split_sentences(text):
            key = cache_key(sentence, self.voice_id, settings)
            pcm = self.cache.get(key)
            if pcm is not None:
                yield AudioChunk(sentence, pcm, cached=True)
                continue
            pcm = self.inner.synthesize(sentence, settings)
            self.cache.put(key, pcm)
            yield AudioChunk(sentence, pcm)

    def synthesize(self, text: str, settings: SynthesisSettings | None = None) -> np.ndarray:
        settings = settings or SynthesisSettings()
        key = cache_key(text, self.voice_id, settings)
        pcm = self.cache.get(key)
        if pcm is None:
            pcm = self.inner.synthesize(text, settings)
            self.cache.put(key, pcm)
        return pcm

    def prerender(self, lines: Iterable[str], settings: SynthesisSettings | None = None) -> int:
        """Render every fixed line (whole and per sentence) once; return how many were new."""
        settings = settings or SynthesisSettings()
        new = 0
        for line in lines:
            if self.cache.get(cache_key(line, self.voice_id, settings)) is None:
                new += 1
            self.synthesize(line, settings)
            for _ in self._chunks(line, settings):
                pass
        return new
