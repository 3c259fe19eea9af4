"""Few-shot intents: an SME adds an intent from 10-20 examples, no retraining.

Examples are embedded with the bundle's few-shot head when it has one (an
extra ONNX model built for matching unseen intents, edge/nlu/fewshot_head.py),
else with the student's utterance vector; each intent keeps the normalised
mean of its examples (a prototype; scoring a turn by its nearest example, or by
the mean of both, did worse on dev: benchmarks/results/fewshot_dev.md). At run
time an utterance joins a few-shot intent when its cosine similarity to the
prototype clears the intent's threshold and the trained model has no better
answer: the prototype is nearer than every trained intent's centroid, or, when
the classifier finds no trained intent in it (its answer is "other"), trails
the nearest by less than OTHER_SLACK. Definitions live in SQLite
(survive restarts; add/remove is immediate); prototypes are recomputed when
the bundle changes, since another bundle means another embedding space.

Example:
    >>> store = FewShotStore(":memory:")
    >>> store.add("ask_invoice", ["能开发票吗", "发票怎么开", ...])
    >>> model = FewShotIntentModel(IntentModel.load(), store)
    >>> model.predict(["可以开专票吗"])[0].label
    'ask_invoice'
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Sequence

import numpy as np

from edge.errors import InputError
from edge.nlu import lexicon as _lexicon
from edge.nlu.fewshot_head import FewShotHead, synonym_view
from edge.nlu.intent import IntentModel, IntentResult

MIN_EXAMPLES: Final = 3
MAX_EXAMPLES: Final = 200
DEFAULT_MARGIN: Final = 0.05
"""A few-shot intent's threshold sits this far below the least typical of its
own examples' leave-one-out similarities (how far an example of the intent can
be from the others)."""
THRESHOLD_FLOOR: Final = 0.5
OTHER_SLACK: Final = 0.1
"""How far a few-shot prototype may trail the nearest trained centroid (head space) and still take a
turn the classifier calls "other". An intent the classifier never saw mostly lands in "other", and its
turns share few n-grams with the k examples while a trained centroid (a bag of hundreds of turns) shares
some with anything. Chosen on dev (benchmarks/results/fewshot_dev.md, 22 intents, k=10): mean F1 0.440
(slack 0, the rule before) / 0.502 (0.05) / 0.536 (0.1) / 0.540 (no comparison), out-of-scope
false-positive rate +0.004 / +0.009 / +0.015 / +0.018: the smallest slack within 0.005 F1 of the best.
Applies in the head's space only: in the classifier's own embedding cosines run high and out-of-scope
turns flood in (one run of benchmarks/fewshot.py with no comparison there, not in the committed table:
out-of-scope false-positive rate +0.71 at k=10, held-out F1 0.16)."""


@dataclass(frozen=True)
class FewShotIntent:
    name: str
    examples: list[str]
    created: str


class FewShotStore:
    """Few-shot intent definitions in SQLite (one table, WAL)."""

    def __init__(self, path: str | Path):
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS fewshot_intents (name TEXT PRIMARY KEY, "
                         "examples TEXT NOT NULL, created TEXT NOT NULL)")

    def add(self, name: str, examples: Sequence[str], known_labels: Sequence[str] = ()) -> FewShotIntent:
        """Add or replace an intent. Refuses a name the trained model already has."""
        name = name.strip()
        cleaned = list(dict.fromkeys(e.strip() for e in examples if e.strip()))
        if not name or "|" in name:
            raise InputError(f"intent name {name!r} must be non-empty and contain no '|'")
        if name in known_labels:
            raise InputError(f"{name!r} is a trained intent of the bundle; pick another name")
        if not MIN_EXAMPLES <= len(cleaned) <= MAX_EXAMPLES:
            raise InputError(f"intent {name!r} needs {MIN_EXAMPLES}-{MAX_EXAMPLES} distinct examples, "
                             f"got {len(cleaned)} (10-20 work best)")
        intent = FewShotIntent(name, cleaned, dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO fewshot_intents VALUES (?, ?, ?)",
                             (intent.name, json.dumps(cleaned, ensure_ascii=False), intent.created))
        return intent

    def remove(self, name: str) -> bool:
        with self._lock:
            return self._db.execute("DELETE FROM fewshot_intents WHERE name = ?", (name,)).rowcount > 0

    def all(self) -> list[FewShotIntent]:
        with self._lock:
            rows = self._db.execute("SELECT name, examples, created FROM fewshot_intents ORDER BY name").fetchall()
        return [FewShotIntent(name, json.loads(examples), created) for name, examples, created in rows]

    def close(self) -> None:
        self._db.close()


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-9)


@dataclass(frozen=True)
class ExampleCheck:
    """One example of a few-shot intent, classified with the intent's prototype built from the others."""

    text: str
    label: str
    score: float


@dataclass(frozen=True)
class _Prototype:
    name: str
    vector: np.ndarray
    threshold: float


class FewShotIntentModel:
    """An IntentModel plus the few-shot intents of a store; same predict() call."""

    def __init__(self, model: IntentModel, store: FewShotStore, margin: float = DEFAULT_MARGIN,
                 use_head: bool = True, other_slack: float = OTHER_SLACK, lexicon: _lexicon.Lexicon | None = None):
        """use_head=False ignores the bundle's few-shot head (benchmarks compare both spaces);
        other_slack: see OTHER_SLACK (0: a turn the classifier calls "other" must beat the trained
        centroids like any other, the rule before; benchmarks compare);
        lexicon: the synonym groups a "synonyms" head reads through (default: the built-in lexicon).
        """
        self.model = model
        self.store = store
        self.margin = margin
        self.other_slack = other_slack
        self.head = FewShotHead.load(model.bundle, model.labels) if use_head else None
        synonyms = self.head is not None and self.head.text == "synonyms"
        self.lexicon = (lexicon or _lexicon.load()) if synonyms else None
        """The synonym groups the head reads turns through; None: it reads them as the classifier does."""
        self._cache: tuple[tuple, list[_Prototype]] | None = None

    @property
    def labels(self) -> list[str]:
        return self.model.labels + [p.name for p in self._prototypes()]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.head is not None:
            return self.head.embed(self._head_feeds(texts))
        out = self.model.run(texts)
        if "embedding" not in out:
            raise InputError(f"{self.model.bundle.root}: this bundle exports no utterance embedding; "
                             "few-shot intents need a bundle built by this version of `salesbot export intent`")
        return _unit(out["embedding"].astype(np.float32))

    def _prototypes(self) -> list[_Prototype]:
        intents = self.store.all()
        key = tuple((i.name, tuple(i.examples)) for i in intents)
        if self._cache is None or self._cache[0] != key:  # store changed: rebuild (a few ms per intent)
            self._cache = (key, [self._prototype(i) for i in intents])
        return self._cache[1]

    def _prototype(self, intent: FewShotIntent) -> _Prototype:
        vectors = self.embed(intent.examples)
        center = _unit(vectors.mean(axis=0))
        # Leave-one-out similarity of each example to the others' prototype:
        # how far a genuine member can sit, which sets this intent's threshold.
        total = vectors.sum(axis=0)
        loo = [float(_unit(total - v) @ v) for v in vectors]
        floor = self.head.threshold_floor if self.head is not None else THRESHOLD_FLOOR
        threshold = max(floor, float(np.percentile(loo, 10)) - self.margin)
        return _Prototype(intent.name, center, threshold)

    def predict(self, texts: Sequence[str]) -> list[IntentResult]:
        if len(texts) == 0:
            return []
        prototypes = self._prototypes()
        if not prototypes:
            return self.model.predict(texts)
        trained, embeddings = self._classify(texts)
        if embeddings is None:
            return trained
        sims = embeddings @ np.stack([p.vector for p in prototypes]).T
        nearest_trained = self._nearest_trained(embeddings)
        return [self._fuse(result, row, prototypes, near)
                for result, row, near in zip(trained, sims, nearest_trained)]

    def check_examples(self, name: str) -> list[ExampleCheck]:
        """What the model answers for each example of few-shot intent ``name`` when that example is left out
        of the prototype (the others' mean; the threshold stays the intent's own): an example that comes back
        as another intent shows the SME where the intent overlaps a trained one or strays from the rest.

        Raises:
            InputError: no few-shot intent is called ``name``, or the bundle has no embedding to match in.
        """
        prototypes = self._prototypes()
        index = next((i for i, p in enumerate(prototypes) if p.name == name), None)
        if index is None:
            raise InputError(f"no few-shot intent named {name!r}")
        examples = next(i.examples for i in self.store.all() if i.name == name)
        trained, embeddings = self._classify(examples)
        if embeddings is None:
            self.embed(examples[:1])  # raises the clear error
        nearest_trained = self._nearest_trained(embeddings)
        total = embeddings.sum(axis=0)
        checks = []
        for text, result, vector, near in zip(examples, trained, embeddings, nearest_trained):
            left_out = list(prototypes)
            left_out[index] = replace(prototypes[index], vector=_unit(total - vector))
            sims = np.stack([p.vector for p in left_out]) @ vector
            answer = self._fuse(result, sims, left_out, near)
            checks.append(ExampleCheck(text, answer.label, answer.score))
        return checks

    def _classify(self, texts: Sequence[str]) -> tuple[list[IntentResult], np.ndarray | None]:
        """The trained model's results and the turns' unit vectors in the few-shot space (None: the bundle
        has neither a head nor an utterance embedding)."""
        feeds = self.model.encoder.encode(list(texts))
        out = self.model.run_feeds(feeds)
        trained = self.model.results_from_logits(out["logits"])
        if self.head is not None:
            return trained, self.head.embed(self._head_feeds(texts, feeds))
        if "embedding" in out:
            return trained, _unit(out["embedding"].astype(np.float32))
        return trained, None

    def _head_feeds(self, texts: Sequence[str], feeds: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """The head's input: the classifier's feeds, or the turns as a "synonyms" head was trained to read them."""
        if self.lexicon is not None:
            return self.model.encoder.encode([synonym_view(text, self.lexicon) for text in texts])
        return feeds if feeds is not None else self.model.encoder.encode(list(texts))

    def _nearest_trained(self, embeddings: np.ndarray) -> np.ndarray:
        """Similarity to the nearest trained intent's centroid, "other" included (NaN if the bundle has
        none). Counting "other" matters: without it, out-of-scope turns fell to few-shot intents
        (benchmarks/fewshot.py: 123 false positives against 18 on one held-out intent at k=10, classifier
        space, when every turn had to beat the centroids without slack)."""
        centroids = self.head.centroids if self.head is not None else self.model.centroids
        if centroids is None:
            return np.full(len(embeddings), np.nan)
        return (embeddings @ centroids.T).max(axis=1)

    def _fuse(self, result: IntentResult, sims: np.ndarray, prototypes: list[_Prototype],
              nearest_trained: float) -> IntentResult:
        scores = dict(result.scores) | {p.name: float(s) for p, s in zip(prototypes, sims)}
        best = int(np.argmax(sims))
        proto, sim = prototypes[best], float(sims[best])
        unchanged = IntentResult(result.label, result.score, result.labels, scores)
        if sim < proto.threshold:
            return unchanged
        if result.label == self.model.other_label and self.head is not None and not np.isnan(nearest_trained):
            # The classifier finds no trained intent here: the prototype may trail the nearest trained
            # centroid by other_slack (see OTHER_SLACK).
            wins = sim > nearest_trained - self.other_slack
        elif np.isnan(nearest_trained):
            # Older bundle without centroids: win over "other" and over a less confident trained answer.
            wins = result.label == self.model.other_label or sim >= result.score
        else:
            # Against a trained answer, like with like: the prototype must be nearer than every trained
            # intent's centroid ("other" included).
            wins = sim > nearest_trained
        if not wins:
            return unchanged
        labels = [proto.name] + [l for l in result.labels if l not in (self.model.other_label, proto.name)][:1]
        if result.label != self.model.other_label and len(result.labels) == 1:
            labels = [proto.name]  # one trained guess replaced by the nearer few-shot intent
        return IntentResult(proto.name, sim, labels, scores)
