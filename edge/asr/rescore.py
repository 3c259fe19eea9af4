"""Homophone rescoring: swap characters for same-sound ones the domain n-gram prefers.

A character CTC model usually hears the syllable right and picks the wrong
character (在/再, 贵/跪). Given its text, each character may be replaced by
any character with the same toneless syllable (``lexicon.tsv``); a beam
search scores sequences with a Witten-Bell interpolated character trigram
(``lm.json``) plus a bonus per character the acoustic model chose, and the
best sequence wins. Pure Python, ~0.1 ms per character; no torch, no espeak.

Which characters sound alike depends on the language: a bundle may carry a
Cantonese table too (``lexicon_yue.tsv``: 日/一 are both *jat*), used when
the call is Cantonese (edge/asr/language.py); the n-gram is shared.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from edge.asr import language as lang
from edge.errors import BundleError

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RescoreSettings:
    keep_bonus: float = 3.0
    """Log-probability bonus for keeping the acoustic model's character (nats); higher trusts it more."""
    beam: int = 8
    """Hypotheses kept per position."""
    max_candidates: int = 12
    """Most same-sound characters considered per position (most frequent first)."""


class Rescorer:
    """Callable: ``rescorer(text) -> text``.

    Example:
        >>> rescorer = Rescorer.load(Path("edge/models/default/asr"))
        >>> rescorer("我现在再忙")
        '我现在在忙'
    """

    def __init__(self, lexicon: dict[str, str], lm: dict, settings: RescoreSettings = RescoreSettings(),
                 other_lexicons: dict[str, dict[str, str]] | None = None) -> None:
        """Args:
            lexicon: character -> toneless Mandarin syllable (the default table).
            other_lexicons: language code -> its own table (e.g. "yue" -> Cantonese syllables).
        """
        self.settings = settings
        counts = lm["counts"]
        self.order = int(lm["order"])
        self._counts = [dict(c) for c in counts]
        self._total = sum(v for k, v in self._counts[0].items())
        self._vocab = len(self._counts[0]) + 1
        self._history: list[dict[str, list[int]]] = [defaultdict(lambda: [0, 0]) for _ in range(self.order)]
        for n in range(1, self.order):
            for gram, count in self._counts[n].items():
                entry = self._history[n][gram[:-1]]
                entry[0] += count
                entry[1] += 1
        self._tables = {"cmn": self._alternatives_of(lexicon)}
        for code, table in (other_lexicons or {}).items():
            self._tables[code] = self._alternatives_of(table)
        self._cache: dict[str, float] = {}

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._tables)

    def _alternatives_of(self, lexicon: dict[str, str]) -> dict[str, list[str]]:
        """Character -> itself, then the same-sound characters the n-gram knows, most frequent first."""
        unigram = self._counts[0]
        by_key: dict[str, list[str]] = defaultdict(list)
        for char, key in lexicon.items():
            if char in unigram:
                by_key[key].append(char)
        out = {}
        for char, key in lexicon.items():
            options = sorted(by_key.get(key, []), key=lambda c: -unigram.get(c, 0))[: self.settings.max_candidates]
            out[char] = [char] + [c for c in options if c != char]
        return out

    @classmethod
    def load(cls, folder: Path, settings: RescoreSettings = RescoreSettings(),
             other_lexicons: dict[str, str] | None = None) -> "Rescorer":
        """Args:
            other_lexicons: language code -> file name in ``folder`` of that language's sound table.
        """
        try:
            lexicon = _read_lexicon(folder / "lexicon.tsv")
            others = {code: _read_lexicon(folder / name) for code, name in (other_lexicons or {}).items()}
            lm = json.loads((folder / "lm.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BundleError(f"{folder}: rescoring files unreadable ({exc}); re-export the bundle") from None
        return cls(lexicon, lm, settings, others)

    @classmethod
    def from_bundle(cls, model) -> "Rescorer":
        section = model.manifest.get("rescoring", {})
        settings = RescoreSettings(**section.get("settings", {}))
        others = section.get("lexicons") or {}
        listed = model.manifest.get("files", {})
        for code, name in others.items():
            # only files the manifest lists (and so checks by sha256), inside the bundle
            if not isinstance(name, str) or name not in listed or Path(name).name != name:
                raise BundleError(f"{model.root}: rescoring lexicon {code!r} -> {name!r} is not a file of the "
                                  f"bundle; re-export it")
        return cls.load(model.root, settings, others)

    def logprob(self, history: str, char: str) -> float:
        """log P(char | history) under Witten-Bell interpolation (history: up to order-1 chars)."""
        key = history + "\x00" + char
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        p = (self._counts[0].get(char, 0) + 1) / (self._total + self._vocab)
        for n in range(1, min(len(history), self.order - 1) + 1):
            context = history[-n:]
            seen, distinct = self._history[n].get(context, (0, 0))
            if seen == 0:
                break
            p = (self._counts[n].get(context + char, 0) + distinct * p) / (seen + distinct)
        value = math.log(p)
        if len(self._cache) < 200000:
            self._cache[key] = value
        return value

    def __call__(self, text: str, language: str | None = None) -> str:
        """Args:
            language: the call's language ("cmn", "yue"); None guesses it from ``text`` alone.
        """
        if not text:
            return text
        table = self._tables.get(language or lang.guess(text), self._tables["cmn"])
        # A caller known to speak Mandarin does not say 搵 or 嘅: where the model wrote a Cantonese-only
        # character (it hears both languages) a same-sound Mandarin one replaces it (搵 -> 问).
        foreign = lang.cantonese_characters() if language == "cmn" else frozenset()
        keep = self.settings.keep_bonus
        beams: list[tuple[float, str]] = [(0.0, "^")]
        for char in text:
            options = table.get(char, [char])
            if char in foreign and len(options) > 1:
                options = options[1:]
            scored = []
            for score, hyp in beams:
                history = hyp[-(self.order - 1):]
                for option in options:
                    bonus = keep if option == char else 0.0
                    scored.append((score + self.logprob(history, option) + bonus, hyp + option))
            scored.sort(key=lambda item: -item[0])
            beams = scored[: self.settings.beam]
        best = max(beams, key=lambda item: item[0] + self.logprob(item[1][-(self.order - 1):], "$"))
        return best[1][1:]


def _read_lexicon(path: Path) -> dict[str, str]:
    pairs = (line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return {char: key.strip() for char, key in pairs}
