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
DATA_DIR: Final = PACKAGE_DIR / "data"
DEFAULT_SCRIPT: Final = DATA_DIR / "script.yaml"
DEFAULT_KNOWLEDGE: Final = DATA_DIR / "knowledge.csv"


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
class DataConfig:
    dir: Path | None = None
    """Where the box keeps its state (SQLite databases, caches); None: data_dir()."""

    def resolved(self) -> Path:
        return self.dir if self.dir is not None else data_dir()

    def validate(self) -> None:
        pass


@dataclass
class DialogConfig:
    script: Path = DEFAULT_SCRIPT
    """The script (话术) file: YAML, see edge/data/script.yaml."""
    timezone: str = "Asia/Shanghai"
    """IANA zone that "明天下午三点" is resolved in; due dates carry its offset."""
    max_answer_chars: int = 80
    """A knowledge answer longer than this is cut at a sentence end before it is spoken."""

    def validate(self) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"dialog.timezone {self.timezone!r} is not an IANA zone such as 'Asia/Shanghai'") from None
        if self.max_answer_chars < 10:
            raise ConfigError(f"dialog.max_answer_chars must be >= 10, got {self.max_answer_chars}")


@dataclass
class KbConfig:
    database: Path | None = None
    """SQLite knowledge base written by `salesbot kb import`; None: the built-in
    knowledge (edge/data/knowledge.csv), loaded into memory."""
    top_k: int = 3
    """Answers returned by a search."""
    rrf_k: int = 60
    """Reciprocal rank fusion constant: score = sum 1 / (rrf_k + rank); 60 is the usual value."""

    def validate(self) -> None:
        if self.top_k < 1:
            raise ConfigError(f"kb.top_k must be >= 1, got {self.top_k}")
        if self.rrf_k < 1:
            raise ConfigError(f"kb.rrf_k must be >= 1, got {self.rrf_k}")


@dataclass
class RecordsConfig:
    database: Path | None = None
    """SQLite file of call records; None: calls.db in the data directory."""

    def path(self, data_directory: Path) -> Path:
        return self.database if self.database is not None else data_directory / "calls.db"


@dataclass
class LlmConfig:
    url: str | None = None
    """Local OpenAI-compatible chat endpoint (http://127.0.0.1:8000/v1/chat/completions)
    used to phrase knowledge answers; None (the default) uses the templates only."""
    model: str = "local"
    """Model name sent to the endpoint."""
    timeout_ms: int = 800
    """Hard limit per request; on timeout or any error the template answer is used."""

    def validate(self) -> None:
        if self.url is not None and not self.url.startswith(("http://127.", "http://localhost", "http://[::1]")):
            raise ConfigError(f"llm.url must be a local http:// address (the box is offline), got {self.url!r}")
        if not 50 <= self.timeout_ms <= 10_000:
            raise ConfigError(f"llm.timeout_ms must be in [50, 10000], got {self.timeout_ms}")


def parse_host_port(value: str, key: str) -> tuple[str, int] | None:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`; port 0 takes any free port) -> (host, port); "off" -> None.

    Raises:
        ConfigError: no port, a port outside 0-65535, or no host; names the key.

    Example:
        >>> parse_host_port("127.0.0.1:9092", "server.audiosocket")
        ('127.0.0.1', 9092)
    """
    if value.strip().lower() in OFF:
        return None
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{key} must be HOST:PORT such as 127.0.0.1:9092 (or \"off\"), got {value!r}")
    return host, int(port)


OFF: Final = ("off", "none", "")
"""Address values that switch a listener off."""


@dataclass
class ServerConfig:
    """`salesbot serve`: where it listens, how many calls, and how long a call or a shutdown may take."""

    audiosocket: str = "127.0.0.1:9092"
    """Asterisk AudioSocket listen address HOST:PORT, or "off". Use 0.0.0.0:9092 when the PBX is another box."""
    websocket: str = "127.0.0.1:9093"
    """WebSocket media (FreeSWITCH/jambonz) listen address HOST:PORT, or "off"."""
    admin: str = "127.0.0.1:9094"
    """Admin HTTP API (/health, /calls, /reload, /metrics); keep it on localhost or a management LAN."""
    max_calls: int = 100
    """Calls served at once over all transports; one more is refused politely (hangup / HTTP 503)."""
    call_budget_s: float = 600.0
    """Longest a call may run; its handler is then cut off and the call ends with a record (10 min)."""
    shutdown_grace_s: float = 20.0
    """On SIGTERM, active calls get this long to finish before they are closed; keep it under the unit's
    TimeoutStopSec (30 s) minus ~6 s for closing and flushing."""
    handler: str = "auto"
    """What runs each call: "auto" (the call loop when installed, else echo), "echo", "tone", or
    "package.module:factory" (a callable taking the ServeContext and returning a CallHandler)."""
    admin_token_file: Path | None = None
    """File holding the admin API bearer token (mode 0600); None: admin.token in the data directory.
    Generated on first start when missing."""
    min_free_mb: int = 200
    """Free disk space the data directory needs; below it the box refuses new calls (health says why)."""

    def addresses(self) -> dict[str, tuple[str, int] | None]:
        """The three listen addresses, parsed; None where switched off (admin cannot be)."""
        return {name: parse_host_port(getattr(self, name), f"server.{name}")
                for name in ("audiosocket", "websocket", "admin")}

    def token_path(self, data_directory: Path) -> Path:
        return self.admin_token_file if self.admin_token_file is not None else data_directory / "admin.token"

    def validate(self) -> None:
        for name in ("audiosocket", "websocket", "admin", "handler"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"server.{name} must be a string, got {getattr(self, name)!r}")
        for name in ("max_calls", "min_free_mb", "call_budget_s", "shutdown_grace_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int if name in ("max_calls", "min_free_mb")
                                                             else (int, float)):
                raise ConfigError(f"server.{name} must be a number, got {value!r}")
        addresses = self.addresses()
        if addresses["admin"] is None:
            raise ConfigError("server.admin cannot be off: health checks and /metrics need it; bind it to 127.0.0.1")
        if addresses["audiosocket"] is None and addresses["websocket"] is None:
            raise ConfigError("server.audiosocket and server.websocket are both off; the daemon would take no calls")
        if not 1 <= self.max_calls <= 10_000:
            raise ConfigError(f"server.max_calls must be in [1, 10000], got {self.max_calls}")
        if not 0 < self.call_budget_s <= 86_400:
            raise ConfigError(f"server.call_budget_s must be in (0, 86400] seconds, got {self.call_budget_s}")
        if not 0.0 <= self.shutdown_grace_s <= 600:
            raise ConfigError(f"server.shutdown_grace_s must be in [0, 600] seconds, got {self.shutdown_grace_s}")
        if self.min_free_mb < 0:
            raise ConfigError(f"server.min_free_mb must be >= 0, got {self.min_free_mb}")
        if not self.handler or (self.handler not in ("auto", "echo", "tone") and ":" not in self.handler):
            raise ConfigError(f"server.handler must be auto, echo, tone or package.module:factory, got {self.handler!r}")


@dataclass
class Config:
    nlu: NluConfig = field(default_factory=NluConfig)
    data: DataConfig = field(default_factory=DataConfig)
    dialog: DialogConfig = field(default_factory=DialogConfig)
    kb: KbConfig = field(default_factory=KbConfig)
    records: RecordsConfig = field(default_factory=RecordsConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    server: ServerConfig = field(default_factory=ServerConfig)

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
            validate = getattr(getattr(config, section.name), "validate", None)
            if validate is not None:
                validate()
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


def data_dir() -> Path:
    """$SALESBOT_DATA_DIR, else systemd's $STATE_DIRECTORY, else $XDG_DATA_HOME or
    ~/.local/share, /edge-salesbot."""
    for variable in ("SALESBOT_DATA_DIR", "STATE_DIRECTORY"):
        if os.environ.get(variable):
            return Path(os.environ[variable].split(":")[0])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "edge-salesbot"


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
