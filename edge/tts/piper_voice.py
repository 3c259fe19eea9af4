"""Real voices by path: piper-tts (`x.onnx` + `x.onnx.json`), resampled to 16 kHz.

piper-tts is GPL-3.0; it is an optional dependency, imported on first use.
Its own "pinyin" phonemizer downloads a model, so voices must use
`phoneme_type: espeak` (e.g. voice `cmn`) on an offline box.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np

from edge.audio.convert import resample
from edge.errors import ModelDirError, SpeechEngineError
from edge.tts.base import SentenceSynthesizer, SynthesisSettings

_LOGGER = logging.getLogger(__name__)
_REQUIRED = ("num_symbols", "num_speakers", "phoneme_id_map")


class PiperVoice(SentenceSynthesizer):
    """A piper voice file, checked before piper sees it.

    Example:
        >>> voice = PiperVoice(Path("zh_CN-huayan-medium.onnx"))
        >>> pcm = voice.synthesize("您好")
    """

    def __init__(self, model_path: Path, speaker_id: int | None = None) -> None:
        model_path = Path(model_path)
        config_path = _check(model_path)
        try:
            from piper import PiperVoice as _Piper
            from piper import SynthesisConfig
        except ImportError:
            raise SpeechEngineError("piper voices need the piper-tts package (GPL-3.0): pip install piper-tts") from None
        _LOGGER.debug("loading piper voice %s with config %s", model_path, config_path)
        try:
            self._voice = _Piper.load(model_path, config_path=config_path)
        except Exception as exc:  # piper raises bare exceptions for bad files
            raise SpeechEngineError(f"{model_path}: piper could not load the voice ({exc})") from None
        self._config_type = SynthesisConfig
        self.speaker_id = speaker_id
        digest = hashlib.sha256(model_path.read_bytes()).hexdigest()[:16]
        self.voice_id = f"piper:{model_path.name}:{digest}"

    def _sentence(self, sentence: str, settings: SynthesisSettings) -> np.ndarray:
        config = self._config_type(speaker_id=self.speaker_id,
                                   length_scale=None if settings.speed is None else 1.0 / settings.speed)
        parts, rate = [], 16000
        for chunk in self._voice.synthesize(sentence, config):
            parts.append(chunk.audio_int16_array)
            rate = chunk.sample_rate
        pcm = np.concatenate(parts) if parts else np.zeros(0, np.int16)
        return resample(pcm.astype(np.int16), rate)


def _check(model_path: Path) -> Path:
    if not model_path.is_file():
        raise ModelDirError(f"piper voice not found: {model_path} (give the path of the .onnx file)")
    config_path = Path(f"{model_path}.json")
    if not config_path.is_file():
        raise ModelDirError(f"{model_path}: missing {config_path.name} beside it; piper voices come as "
                            "x.onnx + x.onnx.json")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelDirError(f"{config_path}: not valid JSON ({exc})") from None
    missing = [key for key in _REQUIRED if key not in config]
    if "sample_rate" not in config.get("audio", {}):
        missing.append("audio.sample_rate")
    if missing:
        raise ModelDirError(f"{config_path}: missing key(s) {', '.join(missing)}; is this a piper voice?")
    if config.get("phoneme_type", "espeak") != "espeak":
        raise ModelDirError(f"{config_path}: phoneme_type {config['phoneme_type']!r} needs a download at run time; "
                            "use a voice with phoneme_type 'espeak'")
    return config_path
