"""The built-in voices (espeak-ng `cmn`, `yue`, optional `+variant`) behind the Synthesizer interface."""

from __future__ import annotations

import numpy as np

from edge.tts.base import SentenceSynthesizer, SynthesisSettings
from edge.tts.espeak import DEFAULT_PITCH, DEFAULT_RATE_WPM, EspeakSettings, known_variants, known_voices, speak
from edge.errors import ConfigError


class EspeakVoice(SentenceSynthesizer):
    """espeak-ng speaking one language.

    Example:
        >>> voice = EspeakVoice("yue")
        >>> pcm = voice.synthesize("你好，听日见。")
    """

    def __init__(self, voice: str = "cmn", rate_wpm: int | None = None, pitch: int | None = None) -> None:
        base, _, variant = voice.partition("+")
        if base not in known_voices():
            raise ConfigError(f"unknown built-in voice {voice!r}: use cmn (Mandarin), yue (Cantonese) "
                              "or the path of a piper voice (.onnx)")
        # espeak-ng takes an unknown variant silently and speaks with the plain voice
        variants = known_variants() if variant else set()
        if variant and variant not in variants:
            raise ConfigError(f"unknown espeak-ng variant {variant!r} in {voice!r}: use m1-m8, f1-f5 or another "
                              f"of the {len(variants)} in espeak-ng-data/voices/!v")
        self.voice = voice
        self.rate_wpm = rate_wpm or DEFAULT_RATE_WPM
        self.pitch = DEFAULT_PITCH if pitch is None else pitch
        self.voice_id = f"espeak-ng:{voice}"

    def settings_for(self, settings: SynthesisSettings) -> EspeakSettings:
        rate = round(self.rate_wpm * (settings.speed or 1.0))
        pitch = self.pitch if settings.pitch is None else settings.pitch
        return EspeakSettings(voice=self.voice, rate_wpm=min(450, max(80, rate)), pitch=min(100, max(0, pitch)))

    def _sentence(self, sentence: str, settings: SynthesisSettings) -> np.ndarray:
        return speak(sentence, self.settings_for(settings))
