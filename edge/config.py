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
DEFAULT_ASR_DIR: Final = DEFAULT_BUNDLE_DIR / "asr"
ASR_BACKENDS: Final = ("sherpa-onnx", "vosk")


def data_dir() -> Path:
    """$SALESBOT_DATA_DIR, else systemd's $STATE_DIRECTORY, else $XDG_DATA_HOME or
    ~/.local/share, /edge-salesbot."""
    for variable in ("SALESBOT_DATA_DIR", "STATE_DIRECTORY"):
        if os.environ.get(variable):
            return Path(os.environ[variable].split(":")[0])
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "edge-salesbot"


DEFAULT_DATA_DIR: Final = data_dir()
"""The data directory as the environment gives it when edge.config is imported."""


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
    device: str = "cpu"
    """Where the model runs: "cpu", "cuda" / "tensorrt" (onnxruntime on NVIDIA), "gpu" (CUDA for
    onnxruntime, the Intel GPU for OpenVINO) or "auto"; a missing GPU falls back to the CPU with one warning."""

    def validate(self) -> None:
        from edge.accel import check_device

        if self.engine not in ENGINES:
            raise ConfigError(f"nlu.engine must be one of {ENGINES}, got {self.engine!r}")
        check_device(self.device, "nlu.device", self.engine)
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


def parse_host_port(value: str, key: str, allow_off: bool = True) -> tuple[str, int] | None:
    """`HOST:PORT` (IPv6 as `[::1]:PORT`; port 0 takes any free port) -> (host, port); "off" -> None.

    Raises:
        ConfigError: no port, a port outside 0-65535, or no host; names the key.

    Example:
        >>> parse_host_port("127.0.0.1:9092", "server.audiosocket")
        ('127.0.0.1', 9092)
    """
    if allow_off and value.strip().lower() in OFF:
        return None
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        off = ' (or "off")' if allow_off else ""
        raise ConfigError(f"{key} must be HOST:PORT such as 127.0.0.1:8080{off}, got {value!r}")
    return host, int(port)


OFF: Final = ("off", "none", "")
"""Address values that switch a listener off."""


KIOSK_STARTS: Final = ("enter", "phrase", "both", "voice")
KIOSK_HANDLERS: Final = ("auto", "callloop", "echo", "tone")


@dataclass
class KioskConfig:
    """A kiosk: the box's own microphone and speaker instead of a phone line (`salesbot kiosk`)."""

    input: str | int | None = None
    """Microphone: a device index or part of its name (`salesbot devices`); None: the system default."""
    output: str | int | None = None
    """Speaker: a device index or part of its name; None: the system default."""
    start: str = "enter"
    """How a conversation starts: "enter" (push-to-talk: the Enter key), "phrase" (a start phrase heard
    by the speech recognizer, edge/data/kiosk.yaml), "both", or "voice" (anyone speaking)."""
    idle_timeout_s: float = 20.0
    """Silence from the visitor (while the bot is quiet) that ends the conversation, seconds."""
    max_conversation_s: float = 600.0
    """A conversation still going after this is ended, seconds."""
    gate_tail_ms: int = 200
    """Half-duplex gate: the microphone stays gated this long after the bot's last sound (room echo),
    ms, on top of the sound card's own latency."""
    gate_attenuation_db: float | None = None
    """None: the microphone is muted while the bot speaks (no barge-in); a number such as 30 lowers it by
    that many dB instead, so a visitor speaking close to the microphone can still interrupt."""
    speech_dbfs: float = -40.0
    """Microphone level (RMS, dB below full scale) that counts as someone speaking (voice start, idle timer)."""
    handler: str = "auto"
    """What talks: "callloop" (the voice call loop), "echo" or "tone" (sound checks), "auto" (the call loop
    when this install has it, else echo)."""

    def validate(self) -> None:
        if self.start not in KIOSK_STARTS:
            raise ConfigError(f"kiosk.start must be one of {KIOSK_STARTS}, got {self.start!r}")
        if self.handler not in KIOSK_HANDLERS:
            raise ConfigError(f"kiosk.handler must be one of {KIOSK_HANDLERS}, got {self.handler!r}")
        if not 2.0 <= self.idle_timeout_s <= 3600.0:
            raise ConfigError(f"kiosk.idle_timeout_s must be in [2, 3600], got {self.idle_timeout_s}")
        if self.max_conversation_s < self.idle_timeout_s:
            raise ConfigError("kiosk.max_conversation_s must be >= kiosk.idle_timeout_s")
        if not 0 <= self.gate_tail_ms <= 2000:
            raise ConfigError(f"kiosk.gate_tail_ms must be in [0, 2000], got {self.gate_tail_ms}")
        if self.gate_attenuation_db is not None and not 6.0 <= self.gate_attenuation_db <= 90.0:
            raise ConfigError(f"kiosk.gate_attenuation_db must be in [6, 90] or unset, got {self.gate_attenuation_db}")
        if not -90.0 <= self.speech_dbfs <= -5.0:
            raise ConfigError(f"kiosk.speech_dbfs must be in [-90, -5], got {self.speech_dbfs}")
        for name in ("input", "output"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, int)):
                raise ConfigError(f"kiosk.{name} must be a device name or index, got {value!r}")


@dataclass
class TelephonyConfig:
    """Where the PBX is and where the box listens for its media (`salesbot doctor` checks them)."""

    audiosocket: str | None = "tcp://127.0.0.1:9092"
    """Where the AudioSocket server listens for Asterisk's media connections (tcp://HOST:PORT); None: not at
    all. Use tcp://0.0.0.0:9092 when Asterisk runs on another box."""
    websocket: str | None = None
    """Where the WebSocket media server listens (ws://HOST:PORT), if used."""
    ami: str | None = None
    """Asterisk manager interface for outbound calls (tcp://PBX:5038); None: no outbound dialling."""

    def validate(self) -> None:
        from edge.telephony.address import parse_uri

        if self.audiosocket is not None:
            parse_uri(self.audiosocket, ("tcp",))
        if self.websocket is not None:
            parse_uri(self.websocket, ("ws",))
        if self.ami is not None:
            parse_uri(self.ami, ("tcp",))


@dataclass
class ComplianceConfig:
    retention_days: int = 180
    """Days after which a call's transcript, recording and contact details are purged
    (`salesbot retention purge`); aggregates and the DNC list stay."""
    recordings_dir: Path | None = None
    """Where call recordings (WAV) are kept; None: recordings/ in the data directory."""

    def recordings(self, data_directory: Path) -> Path:
        return self.recordings_dir if self.recordings_dir is not None else data_directory / "recordings"

    def validate(self) -> None:
        if not 1 <= self.retention_days <= 3650:
            raise ConfigError(f"compliance.retention_days must be in [1, 3650], got {self.retention_days}")


@dataclass
class RoiConfig:
    """The human baseline a campaign is compared with (defaults: the seed's figures) and the bot's costs."""

    human_team_size: int = 20
    human_team_monthly_cost_cny: float = 280_000.0
    """What the whole team costs a month (salaries, seats, lines)."""
    human_conversion: float = 0.018
    """Qualified leads per dial by the human team's pre-screen (1.8%)."""
    human_dials_per_agent_day: int = 200
    workdays_per_month: int = 22
    bot_monthly_cost_cny: float = 3_000.0
    """The box, its upkeep and licences, per month."""
    line_cost_per_min_cny: float = 0.1
    """What the trunk charges per connected minute."""

    def validate(self) -> None:
        if not 0.0 < self.human_conversion < 1.0:
            raise ConfigError(f"roi.human_conversion must be in (0, 1), got {self.human_conversion}")
        for name in ("human_team_size", "human_team_monthly_cost_cny", "human_dials_per_agent_day",
                     "workdays_per_month"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"roi.{name} must be > 0, got {getattr(self, name)}")
        if self.bot_monthly_cost_cny < 0 or self.line_cost_per_min_cny < 0:
            raise ConfigError("roi.bot_monthly_cost_cny and roi.line_cost_per_min_cny must be >= 0")


@dataclass
class ServerConfig:
    """The daemon (`salesbot serve`) and the dashboard: the admin listener, call limits, logins.

    The media listeners are [telephony] audiosocket / websocket.
    """

    admin: str = "127.0.0.1:8080"
    """HOST:PORT of the admin HTTP listener: the dashboard (`salesbot dashboard`) and, under `salesbot serve`,
    the daemon's API (/health, /calls, /reload, /metrics). Keep it on localhost unless a proxy with TLS is in
    front."""
    sim_pace_s: float = 0.3
    """Seconds between simulated callee turns on the dashboard, so calls can be watched live."""
    login_attempts: int = 5
    """Failed logins per address allowed in login_window_s before logins from it are refused."""
    login_window_s: int = 300
    session_hours: int = 12
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
    """File holding the daemon API's bearer token (mode 0600); None: admin.token in the data directory.
    Generated on first start when missing."""
    min_free_mb: int = 200
    """Free disk space the data directory needs; below it the box refuses new calls (health says why)."""

    def admin_address(self) -> tuple[str, int]:
        """(host, port) of `admin`; raises ConfigError naming server.admin when it is not HOST:PORT."""
        return parse_host_port(self.admin, "server.admin", allow_off=False) or ("", 0)  # never None here

    def token_path(self, data_directory: Path) -> Path:
        return self.admin_token_file if self.admin_token_file is not None else data_directory / "admin.token"

    def validate(self) -> None:
        for name in ("admin", "handler"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"server.{name} must be a string, got {getattr(self, name)!r}")
        for name in ("max_calls", "min_free_mb", "call_budget_s", "shutdown_grace_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int if name in ("max_calls", "min_free_mb")
                                                             else (int, float)):
                raise ConfigError(f"server.{name} must be a number, got {value!r}")
        self.admin_address()
        if not 0 <= self.sim_pace_s <= 10:
            raise ConfigError(f"server.sim_pace_s must be in [0, 10], got {self.sim_pace_s}")
        if self.login_attempts < 1 or self.login_window_s < 1 or self.session_hours < 1:
            raise ConfigError("server.login_attempts, login_window_s and session_hours must be >= 1")
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
    language_graphs: bool = True
    """Once a call's language is known (``language``, or heard), decode it under the bundle's graph for that
    language if it has one (sherpa-onnx's CTC search with the domain n-gram) instead of greedily; before that,
    search a turn again under the graph of the language its greedy text shows."""
    language: str = "auto"
    """The callers' language for that rescoring: "cmn" (Mandarin), "yue" (Cantonese), or "auto" (each
    call's own, from the Cantonese forms in what it said so far)."""
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
        if self.language not in ("auto", "cmn", "yue"):
            raise ConfigError(f"asr.language must be auto, cmn or yue, got {self.language!r}")
        if self.endpoint_silence_ms < 100 or self.min_speech_ms < 0:
            raise ConfigError("asr.endpoint_silence_ms must be >= 100 and asr.min_speech_ms >= 0")


@dataclass
class CallConfig:
    """The voice call loop: endpointing, barge-in, timeouts, where model work runs."""

    silence_ms: int = 500
    """Trailing silence that ends a caller turn, ms (a script node's `silence_ms` overrides it)."""
    long_silence_ms: int = 900
    """Trailing silence at nodes that ask for a phone number, WeChat ID, e-mail or a time (people pause
    while giving them), ms."""
    overlap_silence_ms: int = 300
    """Trailing silence that ends speech said over the bot, ms: short, so a backchannel (嗯) is told
    from a barge-in quickly and the paused line resumes soon."""
    min_barge_in_chars: int = 2
    """Speech over the bot interrupts it only when the recognizer heard at least this many characters
    (as Pipecat's MinWordsInterruptionStrategy): a cough or a misheard 嗯 lets the line go on."""
    start_ms: int = 60
    """Speech needed before a turn counts as started, ms (clicks and pops are shorter)."""
    max_utterance_ms: int = 15000
    """A caller turn longer than this is cut and handled, ms (a monologue still gets answers)."""
    no_input_ms: int = 6000
    """Silence after the bot's line before the no-input handling (rephrase, then fallback), ms."""
    max_call_s: int = 600
    """A call still going after this is hung up (its record says "incomplete"), seconds."""
    preroll_ms: int = 500
    """Audio kept from before the speech start and given to the recognizer, ms (the built-in model hears
    a turn better with some of the line before it: 500 rather than 300 took the held-out tuning texts cut
    as calls from 6.09% to 5.97% CER, as benchmarks/asr.py cuts them for its call-loop row)."""
    vad_threshold: float = 0.5
    """Silero speech probability threshold (0.5 is its default)."""
    energy_gate_dbfs: float = -45.0
    """Frames quieter than this (RMS, dB below full scale) skip the VAD model: silence costs nothing."""
    workers: int = 2
    """Worker threads for speech recognition, shared by all calls on a server, when call.asr_processes is 0."""
    asr_processes: int = 1
    """Worker processes that run speech recognition (decoding and rescoring) on a server (call.offload), so it
    does not compete with the event loop for the GIL; 0 runs it on call.workers threads in the daemon. Each
    process holds its own copy of the recognizer (~120 MB RSS for the built-in one: two processes took the
    50-call benchmark to 534 MB, past its 500 MB limit). The simulator and tests (offload off) never start one."""
    reply_workers: int = 1
    """Worker threads for the rest of a reply's model work (intents, tone of voice, synthesis), apart from
    recognition so a reply never queues behind other calls' recognition bursts."""
    early_asr_ms: int = 200
    """Trailing silence after which recognition (and intents) start on what the caller said so far, while
    the endpointer still waits for call.silence_ms: if the turn ends there, its transcript is ready or
    nearly; if the caller goes on, that work is dropped. 0: recognize only once the turn has ended. Used
    on servers (call.offload), never in the unpaced simulator."""
    offload: bool = True
    """Run model work on the worker threads (servers); False runs it inline (the simulator, tests)."""
    model_timeout_s: float = 5.0
    """A batch of model work (ASR, intents) still running after this is cut off, seconds: the calls in it
    lose that turn (heard as unreadable), later batches run on a fresh thread (a hung model)."""
    mood: bool = True
    """Estimate the caller's mood from voice and words and let the script react (impatient, angry)."""

    def validate(self) -> None:
        for name in ("silence_ms", "long_silence_ms", "overlap_silence_ms"):
            if not 100 <= getattr(self, name) <= 5000:
                raise ConfigError(f"call.{name} must be in [100, 5000] ms, got {getattr(self, name)}")
        if not 1 <= self.min_barge_in_chars <= 10:
            raise ConfigError(f"call.min_barge_in_chars must be in [1, 10], got {self.min_barge_in_chars}")
        if not 20 <= self.start_ms <= 1000:
            raise ConfigError(f"call.start_ms must be in [20, 1000] ms, got {self.start_ms}")
        if self.max_utterance_ms < 2000:
            raise ConfigError(f"call.max_utterance_ms must be >= 2000 ms, got {self.max_utterance_ms}")
        if self.no_input_ms < 1000:
            raise ConfigError(f"call.no_input_ms must be >= 1000 ms, got {self.no_input_ms}")
        if self.max_call_s < 10:
            raise ConfigError(f"call.max_call_s must be >= 10 s, got {self.max_call_s}")
        if not 0 <= self.preroll_ms <= 1000:
            raise ConfigError(f"call.preroll_ms must be in [0, 1000] ms, got {self.preroll_ms}")
        if not 0.0 < self.vad_threshold < 1.0:
            raise ConfigError(f"call.vad_threshold must be in (0, 1), got {self.vad_threshold}")
        if not -90.0 <= self.energy_gate_dbfs <= -10.0:
            raise ConfigError(f"call.energy_gate_dbfs must be in [-90, -10], got {self.energy_gate_dbfs}")
        if not 1 <= self.workers <= 16:
            raise ConfigError(f"call.workers must be in [1, 16], got {self.workers}")
        if not 0 <= self.asr_processes <= 8:
            raise ConfigError(f"call.asr_processes must be in [0, 8] (0: recognition in the daemon), got "
                              f"{self.asr_processes}")
        if not 1 <= self.reply_workers <= 16:
            raise ConfigError(f"call.reply_workers must be in [1, 16], got {self.reply_workers}")
        if self.early_asr_ms and not 120 <= self.early_asr_ms <= 5000:
            raise ConfigError(f"call.early_asr_ms must be 0 (off) or in [120, 5000] ms, got {self.early_asr_ms}")
        if not 0.5 <= self.model_timeout_s <= 60.0:
            raise ConfigError(f"call.model_timeout_s must be in [0.5, 60] s, got {self.model_timeout_s}")


@dataclass
class Config:
    nlu: NluConfig = field(default_factory=NluConfig)
    data: DataConfig = field(default_factory=DataConfig)
    dialog: DialogConfig = field(default_factory=DialogConfig)
    kb: KbConfig = field(default_factory=KbConfig)
    records: RecordsConfig = field(default_factory=RecordsConfig)
    llm: LlmConfig = field(default_factory=LlmConfig)
    kiosk: KioskConfig = field(default_factory=KioskConfig)
    telephony: TelephonyConfig = field(default_factory=TelephonyConfig)
    compliance: ComplianceConfig = field(default_factory=ComplianceConfig)
    roi: RoiConfig = field(default_factory=RoiConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    tts: TtsConfig = field(default_factory=TtsConfig)
    asr: AsrConfig = field(default_factory=AsrConfig)
    call: CallConfig = field(default_factory=CallConfig)

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
