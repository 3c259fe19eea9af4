"""Character vocabulary from the corpus, saved as an HF tokenizers file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, processors
from tokenizers.models import WordLevel

from edge.nlu.text import CLS, SPECIAL_TOKENS, UNK, normalizer, pre_tokenizer


def build(texts: Iterable[str], min_count: int = 1) -> Tokenizer:
    norm = normalizer()
    counts = Counter(ch for text in texts for ch in norm.normalize_str(text))
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for ch, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if n >= min_count and ch not in vocab:
            vocab[ch] = len(vocab)
    tokenizer = Tokenizer(WordLevel(vocab, unk_token=UNK))
    tokenizer.normalizer = norm
    tokenizer.pre_tokenizer = pre_tokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{CLS} $A", special_tokens=[(CLS, vocab[CLS])])
    return tokenizer


def save(tokenizer: Tokenizer, path: Path) -> None:
    tokenizer.save(str(path))
