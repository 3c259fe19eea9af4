"""Speech in: `asr.open(config) -> Recognizer`, one interface for every backend.

Backends: the built-in Mandarin/Cantonese CTC bundle and third-party
sherpa-onnx models (offline ones cut into turns by silero VAD, streaming ones
with endpointing), and vosk model directories. A directory is checked before
any engine loads it.

Example:
    >>> from edge import asr
    >>> recognizer = asr.open()                    # the built-in model
    >>> stream = recognizer.stream()               # one per call
    >>> stream.accept(pcm16)                       # 16 kHz mono int16
    >>> recognizer.decode([stream, *other_calls])  # many calls, one batch
    >>> for result in stream.results():
    ...     print(result.is_final, result.text, result.start_s)
"""

from __future__ import annotations

import logging

from edge.asr.base import Recognizer, Stream, transcribe
from edge.asr.modeldir import ModelDir, inspect
from edge.asr.result import Result
from edge.config import AsrConfig

__all__ = ["AsrConfig", "ModelDir", "Recognizer", "Result", "Stream", "inspect", "open", "transcribe"]

_LOGGER = logging.getLogger(__name__)


def open(config: AsrConfig | None = None) -> Recognizer:  # noqa: A001 - the factory's name is the interface
    """Load the recognizer a config names (built-in by default).

    Raises:
        ModelDirError: the model directory is missing, incomplete or of an unknown kind (names the file or key).
        BundleError: the built-in or an exported bundle fails its checksums.
        SpeechEngineError: the backend's package is missing or the engine refused the model.
    """
    config = config or AsrConfig()
    config.validate()
    model = inspect(config.model)
    if config.backend is not None and config.backend != model.backend:
        from edge.errors import ConfigError

        raise ConfigError(f"asr.backend is {config.backend!r} but {config.model} is a {model.backend} model")
    rescore = _rescorer(model, config.language_graphs) if config.rescore else None
    _LOGGER.debug("asr model %s: %s/%s", model.root, model.backend, model.kind)
    if model.backend == "vosk":
        from edge.asr.vosk_backend import VoskRecognizer

        return VoskRecognizer(model, config, rescore)
    if model.streaming:
        from edge.asr.sherpa_online import OnlineRecognizer

        return OnlineRecognizer(model, config, rescore)
    from edge.asr.sherpa_offline import OfflineVadRecognizer

    return OfflineVadRecognizer(model, config, rescore)


def _rescorer(model: ModelDir, language_graphs: bool):
    if model.manifest is None or "rescoring" not in model.manifest:
        return None
    from edge.asr.rescore import Rescorer

    # the per-language keep bonuses were tuned on text the graphs searched, not on greedy text
    return Rescorer.from_bundle(model, searched=language_graphs and bool(model.graphs))
