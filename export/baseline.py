"""The model a user would otherwise pick: TF-IDF char 1-3-grams + linear SVM."""

from __future__ import annotations

import numpy as np


class NgramSvm:
    def __init__(self, labels: list[str]):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.svm import LinearSVC

        self.labels = labels
        self.vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        self.model = OneVsRestClassifier(LinearSVC(C=1.0))

    def fit(self, texts: list[str], targets: np.ndarray) -> "NgramSvm":
        self.model.fit(self.vectorizer.fit_transform(texts), targets.astype(int))
        return self

    def predict(self, texts: list[str]) -> list[list[str]]:
        """Every label with a positive margin, best first; else the best one."""
        scores = np.asarray(self.model.decision_function(self.vectorizer.transform(texts)))
        out = []
        for row in scores:
            order = np.argsort(-row)
            chosen = [self.labels[i] for i in order[:3] if row[i] > 0]
            out.append(chosen or [self.labels[order[0]]])
        return out
