"""Text normalisation and tokenization shared by export and runtime.

The normaliser lives inside tokenizer.json (HF tokenizers), so the exported
bundle and the runtime cut text the same way by construction.
"""

from __future__ import annotations

from typing import Final

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


def encode_batch(tokenizer: Tokenizer, texts: list[str], max_length: int):
    """Token ids and attention mask, padded to the longest text in the batch.

    Returns two int64 numpy arrays [batch, length]; length >= 2 so even an
    empty text has [CLS] plus one pad.
    """
    import numpy as np

    encodings = tokenizer.encode_batch([t[:MAX_CHARS] for t in texts])
    lengths = [min(len(e.ids), max_length) for e in encodings]
    width = max(2, max(lengths, default=0))
    ids = np.zeros((len(texts), width), dtype=np.int64)
    mask = np.zeros((len(texts), width), dtype=np.int64)
    for row, (enc, n) in enumerate(zip(encodings, lengths)):
        ids[row, :n] = enc.ids[:n]
        mask[row, :n] = 1
    return ids, mask
