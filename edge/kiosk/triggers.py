"""How a kiosk conversation starts without a dialler.

- `EnterKey`: push-to-talk; Enter in the terminal starts a conversation (and
  ends the one going on).
- `VoiceStart`: anyone speaking at the microphone for `min_speech_ms`.
- `PhraseSpotter`: a start phrase ("你好", "请问", edge/data/kiosk.yaml) in what
  the speech recognizer heard, or an intent from the intent model (VAD plus
  intent). The recognizer is a plain callable, pcm16 -> text, so any backend
  plugs in (`edge.asr` on the speech branch, a test double here).

Every starter is attached to a `StartTarget` (the Kiosk) and fed each
microphone frame the gate let through while no conversation runs.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import unicodedata
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final, Protocol

import numpy as np

from edge.config import DATA_DIR
from edge.errors import ConfigError
from edge.telephony.media import FRAME_MS

__all__ = ["EnterKey", "PhraseSpotter", "StartTarget", "Starter", "VoiceStart", "load_start_words", "normalize"]

_LOGGER = logging.getLogger(__name__)

KIOSK_DATA: Final = DATA_DIR / "kiosk.yaml"


class StartTarget(Protocol):
    def request_start(self, trigger: str) -> None:
        """Start a conversation now (ignored while one runs)."""

    def press(self) -> None:
        """The push-to-talk key: start a conversation, or end the one going on."""

    def input_closed(self) -> None:
        """The key's input ended (stdin closed): no more key presses will come."""


class Starter(Protocol):
    name: str

    def attach(self, target: StartTarget, loop: asyncio.AbstractEventLoop) -> None: ...

    def feed(self, frame: np.ndarray, voiced: bool) -> None:
        """One microphone frame while idle (voiced: louder than kiosk.speech_dbfs, not gated)."""

    def close(self) -> None: ...


class EnterKey:
    """Push-to-talk: each line on stdin (Enter) presses the key.

    Args:
        readline: where lines come from (sys.stdin.readline by default); "" means end of input.
    """

    name = "enter"

    def __init__(self, readline: Callable[[], str] | None = None) -> None:
        self._readline = readline or sys.stdin.readline
        self._thread: threading.Thread | None = None

    def attach(self, target: StartTarget, loop: asyncio.AbstractEventLoop) -> None:
        def read() -> None:
            while True:
                try:
                    line = self._readline()
                except (OSError, ValueError):
                    line = ""
                if loop.is_closed():
                    return
                if not line:
                    loop.call_soon_threadsafe(target.input_closed)
                    return
                loop.call_soon_threadsafe(target.press)

        # A daemon thread: a blocked read of a terminal cannot be interrupted, and must not keep the process alive.
        self._thread = threading.Thread(target=read, name="kiosk-enter-key", daemon=True)
        self._thread.start()

    def feed(self, frame: np.ndarray, voiced: bool) -> None:
        pass

    def close(self) -> None:
        pass


class VoiceStart:
    """Starts a conversation when someone speaks for `min_speech_ms` (within twice that time)."""

    name = "voice"

    def __init__(self, min_speech_ms: int = 300) -> None:
        self.need = max(1, min_speech_ms // FRAME_MS)
        self._recent: deque[bool] = deque(maxlen=2 * self.need)
        self._target: StartTarget | None = None

    def attach(self, target: StartTarget, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target

    def feed(self, frame: np.ndarray, voiced: bool) -> None:
        self._recent.append(voiced)
        if sum(self._recent) >= self.need and self._target is not None:
            self._recent.clear()
            self._target.request_start(self.name)

    def close(self) -> None:
        pass


def normalize(text: str) -> str:
    """Lower case, without spaces, punctuation or symbols (what phrase matching compares)."""
    return "".join(ch for ch in text.lower() if not unicodedata.category(ch).startswith(("P", "S", "Z", "C")))


def load_start_words(path: Path = KIOSK_DATA) -> tuple[list[str], list[str]]:
    """(start phrases, start intents) from the kiosk data file.

    Raises:
        ConfigError: the file is missing, not YAML, or the lists are not lists of strings.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"kiosk data file not found: {path}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    lists = []
    for key in ("start_phrases", "start_intents"):
        values = data.get(key, [])
        if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
            raise ConfigError(f"{path}: {key} must be a list of non-empty strings")
        lists.append(values)
    phrases, intents = lists
    if not phrases:
        raise ConfigError(f"{path}: start_phrases is empty; list at least one phrase such as 你好")
    return phrases, intents


class PhraseSpotter:
    """Starts a conversation when a visitor's utterance contains a start phrase (or a start intent).

    Utterances are cut by level: voiced frames start one (with `preroll_ms` before), `end_silence_ms`
    of quiet ends it, `max_ms` caps it. Each is transcribed off the event loop, one at a time.

    Args:
        transcribe: 16 kHz int16 utterance -> text (any recognizer).
        phrases: start phrases; matched after `normalize`, anywhere in the text.
        classify: text -> intent labels (optional); with `intents`, a start intent starts too.
        intents: labels that start a conversation.
    """

    name = "phrase"

    def __init__(self, transcribe: Callable[[np.ndarray], str], phrases: Iterable[str], *,
                 classify: Callable[[str], list[str]] | None = None, intents: Iterable[str] = (),
                 min_speech_ms: int = 200, end_silence_ms: int = 400, max_ms: int = 4000,
                 preroll_ms: int = 200) -> None:
        self.transcribe = transcribe
        self.phrases = [p for p in (normalize(p) for p in phrases) if p]
        if not self.phrases:
            raise ConfigError("PhraseSpotter needs at least one non-empty start phrase")
        self.classify = classify
        self.intents = set(intents)
        self.min_frames = max(1, min_speech_ms // FRAME_MS)
        self.end_frames = max(1, end_silence_ms // FRAME_MS)
        self.max_frames = max(self.min_frames, max_ms // FRAME_MS)
        self._preroll: deque[np.ndarray] = deque(maxlen=max(1, preroll_ms // FRAME_MS))
        self._utterance: list[np.ndarray] = []
        self._voiced = 0
        self._quiet = 0
        self._busy = False
        self._target: StartTarget | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.heard: list[str] = []
        """Texts transcribed so far (newest last), for logs and tests."""

    def attach(self, target: StartTarget, loop: asyncio.AbstractEventLoop) -> None:
        self._target, self._loop = target, loop

    def matches(self, text: str) -> bool:
        flat = normalize(text)
        if any(phrase in flat for phrase in self.phrases):
            return True
        return bool(self.classify and self.intents and self.intents.intersection(self.classify(text)))

    def feed(self, frame: np.ndarray, voiced: bool) -> None:
        if not self._utterance:
            if voiced:
                self._utterance = [*self._preroll, frame]
                self._voiced, self._quiet = 1, 0
            else:
                self._preroll.append(frame)
            return
        self._utterance.append(frame)
        self._voiced += voiced
        self._quiet = 0 if voiced else self._quiet + 1
        if self._quiet >= self.end_frames or len(self._utterance) >= self.max_frames:
            pcm, enough = np.concatenate(self._utterance), self._voiced >= self.min_frames
            self._utterance, self._voiced, self._quiet = [], 0, 0
            self._preroll.clear()
            if enough:
                self._submit(pcm)

    def _submit(self, pcm: np.ndarray) -> None:
        if self._busy or self._loop is None:
            _LOGGER.debug("start phrase check still busy; utterance of %.1f s skipped", len(pcm) / 16000)
            return
        self._busy = True
        future = self._loop.run_in_executor(None, self._check, pcm)
        future.add_done_callback(self._done)

    def _check(self, pcm: np.ndarray) -> tuple[str, bool]:
        text = self.transcribe(pcm)
        return text, self.matches(text)

    def _done(self, future: asyncio.Future) -> None:
        self._busy = False
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            _LOGGER.warning("start phrase check failed: %s", error)
            return
        text, hit = future.result()
        self.heard.append(text)
        _LOGGER.debug("kiosk heard %r (start phrase: %s)", text, hit)
        if hit and self._target is not None:
            self._target.request_start(self.name)

    def close(self) -> None:
        self._utterance = []
