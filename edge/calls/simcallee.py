"""A simulated callee: speaks a caller file's lines through the built-in TTS when the bot pauses.

Caller file (as for text calls): UTF-8, one line per turn, `#` comments, an
empty line is a turn of silence (the callee lets the bot's no-input timer
run). Voice calls add:
- `[interrupt] text` (or `~text`): said over the bot's next line, about a
  second into it (a backchannel such as 嗯 must not stop the bot; anything
  else barges in);
- `[hangup]`: the callee hangs up about a second into the bot's next line;
- directive comments `# voice: yue+m7`, `# rate: 168`, `# pitch: 54`,
  `# volume: 100`, `# lead: 张总,华星科技,13800000000`, `# now: 2025-03-05T14:20`,
  `# expect: outcome=meeting_booked grade=A task=meeting` (benchmarks).

The callee has its own voice (a different espeak variant, rate and pitch
from the bot), and its speech goes through a phone line (8 kHz, mu-law,
a noise floor) before the simulator's 8 kHz wire.

Example:
    >>> script = parse_callee_lines(["喂，你好", "[interrupt]嗯", "[hangup]"])
    >>> callee = SimulatedCallee(script.lines)
    >>> CallSimulator(reactive=callee).run(handler)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from edge.audio.line import LineSettings, noise, phone_line
from edge.errors import InputError
from edge.telephony.media import FRAME_SAMPLES
from edge.telephony.simulator import Hangup
from edge.tts.espeak import EspeakSettings, speak

MAX_FILE_BYTES: Final = 1024 * 1024
MAX_LINES: Final = 500
DIRECTIVES: Final = ("voice", "rate", "pitch", "volume", "lead", "now", "expect", "title")
FRAME_S: Final = 0.02
BOT_ACTIVE_RMS: Final = 150.0
"""Bot audio louder than this (int16 RMS, at the wire rate) counts as the bot speaking."""


@dataclass(frozen=True)
class CalleeLine:
    text: str
    """What the callee says ("" = stays silent for this turn)."""
    interrupt: bool = False
    """Said over the bot's line."""
    hangup: bool = False
    """Hangs up (mid-way into the bot's next line)."""
    line: int = 0


@dataclass(frozen=True)
class CallerScript:
    lines: list[CalleeLine]
    directives: dict[str, str] = field(default_factory=dict)


def read_callee_file(path: str | Path) -> CallerScript:
    """A caller file for a simulated voice call.

    Raises:
        InputError: unreadable, not UTF-8, too large, or too many lines.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read caller file {path}: {exc.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(f"{path}: {len(raw)} bytes; a caller file is at most {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not valid UTF-8 (save the caller file as UTF-8)") from None
    return parse_callee_lines(text.splitlines(), str(path))


def parse_callee_lines(lines: Iterable[str], name: str = "<caller>") -> CallerScript:
    out: list[CalleeLine] = []
    directives: dict[str, str] = {}
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep and key.strip().lower() in DIRECTIVES:
                directives[key.strip().lower()] = value.strip()
            continue
        lowered = line.lower()
        if lowered.startswith("[hangup]"):
            out.append(CalleeLine("", hangup=True, line=number))
        elif lowered.startswith("[interrupt]"):
            out.append(CalleeLine(line[len("[interrupt]"):].strip(), interrupt=True, line=number))
        elif line.startswith("~"):
            out.append(CalleeLine(line[1:].strip(), interrupt=True, line=number))
        elif line.startswith("[") and "]" in line:
            raise InputError(f"{name}:{number}: unknown marker {line[:line.index(']') + 1]!r}; "
                             "use [interrupt] or [hangup]")
        else:
            out.append(CalleeLine(line, line=number))
    while out and not out[-1].text and not out[-1].hangup and not out[-1].interrupt:
        out.pop()  # trailing empty lines end the file, they are not silences
    if len(out) > MAX_LINES:
        raise InputError(f"{name}: {len(out)} lines; a simulated call takes at most {MAX_LINES}")
    for entry in out:
        if entry.interrupt and not entry.text:
            raise InputError(f"{name}:{entry.line}: [interrupt] needs the words said over the bot")
    return CallerScript(out, directives)


@dataclass(frozen=True)
class CalleeVoice:
    """How the callee sounds: an espeak-ng voice unlike the bot's (cmn at 175 wpm, pitch 50)."""

    voice: str = "cmn+f4"
    rate_wpm: int = 168
    pitch: int = 54
    volume: int = 100

    @classmethod
    def from_directives(cls, directives: dict[str, str]) -> CalleeVoice:
        try:
            return cls(voice=directives.get("voice", cls.voice),
                       rate_wpm=int(directives.get("rate", cls.rate_wpm)),
                       pitch=int(directives.get("pitch", cls.pitch)),
                       volume=int(directives.get("volume", cls.volume)))
        except ValueError as exc:
            raise InputError(f"caller file directive: {exc}; rate, pitch and volume are whole numbers") from None

    def settings(self) -> EspeakSettings:
        return EspeakSettings(voice=self.voice, rate_wpm=self.rate_wpm, pitch=self.pitch, volume=self.volume)


@dataclass(frozen=True)
class CalleeTiming:
    """When the callee acts, seconds."""

    pause_s: float = 0.7
    """The bot silent this long after speaking: the callee's turn."""
    interrupt_after_s: float = 1.2
    """An [interrupt] line starts this far into the bot's line."""
    hangup_after_s: float = 1.0
    """A [hangup] comes this far into the bot's next line."""
    stuck_s: float = 12.0
    """Waiting this long for the bot to speak, the callee says its next line anyway."""
    linger_s: float = 20.0
    """With nothing left to say, the callee hangs up after this long with the bot silent."""


@dataclass
class Said:
    """One thing the callee did, for the transcript."""

    at_s: float
    text: str
    kind: str = "say"
    """say | interrupt | silence | hangup."""
    seconds: float = 0.0


class SimulatedCallee:
    """A `Caller` for edge.telephony's CallSimulator (`CallSimulator(reactive=callee)`).

    Args:
        lines: what to say, in order.
        voice: how it sounds.
        line: the phone line it speaks through.
        on_say: told each line and its length in seconds as the callee starts it (an OracleRecognizer's
            `said`).
        audio_for: text -> 16 kHz int16 speech instead of the TTS (bad-audio tests).
        seed: the line noise's random seed.
    """

    def __init__(self, lines: list[CalleeLine], voice: CalleeVoice | None = None, *,
                 line: LineSettings | None = None, timing: CalleeTiming | None = None,
                 on_say: Callable[[str, float], None] | None = None,
                 audio_for: Callable[[str], np.ndarray] | None = None, seed: int = 0) -> None:
        self.lines = list(lines)
        self.voice = voice or CalleeVoice()
        self.line = line or LineSettings()
        self.timing = timing or CalleeTiming()
        self.on_say = on_say
        self.audio_for = audio_for
        self.rng = np.random.default_rng(seed)
        self.log: list[Said] = []
        self._next = 0
        self._speech = np.zeros(0, dtype=np.int16)
        self._n = 0
        self._bot_heard = False
        """The bot spoke since the callee's last line ended."""
        self._bot_quiet = 0
        self._bot_talk = 0
        """Frames since the bot started its current stretch (short gaps included)."""
        self._waiting = 0
        """Frames since the callee last finished a line (or the call began)."""
        self._noise: np.ndarray | None = None

    @property
    def at_s(self) -> float:
        return self._n * FRAME_S

    @property
    def finished(self) -> bool:
        return self._next >= len(self.lines) and not len(self._speech)

    def next_frame(self, bot_frame: np.ndarray) -> np.ndarray | Hangup:
        self._hear(bot_frame)
        self._n += 1
        if len(self._speech):
            return self._emit()
        action = self._decide()
        if action is not None:
            return action
        return self._emit() if len(self._speech) else self._floor()

    def _hear(self, bot_frame: np.ndarray) -> None:
        x = np.asarray(bot_frame, dtype=np.float32)
        active = x.size and float(np.dot(x, x)) / x.size >= BOT_ACTIVE_RMS ** 2
        if active:
            if self._bot_quiet * FRAME_S >= self.timing.pause_s:
                self._bot_talk = 0
            self._bot_quiet = 0
            self._bot_talk += 1
            if not len(self._speech):
                self._bot_heard = True
        else:
            self._bot_quiet += 1
            if self._bot_quiet * FRAME_S < self.timing.pause_s:
                self._bot_talk += 1
        if not len(self._speech):
            self._waiting += 1

    def _decide(self) -> Hangup | None:
        timing = self.timing
        bot_talking = self._bot_quiet * FRAME_S < timing.pause_s and self._bot_heard
        if self._next >= len(self.lines):
            if self._bot_quiet * FRAME_S >= timing.linger_s:
                self.log.append(Said(self.at_s, "", "hangup"))
                return Hangup()
            return None
        line = self.lines[self._next]
        stuck = self._waiting * FRAME_S >= timing.stuck_s and self._bot_quiet * FRAME_S >= timing.pause_s
        if line.hangup:
            if (bot_talking and self._bot_talk * FRAME_S >= timing.hangup_after_s) or stuck:
                self._next += 1
                self.log.append(Said(self.at_s, "", "hangup"))
                return Hangup()
            return None
        if line.interrupt:
            if (bot_talking and self._bot_talk * FRAME_S >= timing.interrupt_after_s) or stuck:
                self._start(line, "interrupt")
            return None
        my_turn = self._bot_heard and self._bot_quiet * FRAME_S >= timing.pause_s
        if my_turn or stuck:
            if line.text:
                self._start(line, "say")
            else:
                self._next += 1
                self.log.append(Said(self.at_s, "", "silence"))
                self._after_line()
        return None

    def _start(self, line: CalleeLine, kind: str) -> None:
        self._next += 1
        speech = self.audio_for(line.text) if self.audio_for else speak(line.text, self.voice.settings())
        speech = phone_line(np.asarray(speech, dtype=np.int16), self.line, self.rng)
        self._speech = np.concatenate([speech, np.zeros(-len(speech) % FRAME_SAMPLES, np.int16)])
        self.log.append(Said(self.at_s, line.text, kind, round(len(speech) / 16000, 2)))
        if self.on_say is not None:
            self.on_say(line.text, round(len(speech) / 16000, 3))

    def _emit(self) -> np.ndarray:
        frame, self._speech = self._speech[:FRAME_SAMPLES], self._speech[FRAME_SAMPLES:]
        if not len(self._speech):
            self._after_line()
        return frame

    def _after_line(self) -> None:
        self._bot_heard = False
        self._bot_talk = 0
        self._waiting = 0

    def _floor(self) -> np.ndarray:
        """The line's noise floor while the callee is silent (a few seconds of it, looped)."""
        if self.line.noise_dbfs is None:
            return np.zeros(FRAME_SAMPLES, dtype=np.int16)
        if self._noise is None:
            x = noise(FRAME_SAMPLES * 250, self.line.noise_dbfs, self.rng)
            self._noise = np.clip(np.round(x), -32768, 32767).astype(np.int16).reshape(-1, FRAME_SAMPLES)
        return self._noise[self._n % len(self._noise)]
