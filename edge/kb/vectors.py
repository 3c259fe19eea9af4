"""The dense-side retriever: TF-IDF vectors of character 1-3-grams, cosine scored.

Built in memory from the knowledge base when it is opened (10,000 entries in
well under a second). A vocabulary from the entries themselves maps n-grams
to columns, so there are no hash collisions and a query n-gram the knowledge
never uses costs nothing. Vectors are L2-normalised; the score of an entry is
the dot product, computed over the posting lists of the query's n-grams.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np


class NgramIndex:
    """Sparse TF-IDF cosine search over documents given as n-gram counts.

    Example:
        >>> index = NgramIndex([Counter("价格"), Counter("试用")])
        >>> index.search(Counter("价"), 1)[0][0]
        0
    """

    def __init__(self, documents: Sequence[Counter]):
        self.size = len(documents)
        self.vocabulary: dict[str, int] = {}
        rows: list[int] = []
        columns: list[int] = []
        counts: list[int] = []
        setdefault = self.vocabulary.setdefault
        for row, document in enumerate(documents):
            for term, count in document.items():
                columns.append(setdefault(term, len(self.vocabulary)))
                rows.append(row)
                counts.append(count)
        row_ids = np.array(rows, dtype=np.int32)
        column_ids = np.array(columns, dtype=np.int64)
        frequency = np.bincount(column_ids, minlength=len(self.vocabulary))
        self.idf = (np.log((1.0 + self.size) / (1.0 + frequency)) + 1.0).astype(np.float32)
        weights = (1.0 + np.log(np.array(counts, dtype=np.float32))) * self.idf[column_ids]
        norms = np.sqrt(np.bincount(row_ids, weights=weights * weights, minlength=self.size)).astype(np.float32)
        weights = weights / np.maximum(norms, 1e-12)[row_ids]
        order = np.argsort(column_ids, kind="stable")
        self.rows = row_ids[order]
        self.weights = weights[order].astype(np.float32)
        self.offsets = np.concatenate([[0], np.cumsum(frequency)]).astype(np.int64)

    def scores(self, query: Counter) -> np.ndarray:
        """Cosine similarity of the query with every document (0 where nothing is shared)."""
        columns, weights = [], []
        for term, count in query.items():
            column = self.vocabulary.get(term)
            if column is not None:
                columns.append(column)
                weights.append((1.0 + math.log(count)) * self.idf[column])
        if not columns or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        norm = math.sqrt(sum(w * w for w in weights))
        rows = np.concatenate([self.rows[self.offsets[c]:self.offsets[c + 1]] for c in columns])
        values = np.concatenate([self.weights[self.offsets[c]:self.offsets[c + 1]] * (w / norm)
                                 for c, w in zip(columns, weights, strict=True)])
        return np.bincount(rows, weights=values, minlength=self.size).astype(np.float32)

    def search(self, query: Counter, k: int) -> list[tuple[int, float]]:
        """The k best (row, score) with a score above zero, best first."""
        return self.top(self.scores(query), k)

    def top(self, scores: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The k best (row, score) of a score vector, above zero, best first."""
        if self.size == 0:
            return []
        k = min(k, self.size)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(r), float(scores[r])) for r in top if scores[r] > 0]
