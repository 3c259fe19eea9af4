"""Text normalisation and encoding shared by export and runtime.

The character normaliser lives inside tokenizer.json (HF tokenizers); what a
bundle needs beyond it (Traditional->Simplified with OpenCC, a toneless pinyin
channel) is declared in its manifest, so the exported bundle and the runtime
cut text the same way by construction.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Final, Sequence

import numpy as np
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers

PAD: Final = "[PAD]"
UNK: Final = "[UNK]"
CLS: Final = "[CLS]"
SPECIAL_TOKENS: Final = (PAD, UNK, CLS)
MAX_CHARS: Final = 1000
"""Hostile or runaway text is cut to this before tokenization."""


def normalizer() -> normalizers.Normalizer:
    # NFKC folds full-width forms; punctuation, symbols (emoji) and spaces carry
    # nothing for short ASR turns, which arrive without them anyway.
    return normalizers.Sequence([
        normalizers.NFKC(),
        normalizers.Lowercase(),
        normalizers.Replace(Regex(r"[\p{P}\p{S}\p{C}\s]+"), ""),
    ])


def pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Split(Regex("."), behavior="isolated")


def normalize(text: str) -> str:
    return normalizer().normalize_str(text[:MAX_CHARS])


_OPENCC_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional -> Simplified (Cantonese callers often write Traditional)."""
    with _OPENCC_LOCK:  # one shared native converter
        return _t2s().convert(text)


def pinyin_of(chars: str) -> list[str]:
    """Toneless pinyin per character (non-Chinese characters stand for themselves).

    Whole-string conversion lets pypinyin pick polyphone readings from context.
    """
    from pypinyin import Style, lazy_pinyin

    syllables = lazy_pinyin(chars, style=Style.NORMAL, errors=lambda segment: list(segment))
    if len(syllables) != len(chars):  # pypinyin merged or split something: go char by char
        syllables = [lazy_pinyin(ch, style=Style.NORMAL, errors=lambda s: list(s))[0] for ch in chars]
    return syllables


@functools.lru_cache(maxsize=4096)
def word_sounds(word: str) -> tuple[str, ...]:
    """pinyin_of for a lexicon word, cached (the same few hundred words are looked up every turn)."""
    return tuple(pinyin_of(word))


def occurrences(sequence: list[str], part: list[str]) -> list[int]:
    """Where `part` starts in `sequence` (characters or syllables)."""
    size = len(part)
    return [i for i in range(len(sequence) - size + 1) if sequence[i:i + size] == part]


@dataclass(frozen=True)
class TextEncoder:
    """Text -> model feeds, as declared by a bundle."""

    tokenizer: Tokenizer
    max_length: int = 64
    t2s: bool = False
    pinyin_vocab: dict[str, int] | None = None
    """Syllable -> id; None when the model has no pinyin channel."""

    def prepare(self, text: str) -> str:
        text = text[:MAX_CHARS]
        return to_simplified(text) if self.t2s else text

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """input_ids, attention_mask (and pinyin_ids), int64 [batch, length],
        padded to the longest text; length >= 2 so an empty text still has
        [CLS] plus one pad."""
        prepared = [self.prepare(t) for t in texts]
        encodings = self.tokenizer.encode_batch(prepared)
        lengths = [min(len(e.ids), self.max_length) for e in encodings]
        width = max(2, max(lengths, default=0))
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self.pinyin_vocab is not None:
            feeds["pinyin_ids"] = pin = np.zeros((len(texts), width), dtype=np.int64)
        for row, (enc, n) in enumerate(zip(encodings, lengths)):
            ids[row, :n] = enc.ids[:n]
            mask[row, :n] = 1
            if self.pinyin_vocab is not None:
                pin[row, :n] = self._pinyin_ids(prepared[row], n)
        return feeds


    def _pinyin_ids(self, prepared: str, n: int) -> list[int]:
        # The tokenizer splits the normalised string into one token per
        # character after [CLS], so the normalised string aligns with tokens 1..n-1.
        chars = self.tokenizer.normalizer.normalize_str(prepared)[: n - 1]
        vocab, unk = self.pinyin_vocab, self.pinyin_vocab[UNK]
        return [vocab[CLS]] + [vocab.get(s, unk) for s in pinyin_of(chars)] if chars else [vocab[CLS]] * n


def encode_batch(tokenizer: Tokenizer, texts: list[str], max_length: int):
    """input_ids and attention_mask only (plain character models)."""
    feeds = TextEncoder(tokenizer, max_length).encode(texts)
    return feeds["input_ids"], feeds["attention_mask"]
