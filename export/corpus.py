"""The labelled corpus for export: split by family, label set, augmentation.

Reading and validation live in edge.nlu.labelled (the runtime's `intent eval`
needs them without torch); this module adds what only training needs.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Iterable, Sequence

from edge.errors import CorpusError
from edge.nlu.labelled import Example, read_corpus

OTHER: Final = "other"
FILLERS: Final = ("嗯", "那个", "就是", "呃", "啊", "喂", "哎")
# Homophones the phone ASR confuses (toneless pinyin equal); both directions used.
HOMOPHONES: Final = (
    ("在", "再"), ("价格", "加个"), ("需要", "需要么"), ("微信", "威信"), ("试用", "使用"),
    ("钉钉", "丁丁"), ("邮箱", "油箱"), ("公司", "工资"), ("功能", "公能"), ("系统", "体统"),
    ("哪位", "那位"), ("号码", "好吗"), ("的", "得"), ("么", "吗"), ("是", "事"),
)


@dataclass(frozen=True)
class Split:
    train: list[Example]
    dev: list[Example]
    test: list[Example]


def labels_of(examples: Iterable[Example]) -> list[str]:
    """Sorted label set; `other` last so it is easy to find in reports."""
    labels = sorted({label for e in examples for label in e.labels})
    if OTHER in labels:
        labels.remove(OTHER)
        labels.append(OTHER)
    return labels


def corpus_hash(paths: Sequence[str | Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(_csv_files(paths)):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _csv_files(paths: Sequence[str | Path]) -> list[Path]:
    out = []
    for path in map(Path, paths):
        out.extend(sorted(path.glob("*.csv")) if path.is_dir() else [path])
    return out


def split_by_family(examples: list[Example], dev: float = 0.1, test: float = 0.15,
                    seed: int = 1234) -> Split:
    """Split so that no family (one idea and its paraphrases) spans two parts.

    Families are assigned per label group (stratified), so every intent has
    dev and test phrasings it never saw in training.
    """
    by_group: dict[tuple[str, ...], dict[str, list[Example]]] = {}
    for example in examples:
        by_group.setdefault(example.labels, {}).setdefault(example.family, []).append(example)
    rng = random.Random(seed)
    parts: dict[str, list[Example]] = {"train": [], "dev": [], "test": []}
    for group in sorted(by_group):
        families = sorted(by_group[group])
        rng.shuffle(families)
        n = len(families)
        n_test = round(n * test) if n >= 3 else 0
        n_dev = round(n * dev) if n >= 3 else 0
        if n >= 3:
            n_test, n_dev = max(1, n_test), max(1, n_dev)
        for i, family in enumerate(families):
            part = "test" if i < n_test else "dev" if i < n_test + n_dev else "train"
            parts[part].extend(by_group[group][family])
    return Split(**parts)


def load_split(corpus: Sequence[str | Path], test_csv: str | Path | None = None,
               seed: int = 1234) -> tuple[Split, list[str]]:
    """Corpus (and optional separate test file) -> split and label list."""
    examples = read_corpus(corpus)
    if test_csv is None:
        split = split_by_family(examples, seed=seed)
    else:
        held_out = read_corpus([test_csv])
        overlap = {e.text for e in examples} & {e.text for e in held_out}
        if overlap:
            raise CorpusError(f"{test_csv}: {len(overlap)} test transcripts also occur in the training corpus, e.g. {sorted(overlap)[0]!r}")
        inner = split_by_family(examples, dev=0.12, test=0.0, seed=seed)
        split = Split(train=inner.train, dev=inner.dev, test=held_out)
    labels = labels_of(split.train + split.dev)
    unseen = sorted({label for e in split.test for label in e.labels} - set(labels))
    if unseen:
        raise CorpusError(f"test labels never seen in training: {unseen}")
    if not split.dev or not split.train:
        raise CorpusError("corpus too small to split: each intent needs at least 3 families (or rows)")
    return split, labels


def same_text_key(text: str) -> str:
    """Two transcripts with the same key are the same row to a model: Simplified and normalised."""
    from edge.nlu.text import normalize, to_simplified

    return normalize(to_simplified(text))


def add_train_extra(split: Split, paths: Sequence[str | Path], labels: Sequence[str]) -> tuple[Split, dict]:
    """Rows that join training only (e.g. more dialect phrasings), after the split is made, so the dev and
    test families stay exactly as they were. A row whose text (Simplified, normalised) equals a corpus
    row is dropped: it would repeat a training row or leak a dev/test one. Returns the split and counts."""
    if not paths:
        return split, {}
    extra = read_corpus(paths)
    unknown = sorted({label for e in extra for label in e.labels} - set(labels))
    if unknown:
        raise CorpusError(f"{extra[0].source}: train-extra labels the corpus does not have: {unknown}")
    taken = {same_text_key(e.text) for e in split.train + split.dev + split.test}
    kept = [e for e in extra if same_text_key(e.text) not in taken]
    counts = {"rows": len(extra), "kept": len(kept), "dropped_as_corpus_rows": len(extra) - len(kept)}
    return Split(train=split.train + kept, dev=split.dev, test=split.test), counts


def augment(example_texts: list[tuple[str, tuple[str, ...]]], labels: list[str], rng: random.Random,
            copies: int = 1, compounds: int = 0) -> list[tuple[str, tuple[str, ...]]]:
    """Phone-ASR-like noise: fillers, dropped characters, homophones; plus
    synthetic compounds (two turns of different intents joined)."""
    out = []
    for _ in range(copies):
        for text, label_set in example_texts:
            out.append((_noisy(text, rng), label_set))
    business = [(t, l) for t, l in example_texts if OTHER not in l and len(l) == 1]
    for _ in range(compounds if business else 0):
        (t1, l1), (t2, l2) = rng.sample(business, 2)
        if l1 != l2:
            out.append((t1 + rng.choice(("", " ", "然后", "还有")) + t2, l1 + l2))
    return out


def _noisy(text: str, rng: random.Random) -> str:
    if rng.random() < 0.3:
        for a, b in rng.sample(HOMOPHONES, len(HOMOPHONES)):
            src, dst = (a, b) if rng.random() < 0.5 else (b, a)
            if src in text:
                text = text.replace(src, dst, 1)
                break
    if len(text) > 4 and rng.random() < 0.3:
        drop = rng.randrange(len(text))
        text = text[:drop] + text[drop + 1:]
    if rng.random() < 0.25:
        text = rng.choice(FILLERS) + text
    return text
