"""Teachers: a BERT classifier (from scratch, or from a local checkpoint) and a
character n-gram logistic-regression partner; their average is what the
student learns from.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge.errors import BundleError
from edge.nlu.text import TextEncoder, to_simplified
from export.models import TEACHER, HybridClassifier, HybridConfig
from export.train import Encoder

_LOGGER = logging.getLogger(__name__)


def char_encoder(encoder: TextEncoder) -> Encoder:
    """Exactly the runtime's encoding (edge.nlu.text.TextEncoder), as tensors."""
    def encode(texts: list[str]):
        return {name: torch.from_numpy(array) for name, array in encoder.encode(texts).items()}
    return encode


def scratch_teacher(vocab_size: int, num_labels: int, max_length: int, **overrides) -> HybridClassifier:
    return HybridClassifier(HybridConfig(vocab_size=vocab_size, num_labels=num_labels,
                                         max_length=max_length, **{**TEACHER, **overrides}))


class _HFClassifier(nn.Module):
    """A local transformers checkpoint behind the (ids, mask) -> logits call."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def checkpoint_teacher(path: str | Path, labels: list[str], max_length: int) -> tuple[nn.Module, Encoder]:
    """Initialise the teacher from a local checkpoint directory (e.g. bert-base-chinese).

    Never touches the network: a directory without config, weights or tokenizer
    files is an error naming what is missing.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise BundleError(f"--init {path}: no config.json; give a local transformers checkpoint directory")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(path), local_files_only=True, num_labels=len(labels),
            problem_type="multi_label_classification", ignore_mismatched_sizes=True,
            id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})
    except (OSError, ValueError) as exc:
        raise BundleError(f"--init {path}: cannot load the checkpoint ({exc})") from None

    def encode(texts: list[str]):
        batch = tokenizer([to_simplified(t) for t in texts], padding=True, truncation=True,
                          max_length=max_length, return_tensors="pt")
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    _LOGGER.info("teacher initialised from %s", path)
    return _HFClassifier(model), encode


class NgramTeacher:
    """TF-IDF over character 1-3-grams + one-vs-rest logistic regression."""

    def __init__(self, c: float = 10.0):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        self.vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        self.model = OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000))

    def fit(self, texts: list[str], targets: np.ndarray) -> "NgramTeacher":
        self.model.fit(self.vectorizer.fit_transform(texts), targets.astype(int))
        return self

    def probs(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.predict_proba(self.vectorizer.transform(texts)), dtype=np.float32)


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p)).astype(np.float32)
