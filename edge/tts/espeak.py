"""The built-in synthesizer: libespeak-ng from the `espeakng-loader` wheel, via ctypes.

libespeak-ng keeps one global state (voice, rate, pitch), so every call
takes :data:`_ESPEAK_LOCK`, sets the voice and parameters it needs, and
synthesizes synchronously; samples arrive through a callback at 22050 Hz and
are resampled to 16 kHz.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from edge.audio.convert import SAMPLE_RATE, resample
from edge.errors import SpeechEngineError

_LOGGER = logging.getLogger(__name__)

_ESPEAK_LOCK: Final = threading.Lock()
"""Guards libespeak-ng's process-wide state: voice, parameters, callback buffer."""

_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_CHARS_UTF8: Final = 1
_POS_CHARACTER: Final = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

DEFAULT_RATE_WPM: Final = 175
"""espeak-ng's speaking rate in words per minute (80-450)."""
DEFAULT_PITCH: Final = 50
"""espeak-ng's base pitch, 0-100."""


@dataclass(frozen=True)
class EspeakSettings:
    """What one espeak-ng utterance sounds like."""

    voice: str = "cmn"
    """espeak-ng voice: "cmn" (Mandarin), "yue" (Cantonese), "ko", ...; "+f3"-style variant suffix allowed."""
    rate_wpm: int = DEFAULT_RATE_WPM
    """Speaking rate, words per minute (80-450; 175 is espeak's default)."""
    pitch: int = DEFAULT_PITCH
    """Base pitch, 0-100 (50 is espeak's default)."""
    pitch_range: int = 50
    """Intonation range, 0-100 (0 is a monotone)."""
    volume: int = 100
    """Amplitude, 0-200 (100 is espeak's default)."""


class _Engine:
    """The loaded library; one per process."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError:
            raise SpeechEngineError("the built-in TTS needs the espeakng-loader package: "
                                    "pip install espeakng-loader") from None
        lib_path = espeakng_loader.get_library_path()
        data_path = espeakng_loader.get_data_path()
        try:
            self.lib = ctypes.CDLL(lib_path)
        except OSError as exc:
            raise SpeechEngineError(f"cannot load libespeak-ng from {lib_path}: {exc}; "
                                    "reinstall espeakng-loader") from None
        self.data_path = Path(data_path)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self.lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                          ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(self.data_path).encode(), 0)
        if rate <= 0:
            raise SpeechEngineError(f"espeak_Initialize failed ({rate}) with data at {self.data_path}; "
                                    "reinstall espeakng-loader")
        self.rate = rate
        self._buffer: list[np.ndarray] = []
        self._callback = _CALLBACK(self._on_samples)  # kept referenced for the library's lifetime
        self.lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None
        _LOGGER.debug("libespeak-ng loaded from %s, %d Hz", lib_path, rate)

    def _on_samples(self, wav, count, _events) -> int:
        if wav and count > 0:
            self._buffer.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def synthesize(self, text: str, settings: EspeakSettings) -> np.ndarray:
        """Synthesize at the engine's native rate (22050 Hz); caller holds the lock."""
        if settings.voice != self._voice:
            if self.lib.espeak_SetVoiceByName(settings.voice.encode()) != 0:
                raise SpeechEngineError(f"espeak-ng has no voice {settings.voice!r}; try cmn or yue")
            self._voice = settings.voice
        for param, value in ((_RATE, settings.rate_wpm), (_PITCH, settings.pitch),
                             (_RANGE, settings.pitch_range), (_VOLUME, settings.volume)):
            self.lib.espeak_SetParameter(param, int(value), 0)
        raw = text.encode("utf-8") + b"\0"
        self._buffer = []
        status = self.lib.espeak_Synth(raw, len(raw), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise SpeechEngineError(f"espeak_Synth failed with status {status} for {text[:40]!r}")
        pcm = np.concatenate(self._buffer) if self._buffer else np.zeros(0, np.int16)
        self._buffer = []
        return pcm.astype(np.int16, copy=False)


def _voice_names(data_path: Path) -> set[str]:
    return {p.name for p in (data_path / "lang").rglob("*") if p.is_file()}


_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def speak(text: str, settings: EspeakSettings = EspeakSettings(), rate: int = SAMPLE_RATE) -> np.ndarray:
    """Speak ``text`` with espeak-ng and return int16 mono samples at ``rate`` Hz.

    Example:
        >>> pcm = speak("你好", EspeakSettings(voice="cmn"))
        >>> pcm.dtype.name
        'int16'
    """
    with _ESPEAK_LOCK:
        engine = _engine()
        native = engine.synthesize(text, settings)
        native_rate = engine.rate
    return resample(native, native_rate, rate)


def known_voices() -> set[str]:
    """Voice names espeak-ng's data ships (for error messages and validation)."""
    global _VOICES
    if _VOICES is None:
        with _ESPEAK_LOCK:
            _VOICES = frozenset(_voice_names(_engine().data_path))
    return set(_VOICES)


_VOICES: frozenset[str] | None = None


def known_variants() -> set[str]:
    """Voice variants espeak-ng's data ships (``voices/!v``: m1-m8, f1-f5, Annie, ...), for "cmn+f3"."""
    global _VARIANTS
    if _VARIANTS is None:
        with _ESPEAK_LOCK:
            folder = _engine().data_path / "voices" / "!v"
        _VARIANTS = frozenset(p.name for p in folder.iterdir() if p.is_file()) if folder.is_dir() else frozenset()
    return set(_VARIANTS)


_VARIANTS: frozenset[str] | None = None


def phonemes(text: str, voice: str = "cmn") -> str:
    """espeak-ng's IPA phonemes for ``text`` (tones as digits), e.g. "在" -> "tsˈai5"."""
    with _ESPEAK_LOCK:
        engine = _engine()
        lib = engine.lib
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        if voice != engine._voice:
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise SpeechEngineError(f"espeak-ng has no voice {voice!r}")
            engine._voice = voice
        buffer = ctypes.c_char_p(text.encode("utf-8"))
        out = []
        pointer = ctypes.pointer(buffer)
        while pointer.contents.value:
            piece = lib.espeak_TextToPhonemes(pointer, _CHARS_UTF8, 0x02)
            if not piece:
                break
            out.append(piece.decode("utf-8", "replace"))
        return " ".join(out)
