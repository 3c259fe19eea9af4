"""The student: a small BERT + hashed n-grams, distilled from the teacher ensemble."""

from __future__ import annotations

from export.models import STUDENT, HybridClassifier, HybridConfig


def student(vocab_size: int, num_labels: int, max_length: int, **overrides) -> HybridClassifier:
    return HybridClassifier(HybridConfig(vocab_size=vocab_size, num_labels=num_labels,
                                         max_length=max_length, **{**STUDENT, **overrides}))
