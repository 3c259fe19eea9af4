"""A general Mandarin character n-gram, from a word-frequency list, for the Mandarin decoding graph.

The domain n-grams (export/asr/lexicon.py) know the sales call; a caller also
says 播放, 结局, 脚下, which they never saw, and the search then writes the
same-sound characters the acoustic model liked (播访, 接具, 角下). jieba's
dictionary (dict.txt: word, frequency, part of speech; MIT licence, on PyPI, no
download at run time or export time) lists 349,046 words with their counts in
a general corpus. The character n-grams inside its words, weighted by those
counts, give the graph a general sense of which characters go together; they
carry nothing across word boundaries, so they are mixed in with a small weight
(export/asr/graph.py) and only the graph uses them: the bundle ships the graph,
not this n-gram.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

from edge.asr.charlm import CharLm


def jieba_dictionary() -> Path:
    """The dict.txt the installed jieba package ships (found without importing jieba)."""
    spec = importlib.util.find_spec("jieba")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the jieba package is not installed: pip install -e '.[export]'")
    path = Path(spec.origin).parent / "dict.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: jieba's dictionary is missing; reinstall jieba")
    return path


def word_ngram_counts(path: Path, vocab: set[str], min_count: int = 30, order: int = 3) -> dict:
    """Character n-gram counts inside the dictionary's words of two or more characters, each n-gram counted
    with its word's frequency, in ``lm.json``'s layout (no ``^``/``$``: a word is not a sentence).

    Args:
        vocab: characters the model can write; a word with any other character (or a Latin letter) is skipped.
        min_count: n-grams longer than one character seen fewer times are dropped (a smaller graph; the gain
            on the tuning texts stayed).
    """
    counts: list[Counter] = [Counter() for _ in range(order)]
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if len(fields) < 2 or not fields[1].isdigit():
                raise ValueError(f"{path}:{number}: expected 'word frequency [tag]', got {line.strip()!r}")
            word, frequency = fields[0], int(fields[1])
            if len(word) < 2 or not all(char in vocab and "\u4e00" <= char <= "\u9fff" for char in word):
                continue
            for n in range(1, order + 1):
                for i in range(len(word) - n + 1):
                    counts[n - 1][word[i:i + n]] += frequency
    for n in range(1, order):
        counts[n] = Counter({gram: count for gram, count in counts[n].items() if count >= min_count})
    return {"order": order, "counts": [dict(c) for c in counts]}


def general_lm(vocab: set[str], min_count: int = 30, path: Path | None = None) -> CharLm:
    """The general n-gram of jieba's dictionary (or the word list at ``path``, same layout)."""
    return CharLm(word_ngram_counts(path or jieba_dictionary(), vocab, min_count))
