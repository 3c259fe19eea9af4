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


def default_data_dir() -> Path:
    """$SALESBOT_DATA_DIR, else systemd's $STATE_DIRECTORY, else ~/.local/share/edge-salesbot."""
    for variable in ("SALESBOT_DATA_DIR", "STATE_DIRECTORY"):
        if os.environ.get(variable):
            return Path(os.environ[variable].split(":")[0])
    return Path.home() / ".local" / "share" / "edge-salesbot"


@dataclass
class DataConfig:
    dir: Path | None = None
    """Where the box keeps its state (SQLite databases, caches); None: default_data_dir()."""

    def resolved(self) -> Path:
        return self.dir if self.dir is not None else default_data_dir()

    def validate(self) -> None:
        pass


@dataclass
class Config:
    nlu: NluConfig = field(default_factory=NluConfig)
    data: DataConfig = field(default_factory=DataConfig)

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
        for f in dataclasses.fields(config):
            getattr(config, f.name).validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: {k: str(v) if isinstance(v, Path) else v
                     for k, v in dataclasses.asdict(getattr(self, f.name)).items() if v is not None}
            for f in dataclasses.fields(self)
        }


def _section_from_dict(section_type, name: str, values: dict[str, Any]):
    known = {f.name: f for f in dataclasses.fields(section_type)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"unknown key {name}.{key}; known: {sorted(known)}")
        if known[key].type in ("Path", Path, "Path | None") and value is not None:
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
