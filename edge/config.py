"""One typed config, read from TOML, with defaults that run out of the box."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from edge.errors import ConfigError

PACKAGE_DIR: Final = Path(__file__).resolve().parent
DEFAULT_BUNDLE_DIR: Final = PACKAGE_DIR / "models" / "default"
DEFAULT_INTENT_DIR: Final = DEFAULT_BUNDLE_DIR / "intent"
ENGINES: Final = ("onnxruntime", "openvino")
DEFAULT_ASR_DIR: Final = DEFAULT_BUNDLE_DIR / "asr"
DEFAULT_DATA_DIR: Final = Path(os.environ.get("SALESBOT_DATA_DIR", "~/.local/share/edge-salesbot")).expanduser()
"""Where the box keeps installed models and caches; $SALESBOT_DATA_DIR overrides it."""
ASR_BACKENDS: Final = ("sherpa-onnx", "vosk")


@dataclass
class NluConfig:
    intent_bundle: Path = DEFAULT_INTENT_DIR
    """Directory of the intent bundle (manifest.json inside)."""
    engine: str = "onnxruntime"
    """Inference engine: "onnxruntime" or "openvino"."""
    threads: int = 1
    """Intra-op threads per model; 1 keeps 100 calls on 2 cores predictable."""
    threshold: float | None = None
    """Score a label needs to be reported; None takes the bundle's tuned value."""

    def validate(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"nlu.engine must be one of {ENGINES}, got {self.engine!r}")
        if self.threads < 1:
            raise ConfigError(f"nlu.threads must be >= 1, got {self.threads}")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"nlu.threshold must be in (0, 1), got {self.threshold}")


@dataclass
class TtsConfig:
    voice: str = "cmn"
    """"cmn" (Mandarin), "yue" (Cantonese), an espeak-ng variant such as "cmn+f3",
    or the path of a piper voice (x.onnx beside x.onnx.json)."""
    speed: float | None = None
    """Speaking speed relative to the voice's normal 1.0 (0.5-2.0); None keeps the voice's own."""
    pitch: int | None = None
    """Base pitch 0-100 for espeak-ng voices (50 is normal); None keeps the voice's own."""
    cache_dir: Path | None = DEFAULT_DATA_DIR / "tts-cache"
    """Prompt cache directory (rendered script lines); None turns the cache off."""

    def validate(self) -> None:
        if self.speed is not None and not 0.3 <= self.speed <= 3.0:
            raise ConfigError(f"tts.speed must be in [0.3, 3.0], got {self.speed}")
        if self.pitch is not None and not 0 <= self.pitch <= 100:
            raise ConfigError(f"tts.pitch must be in [0, 100], got {self.pitch}")


@dataclass
class AsrConfig:
    model: Path = DEFAULT_ASR_DIR
    """Model directory: the built-in bundle, a sherpa-onnx model dir or a vosk model dir
    (`salesbot models add` installs them under models_dir)."""
    backend: str | None = None
    """"sherpa-onnx" or "vosk"; None detects it from the directory's files."""
    threads: int = 1
    """Threads per decode call; 1 keeps 100 calls on 2 cores predictable."""
    endpoint_silence_ms: int = 600
    """Trailing silence that ends a caller's turn, ms (400-800 is usual on phone lines)."""
    min_speech_ms: int = 250
    """Shorter voice bursts are ignored as noise, ms."""
    vad_threshold: float = 0.5
    """Silero VAD speech probability threshold (0.5 is its default)."""
    max_batch: int = 32
    """Most streams decoded in one `decode_streams` call."""
    rescore: bool = True
    """Apply the bundle's homophone rescoring (domain n-gram over same-sound characters) if it has one."""
    phrases: Path | None = None
    """Optional phrase list (one per line) for vosk's restricted grammar."""
    models_dir: Path = DEFAULT_DATA_DIR / "models"
    """Where `salesbot models add` installs model directories."""

    def validate(self) -> None:
        if self.backend is not None and self.backend not in ASR_BACKENDS:
            raise ConfigError(f"asr.backend must be one of {ASR_BACKENDS} or unset, got {self.backend!r}")
        if self.threads < 1:
            raise ConfigError(f"asr.threads must be >= 1, got {self.threads}")
        if self.max_batch < 1:
            raise ConfigError(f"asr.max_batch must be >= 1, got {self.max_batch}")
        if not 0.0 < self.vad_threshold < 1.0:
            raise ConfigError(f"asr.vad_threshold must be in (0, 1), got {self.vad_threshold}")
        if self.endpoint_silence_ms < 100 or self.min_speech_ms < 0:
            raise ConfigError("asr.endpoint_silence_ms must be >= 100 and asr.min_speech_ms >= 0")


@dataclass
class Config:
    nlu: NluConfig = field(default_factory=NluConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Config":
        """Build a typed config; an unknown section or key is an error naming it."""
        sections = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        for name, values in data.items():
            if name not in sections:
                raise ConfigError(f"unknown config section [{name}]; known: {sorted(sections)}")
            if not isinstance(values, dict):
                raise ConfigError(f"config section [{name}] must be a table")
            kwargs[name] = _section_from_dict(sections[name].default_factory, name, values)
        config = cls(**kwargs)
        for section in dataclasses.fields(config):
            getattr(config, section.name).validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        """Plain values TOML can hold: paths as strings, an unset optional path as "", other Nones left out."""
        out: dict[str, Any] = {}
        for section in dataclasses.fields(self):
            values = getattr(self, section.name)
            out[section.name] = {}
            for f in dataclasses.fields(values):
                value = getattr(values, f.name)
                if value is None and f.type == "Path | None":
                    value = ""
                if value is not None:
                    out[section.name][f.name] = str(value) if isinstance(value, Path) else value
        return out


def _section_from_dict(section_type, name: str, values: dict[str, Any]):
    known = {f.name: f for f in dataclasses.fields(section_type)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key {name}.{key}; known: {sorted(known)}")
        if known[key].type == "Path | None" and value == "":
            value = None  # TOML has no null: "" switches an optional path off
        elif known[key].type in ("Path", Path, "Path | None") and value is not None:
            value = Path(value)
        kwargs[key] = value
    return section_type(**kwargs)


def load(path: str | Path | None = None) -> Config:
    """Read a TOML config; None gives the built-in defaults."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return Config.from_dict(data)
