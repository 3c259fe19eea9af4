"""Homophone rescoring: swap characters for same-sound ones the domain n-gram prefers.

A character CTC model usually hears the syllable right and picks the wrong
character (在/再, 贵/跪). Given its text, each character may be replaced by
any character with the same toneless syllable (``lexicon.tsv``); a beam
search scores sequences with a Witten-Bell interpolated character trigram
(``lm.json``) plus a bonus per character the acoustic model chose, and the
best sequence wins. Pure Python, ~0.1 ms per character; no torch, no espeak.

Which characters sound alike depends on the language: a bundle may carry a
Cantonese table too (``lexicon_yue.tsv``: 日/一 are both *jat*), and each
language may have an n-gram of its own texts (``lm_yue.json``, ``lm_cmn.json``),
mixed with the shared one for a call in that language (edge/asr/language.py).
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from edge.asr import language as lang
from edge.asr.charlm import CharLm
from edge.errors import BundleError

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RescoreSettings:
    keep_bonus: float = 3.0
    """Log-probability bonus for keeping the acoustic model's character (nats); higher trusts it more."""
    language_keep_bonus: dict[str, float] = field(default_factory=dict)
    """The keep bonus for an utterance in one language (code -> nats), in place of ``keep_bonus``: text a
    language's graph searched (export/asr/graph.py) has the n-gram weighed already, and is best rescored with
    its own bonus, tuned on such text."""
    beam: int = 8
    """Hypotheses kept per position."""
    max_candidates: int = 12
    """Most same-sound characters considered per position (most frequent first)."""
    language_lm_weight: float | dict[str, float] = 0.0
    """Share of a language's own n-gram (e.g. ``lm_yue.json``) in the mix for a call in that language, one for
    all or per language code; the rest is the n-gram of all texts, where Mandarin dominates (下周三 outweighs
    下昼三 for a Cantonese caller)."""
    guess_margin: float | None = None
    """When the call's language is unknown and an utterance has no Cantonese form (听一见), take it as
    Cantonese still if the Cantonese n-gram likes it better than the shared one by this many nats per
    character; None: only the written forms decide."""


class Rescorer:
    """Callable: ``rescorer(text, language=None) -> text``.

    Example:
        >>> rescorer = Rescorer.load(Path("edge/models/default/asr"))
        >>> rescorer("我现在再忙")
        '我现在在忙'
    """

    def __init__(self, lexicon: dict[str, str], lm: dict, settings: RescoreSettings = RescoreSettings(),
                 other_lexicons: dict[str, dict[str, str]] | None = None,
                 other_lms: dict[str, dict] | None = None) -> None:
        """Args:
            lexicon: character -> toneless Mandarin syllable (the default table).
            lm: character n-gram counts of all training texts.
            other_lexicons: language code -> its own table (e.g. "yue" -> Cantonese syllables).
            other_lms: language code -> n-gram counts of that language's texts alone.
        """
        self.settings = settings
        self.lm = CharLm(lm)
        self.order = self.lm.order
        self._language_lms = {code: CharLm(counts) for code, counts in (other_lms or {}).items()}
        self._tables = {"cmn": self._alternatives_of(lexicon)}
        for code, table in (other_lexicons or {}).items():
            self._tables[code] = self._alternatives_of(table)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._tables)

    def _alternatives_of(self, lexicon: dict[str, str]) -> dict[str, list[str]]:
        """Character -> itself, then the same-sound characters the n-gram knows, most frequent first."""
        unigram = self.lm.counts[0]
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
             other_lexicons: dict[str, str] | None = None, other_lms: dict[str, str] | None = None) -> "Rescorer":
        """Args:
            other_lexicons, other_lms: language code -> file name in ``folder``.
        """
        try:
            lexicon = read_lexicon(folder / "lexicon.tsv")
            tables = {code: read_lexicon(folder / name) for code, name in (other_lexicons or {}).items()}
            lm = json.loads((folder / "lm.json").read_text(encoding="utf-8"))
            lms = {code: json.loads((folder / name).read_text(encoding="utf-8"))
                   for code, name in (other_lms or {}).items()}
        except (OSError, ValueError) as exc:
            raise BundleError(f"{folder}: rescoring files unreadable ({exc}); re-export the bundle") from None
        return cls(lexicon, lm, settings, tables, lms)

    @classmethod
    def from_bundle(cls, model, searched: bool = True) -> "Rescorer":
        """Args:
            searched: the texts come from the bundle's language graphs; False (greedy search) leaves out the
                keep bonuses tuned on such text (``language_keep_bonus``).
        """
        section = model.manifest.get("rescoring", {})
        values = dict(section.get("settings", {}))
        if not searched:
            values.pop("language_keep_bonus", None)
        settings = RescoreSettings(**values)
        listed = model.manifest.get("files", {})
        named = {kind: section.get(kind) or {} for kind in ("lexicons", "lms")}
        for kind, files in named.items():
            for code, name in files.items():
                # only files the manifest lists (and so checks by sha256), inside the bundle
                if not isinstance(name, str) or name not in listed or Path(name).name != name:
                    raise BundleError(f"{model.root}: rescoring {kind} {code!r} -> {name!r} is not a file of the "
                                      f"bundle; re-export it")
        return cls.load(model.root, settings, named["lexicons"], named["lms"])

    def ngrams(self, language: str | None = None) -> list[CharLm]:
        """The n-grams `logprob` mixes for ``language``: the shared one, then that language's own."""
        own = self._language_lms.get(language) if language else None
        return [self.lm] + ([own] if own is not None and self._own_weight(language) > 0 else [])

    def _own_weight(self, language: str | None) -> float:
        weight = self.settings.language_lm_weight
        if isinstance(weight, dict):
            return weight.get(language, 0.0) if language else 0.0
        return weight

    def logprob(self, history: str, char: str, language: str | None = None) -> float:
        """log P(char | history): the n-gram of all texts, mixed with ``language``'s own where it has one."""
        own = self._language_lms.get(language) if language else None
        weight = self._own_weight(language)
        if own is None or weight <= 0:
            return self.lm.logprob(history, char)
        return math.log(weight * own.prob(history, char) + (1 - weight) * self.lm.prob(history, char))

    def guess(self, text: str) -> str:
        """The language of one utterance on its own: its written forms, then the n-grams' likelihood ratio."""
        guessed = lang.guess(text)
        cantonese = self._language_lms.get("yue")
        if guessed == "yue" or cantonese is None or self.settings.guess_margin is None:
            return guessed
        history, ratio = "^", 0.0
        for char in text + "$":
            ratio += cantonese.logprob(history, char) - self.lm.logprob(history, char)
            history = (history + char)[-(self.order - 1):]
        return "yue" if ratio / (len(text) + 1) > self.settings.guess_margin else guessed

    def __call__(self, text: str, language: str | None = None) -> str:
        """Args:
            language: the call's language ("cmn", "yue"); None guesses it from ``text`` alone.
        """
        if not text:
            return text
        given, language = language, language or self.guess(text)
        table = self._tables.get(language, self._tables["cmn"])
        # A caller known to speak Mandarin does not say 搵 or 嘅: no Cantonese-only character is put in
        # (the shared n-gram likes 要搵), and where the model wrote one (it hears both languages) a
        # same-sound Mandarin one replaces it (搵 -> 问).
        foreign = lang.cantonese_characters() if given == "cmn" else frozenset()
        # A guess mixes in the guessed language's own n-gram too. For a Mandarin guess (nothing showed Cantonese:
        # 喂系你讲 could be either) it was kept back until the call was known, lest it pull a Cantonese caller's
        # words to Mandarin ones; with the session-10 text-only lines, mixing it in took the tuning texts' CER,
        # language guessed, from 7.0% to 6.8% (Mandarin 8.1 -> 7.4, Cantonese 6.1 -> 6.2).
        keep = self.settings.language_keep_bonus.get(language, self.settings.keep_bonus)
        beams: list[tuple[float, str]] = [(0.0, "^")]
        for char in text:
            options = table.get(char, [char])
            if foreign:
                options = [option for option in options if option not in foreign] or options
            scored = []
            for score, hyp in beams:
                history = hyp[-(self.order - 1):]
                for option in options:
                    bonus = keep if option == char else 0.0
                    scored.append((score + self.logprob(history, option, language) + bonus, hyp + option))
            scored.sort(key=lambda item: -item[0])
            beams = scored[: self.settings.beam]
        best = max(beams, key=lambda item: item[0] + self.logprob(item[1][-(self.order - 1):], "$", language))
        return best[1][1:]


def read_lexicon(path: Path) -> dict[str, str]:
    """A sound table (``lexicon.tsv``: character<TAB>toneless syllable per line) -> {character: syllable}."""
    pairs = (line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines() if line)
    return {char: key.strip() for char, key in pairs}
