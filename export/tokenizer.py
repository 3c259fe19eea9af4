"""Character vocabulary from the corpus, saved as an HF tokenizers file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer, processors
from tokenizers.models import WordLevel

from edge.nlu.text import CLS, SPECIAL_TOKENS, UNK, normalizer, pinyin_of, pre_tokenizer


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


def build_pinyin_vocab(texts: Iterable[str], tokenizer: Tokenizer) -> dict[str, int]:
    """Toneless syllables of the corpus, plus one per character of the vocabulary
    (so a character seen only in the vocabulary still has its syllable)."""
    norm = normalizer()
    syllables = set()
    for text in texts:
        syllables.update(pinyin_of(norm.normalize_str(text)))
    chars = "".join(t for t in tokenizer.get_vocab() if len(t) == 1)
    syllables.update(pinyin_of(chars))
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for syllable in sorted(syllables - set(vocab)):
        vocab[syllable] = len(vocab)
    return vocab
