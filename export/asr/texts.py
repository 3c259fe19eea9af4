"""What the built-in ASR learns to hear: corpus utterances and script lines, split by family.

Each text carries the espeak-ng language that speaks it: Mandarin and
Sichuanese corpus rows are spoken by `cmn`, Cantonese rows by `yue`; Mandarin
rows are also read in Cantonese (`yue` reading written Chinese), so every
character is heard in both languages. The held-out split is by family (one
idea and its paraphrases), and no held-out text occurs in training at all.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Iterable

from edge.asr.text import normalize
from edge.errors import CorpusError

DATA_DIR: Final = Path(__file__).resolve().parent / "data"
LINES_FILE: Final = DATA_DIR / "lines.tsv"
LM_TEXT_FILES: Final = {"yue": DATA_DIR / "lm_texts_yue.txt", "cmn": DATA_DIR / "lm_texts_cmn.txt"}
"""Text-only material per language: counted into that language's n-gram; spoken in training only with
`build data --speak-lm-texts`."""
EXTRA_HELDOUT_FILE: Final = DATA_DIR / "heldout_extra.tsv"
"""Texts written for evaluation only (session 6), never spoken in training: more Cantonese, so the
rescoring's Cantonese settings can be tuned, and its CER reported, on more than a few dozen sentences."""
LANG_OF_DIALECT: Final = {"mandarin": "cmn", "sichuanese": "cmn", "cantonese": "yue"}
_DIGIT = re.compile(r"[0-9]")


@dataclass(frozen=True)
class Utterance:
    text: str
    """The transcript as written (the model's target is ``normalize(text)``)."""
    lang: str
    """espeak-ng voice that speaks it: "cmn" or "yue"."""
    group: str
    """Family id (corpus) or "line-<n>" (script lines): the unit of the split."""


@dataclass(frozen=True)
class TextSplit:
    train: list[Utterance]
    test: list[Utterance]


def load_corpus(folder: Path) -> list[Utterance]:
    """Corpus rows as utterances; rows with digits are skipped (espeak reads them ambiguously)."""
    out: list[Utterance] = []
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise CorpusError(f"no *.csv files in {folder}")
    for path in files:
        with open(path, encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle):
                text = (row.get("transcript") or "").strip()
                lang = LANG_OF_DIALECT.get((row.get("dialect") or "mandarin").strip(), "cmn")
                if not normalize(text) or _DIGIT.search(text):
                    continue
                out.append(Utterance(text, lang, row.get("family") or f"{path.stem}-{len(out)}"))
    return out


def load_lines(path: Path = LINES_FILE) -> list[Utterance]:
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        lang, _, text = line.partition("\t")
        if lang not in ("cmn", "yue") or not text.strip():
            raise CorpusError(f"{path}:{number}: expected 'cmn|yue<TAB>text'")
        out.append(Utterance(text.strip(), lang, f"line-{number}"))
    return out


def split(utterances: list[Utterance], test_fraction: float = 0.08, seed: int = 1234,
          held_groups: set[str] | None = None) -> TextSplit:
    """Hold out whole groups; then drop from training any text equal to a held-out one.

    ``held_groups``: hold out exactly these groups (e.g. the intent model's test families, so the NLU
    can be measured on transcripts of sentences the ASR never heard); None draws ``test_fraction``.
    """
    groups = sorted({u.group for u in utterances})
    rng = random.Random(seed)
    rng.shuffle(groups)
    held = set(groups[:max(1, round(len(groups) * test_fraction))]) if held_groups is None else set(held_groups)
    test = [u for u in utterances if u.group in held]
    held_texts = {normalize(u.text) for u in test}
    train = [u for u in utterances if u.group not in held and normalize(u.text) not in held_texts]
    return TextSplit(train=train, test=_dedupe(test))


def lm_texts(language: str, held_out: Iterable[str], min_overlap: int = 3) -> tuple[list[str], int]:
    """A language's text-only lines (LM_TEXT_FILES), less any that equal or contain a held-out text of
    ``min_overlap`` characters or more -> (lines kept, lines dropped): the held-out CER stays held out."""
    path = LM_TEXT_FILES.get(language)
    if path is None or not path.exists():
        return [], 0
    held = {normalize(t) for t in held_out}
    long_held = [h for h in held if len(h) >= min_overlap]
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        text = normalize(line)
        if not text or line.startswith("#"):
            continue
        if text in held or any(h in text for h in long_held):
            dropped += 1
            continue
        kept.append(text)
    return kept, dropped


def load_extra_heldout(known: Iterable[str], path: Path = EXTRA_HELDOUT_FILE) -> tuple[list[Utterance], int]:
    """The evaluation-only texts (``lang<TAB>group<TAB>text``) in simplified characters, as the model
    writes them, less any that equal or lie inside a ``known`` text (anything the project may train on)
    -> (kept, dropped).

    Raises:
        CorpusError: a malformed line.
    """
    known_texts = {normalize(t) for t in known}
    known_chars = set("".join(known_texts))
    kept, dropped = [], 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 3 or fields[0] not in ("cmn", "yue") or not normalize(fields[2]):
            raise CorpusError(f"{path}:{number}: expected 'cmn|yue<TAB>group<TAB>text'")
        text = _simplified_as_trained(fields[2].strip(), known_chars)
        key = normalize(text)
        if key in known_texts or any(key in k for k in known_texts if len(k) > len(key)):
            dropped += 1
            continue
        kept.append(Utterance(text, fields[0], fields[1]))
    return _dedupe(kept), dropped


def _simplified_as_trained(text: str, known_chars: set[str]) -> str:
    """Traditional -> Simplified, except characters the training texts themselves use (OpenCC turns the
    Cantonese 搵, 嗰 and 喎 into 揾, 𠮶 and 㖞, which no Cantonese writer uses and the model never saw)."""
    from edge.nlu.text import to_simplified

    simplified = to_simplified(text)
    if len(simplified) != len(text):
        return simplified
    return "".join(old if old in known_chars else new for old, new in zip(text, simplified, strict=True))


def trainable_texts(corpus: Path) -> list[str]:
    """Every text the ASR recipe may speak in training: all corpus rows (either side of any split), the
    script lines and both languages' text-only lines."""
    lm_lines = [line for path in LM_TEXT_FILES.values() if path.exists()
                for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    return [u.text for u in load_corpus(corpus) + load_lines()] + lm_lines


def common_characters() -> list[str]:
    """The 3,755 level-1 characters of GB 2312, the commonest in written Chinese (from the codec itself)."""
    out = []
    for high in range(0xB0, 0xD8):
        for low in range(0xA1, 0xFF):
            try:
                out.append(bytes((high, low)).decode("gb2312"))
            except UnicodeDecodeError:  # the unused end of row 0xD7
                continue
    return out


def widened_vocabulary(vocab: list[str]) -> list[str]:
    """``vocab``, then the common characters it lacks that some dictionary word carries (so that runs of
    dictionary words can teach them), in code-point order: existing ids stay as they were."""
    known, common = set(vocab), common_characters()
    carried = set("".join(dictionary_words(known | set(common))))
    return vocab + sorted(c for c in common if c not in known and c in carried)


def dictionary_words(vocab: Iterable[str]) -> list[str]:
    """Words of 2-4 characters from pypinyin's phrase list (a runtime dependency: no download) written only
    in characters of ``vocab``. That list holds the phrases whose readings need context (a polyphone in
    them), about 47,000, idioms among them: real words, though not the most frequent ones (统计 is not there)."""
    from pypinyin.phrases_dict import phrases_dict

    chars = set(vocab)
    return sorted(w for w in phrases_dict if 2 <= len(w) <= 4 and set(w) <= chars)


def dictionary_runs(vocab: Iterable[str], held_out: Iterable[str], count: int, seed: int = 1234,
                    min_overlap: int = 3) -> list[Utterance]:
    """``count`` runs of 2-5 random words from pypinyin's phrase list, written only in characters of
    ``vocab``; half spoken by `cmn`, half by `yue`.

    Why: the sales texts put each character in a few contexts only, so the model partly recalls sentences
    instead of hearing them (a held-out 贵得很 comes out 对得很). Dictionary words put the same characters
    in thousands of new neighbours, without new output symbols. Runs containing a held-out text of
    ``min_overlap`` characters or more are dropped, so the held-out CER stays held out.
    """
    words = dictionary_words(vocab)
    if not words:
        return []
    long_held = sorted({h for h in (normalize(t) for t in held_out) if len(h) >= min_overlap})
    rng = random.Random(seed)
    out: list[Utterance] = []
    while len(out) < count:
        picked, size = [], rng.randint(2, 5)
        while len(picked) < size:
            word = rng.choice(words)
            if len(word) < 4 or rng.random() < 0.3:  # idioms are most of the 4-character entries
                picked.append(word)
        text = "".join(picked)
        if any(h in text for h in long_held):
            continue
        out.append(Utterance(text, "cmn" if len(out) % 2 == 0 else "yue", f"words-{len(out)}"))
    return out


def with_cantonese_readings(utterances: list[Utterance], fraction: float = 0.5, seed: int = 7) -> list[Utterance]:
    """Add `yue` readings of a share of the Mandarin texts (written Chinese read in Cantonese)."""
    rng = random.Random(seed)
    extra = [Utterance(u.text, "yue", u.group) for u in utterances
             if u.lang == "cmn" and rng.random() < fraction]
    return utterances + extra


def _dedupe(utterances: list[Utterance]) -> list[Utterance]:
    seen, out = set(), []
    for u in utterances:
        key = (normalize(u.text), u.lang)
        if key not in seen:
            seen.add(key)
            out.append(u)
    return out
