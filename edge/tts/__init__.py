"""Speech out: `tts.open(config) -> Synthesizer`.

Built-in voices are espeak-ng `cmn` and `yue` (no download); a piper voice
is used by giving its `.onnx` path. Both return 16 kHz mono int16, one
sentence at a time from `stream()`, or all at once from `synthesize()`.

Example:
    >>> from edge import tts
    >>> voice = tts.open()                      # built-in Mandarin, prompt cache on
    >>> pcm = voice.synthesize("您好，我是智销云的小王。")
    >>> for chunk in voice.stream("第一句。第二句。"):
    ...     send(chunk.audio)
"""

from __future__ import annotations

import logging
from pathlib import Path

from edge.config import TtsConfig
from edge.tts.base import AudioChunk, Synthesizer, SynthesisSettings, split_sentences
from edge.tts.cache import CachedSynthesizer, PromptCache, RecentSentences

__all__ = ["AudioChunk", "CachedSynthesizer", "PromptCache", "Synthesizer", "SynthesisSettings", "open",
           "split_sentences", "uncached"]

_LOGGER = logging.getLogger(__name__)


def open(config: TtsConfig | None = None) -> Synthesizer:  # noqa: A001 - the factory's name is the interface
    """Build the synthesizer a config names (voice, speed, pitch, prompt cache).

    Raises:
        ConfigError: an unknown built-in voice name.
        ModelDirError: a piper voice path without its .onnx.json or with missing keys.
        SpeechEngineError: espeak-ng or piper-tts is not installed.
    """
    config = config or TtsConfig()
    config.validate()
    voice = config.voice
    if voice.endswith(".onnx") or "/" in voice or Path(voice).suffix:
        from edge.tts.piper_voice import PiperVoice

        inner: Synthesizer = PiperVoice(Path(voice))
    else:
        from edge.tts.espeak_voice import EspeakVoice

        inner = EspeakVoice(voice)
    if config.cache_dir is not None:
        _LOGGER.debug("prompt cache at %s", config.cache_dir)
        inner = CachedSynthesizer(inner, PromptCache(config.cache_dir))
    return _Defaults(inner, config)


class _Defaults:
    """Applies the config's speed/pitch where a call passes no override."""

    def __init__(self, inner, config: TtsConfig) -> None:
        self.inner = inner
        self.voice_id = inner.voice_id
        self.defaults = SynthesisSettings(speed=config.speed, pitch=config.pitch)

    def _merge(self, settings: SynthesisSettings | None) -> SynthesisSettings:
        if settings is None:
            return self.defaults
        return SynthesisSettings(speed=settings.speed if settings.speed is not None else self.defaults.speed,
                                 pitch=settings.pitch if settings.pitch is not None else self.defaults.pitch)

    def stream(self, text, settings=None):
        return self.inner.stream(text, self._merge(settings))

    def synthesize(self, text, settings=None):
        return self.inner.synthesize(text, self._merge(settings))

    def prerender(self, lines, settings=None) -> int:
        """Render fixed lines into the prompt cache; returns how many were new (0 without a cache)."""
        if isinstance(self.inner, CachedSynthesizer):
            return self.inner.prerender(lines, self._merge(settings))
        return 0


def uncached(synthesizer: Synthesizer) -> Synthesizer:
    """The same voice and defaults without the on-disk prompt cache (for lines not in the script, like
    answers); the sentences said lately are kept in memory (many calls asking the same question at once
    synthesize its answer once)."""
    if isinstance(synthesizer, _Defaults) and isinstance(synthesizer.inner, CachedSynthesizer):
        plain = _Defaults.__new__(_Defaults)
        plain.inner, plain.voice_id, plain.defaults = (RecentSentences(synthesizer.inner.inner),
                                                       synthesizer.voice_id, synthesizer.defaults)
        return plain
    return synthesizer
