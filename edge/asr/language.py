"""Which language a caller speaks: Mandarin (``cmn``) or Cantonese (``yue``).

The ASR hears one character set for both, but which characters sound alike
differs (日/一 are both *jat* in Cantonese, not in Mandarin), so the
homophone rescoring needs to know the call's language. It is either set
(``[asr] language``) or guessed from what the caller said so far: written
Cantonese has forms Mandarin never uses (edge/data/cantonese_marks.txt).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Final

LANGUAGES: Final = ("cmn", "yue")
AUTO: Final = "auto"
YUE_SHARE: Final = 0.3
"""A call is Cantonese once this share of its utterances carries a Cantonese form: not every Cantonese
sentence has one (大概三十个人), and one misheard character (问 -> 搵) must not flip a Mandarin call."""
MANDARIN_AFTER: Final = 2
"""Utterances without a Cantonese form it takes to call a call Mandarin; before, each guesses for itself."""
_MARKS = Path(__file__).resolve().parents[1] / "data" / "cantonese_marks.txt"


@functools.lru_cache(maxsize=1)
def cantonese_marks() -> tuple[str, ...]:
    lines = _MARKS.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


@functools.lru_cache(maxsize=1)
def cantonese_characters() -> frozenset[str]:
    """The single characters among the Cantonese forms: written Cantonese only, never Mandarin."""
    return frozenset(mark for mark in cantonese_marks() if len(mark) == 1)


def looks_cantonese(text: str) -> bool:
    return any(mark in text for mark in cantonese_marks())


def guess(text: str) -> str:
    """The language of one utterance on its own."""
    return "yue" if looks_cantonese(text) else "cmn"


class CallLanguage:
    """The language of one call, from its configuration or from its utterances so far.

    Example:
        >>> language = CallLanguage("auto")
        >>> language.observe("喂咩事"); language.code
        'yue'
    """

    def __init__(self, setting: str = AUTO) -> None:
        if setting != AUTO and setting not in LANGUAGES:
            raise ValueError(f"language {setting!r}: expected one of {(AUTO,) + LANGUAGES}")
        self._fixed = None if setting == AUTO else setting
        self._heard = 0
        self._cantonese = 0

    @property
    def code(self) -> str | None:
        """The language to decode the next utterance with; None before anything was heard (guess per text)."""
        if self._fixed:
            return self._fixed
        if self._heard and self._cantonese >= max(1.0, YUE_SHARE * self._heard):
            return "yue"
        # one plain first utterance (喂系你讲) does not make a call Mandarin: a Mandarin call would have
        # the next one's Cantonese forms rewritten (哋 -> 底) and never show it is Cantonese
        return "cmn" if self._heard >= MANDARIN_AFTER else None

    def observe(self, text: str) -> None:
        """Args:
            text: what the acoustic model heard, before rescoring (which may rewrite Cantonese forms)."""
        if text:
            self._heard += 1
            self._cantonese += looks_cantonese(text)
