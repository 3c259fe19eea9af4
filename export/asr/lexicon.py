"""The homophone remedy's data: which characters sound alike, and a domain character n-gram.

88% of a character CTC model's errors here are homophones (在/再, 贵/跪): the
sound is right, the character is not. The bundle therefore carries
- ``lexicon.tsv``: character -> toneless syllable (from espeak-ng's Mandarin
  phonemes), so the runtime knows which characters could stand for which;
  ``lexicon_yue.tsv`` the same from its Cantonese phonemes (日/一 are both
  *jat* there), for Cantonese calls;
- ``lm.json``: character uni/bi/trigram counts of the training texts (the
  corpus' training families and script lines; never the held-out ones);
  ``lm_yue.json`` the same over the Cantonese ones alone, plus Cantonese
  text-only lines (export/asr/data/lm_texts_yue.txt, less any overlapping
  a held-out text): the corpus has few Cantonese rows; ``lm_cmn.json``
  likewise for Mandarin calls.
edge/asr/rescore.py picks, among same-sound characters, the sequence the
domain n-gram prefers, with a bonus for keeping what the acoustic model said.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path

from edge.asr.text import normalize
from edge.tts.espeak import phonemes

_LOGGER = logging.getLogger(__name__)

_TONE = {"cmn": re.compile(r"[0-9ˈˌ\-]|ɜ$"), "yue": re.compile(r"[0-9ˈˌ\-ɜ]")}
"""Tone and stress marks in espeak-ng's phonemes; its Cantonese puts the tone-3 mark ɜ before a final
consonant (八 baaɜt), so there it goes wherever it stands."""


LEXICONS = {"cmn": "lexicon.tsv", "yue": "lexicon_yue.tsv"}
"""Sound table per language (espeak-ng voice) -> its file in the bundle."""
LANGUAGE_LMS = {"yue": "lm_yue.json", "cmn": "lm_cmn.json"}
"""Languages with an n-gram of their own texts and text-only lines, mixed with lm.json for their calls."""


def sound_key(char: str, voice: str = "cmn") -> str | None:
    """Toneless syllable of one character in ``voice``'s language, or None when espeak-ng has none."""
    ipa = phonemes(char, voice).strip()
    if not ipa or " " in ipa:
        return None
    key = _TONE[voice].sub("", ipa)
    return key or None


def build_lexicon(chars: list[str], voice: str = "cmn") -> dict[str, str]:
    out = {}
    for char in chars:
        if "\u4e00" <= char <= "\u9fff" or "\u3400" <= char <= "\u4dbf":
            key = sound_key(char, voice)
            if key:
                out[char] = key
    return out


def build_ngrams(texts: list[str], order: int = 3, min_count_top: int = 1) -> dict:
    """Counts of character n-grams with ^ (start) and $ (end) marks."""
    counts: list[Counter] = [Counter() for _ in range(order)]
    for text in texts:
        chars = ["^"] + list(normalize(text)) + ["$"]
        for n in range(1, order + 1):
            for i in range(len(chars) - n + 1):
                gram = chars[i:i + n]
                if n == 1 and gram == ["^"]:
                    continue
                counts[n - 1]["".join(gram)] += 1
    top = counts[-1]
    counts[-1] = Counter({k: v for k, v in top.items() if v >= min_count_top})
    return {"order": order, "counts": [dict(c) for c in counts]}


def write_lexicons(out_dir: Path, vocab: list[str]) -> dict[str, Path]:
    """Every language's sound table -> {file name: path}."""
    out = {}
    for voice, name in LEXICONS.items():
        path = out_dir / name
        table = build_lexicon(vocab, voice)
        path.write_text("".join(f"{c}\t{k}\n" for c, k in sorted(table.items())), encoding="utf-8")
        out[name] = path
    return out


def write_language_lms(out_dir: Path, train: list[dict], held_out: list[str]) -> dict[str, Path]:
    """Each of LANGUAGE_LMS' n-grams over its own training texts plus its text-only lines (less any that
    overlap ``held_out``) -> {file name: path}."""
    from export.asr.texts import lm_texts

    out = {}
    for language, name in LANGUAGE_LMS.items():
        extra, dropped = lm_texts(language, held_out)
        _LOGGER.info("%s n-gram: %d training texts + %d text-only lines (%d dropped: they overlap held-out texts)",
                     language, sum(t["lang"] == language for t in train), len(extra), dropped)
        texts = [t["text"] for t in train if t["lang"] == language] + extra
        out[name] = _write_json(out_dir / name, build_ngrams(texts))
    return out


def write(out_dir: Path, train: list[dict], vocab: list[str], held_out: list[str]) -> dict[str, Path]:
    """The rescoring files -> {file name: path}.

    Args:
        train: the training texts, ``{"text", "lang"}`` each.
        held_out: every held-out text (tuning and test), which no text-only line may overlap.
    """
    out = write_lexicons(out_dir, vocab)
    out["lm.json"] = _write_json(out_dir / "lm.json", build_ngrams([t["text"] for t in train]))
    return {**out, **write_language_lms(out_dir, train, held_out)}


def _write_json(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return path
