"""The intent runner: a bundle in, batched multi-label predictions out.

Example:
    >>> model = IntentModel.load("edge/models/default/intent")
    >>> model.predict(["多少钱 能对接企业微信吗"])[0].labels
    ['ask_price', 'ask_integration']
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Sequence

import numpy as np
from tokenizers import Tokenizer

from edge.bundle import Bundle
from edge.config import DEFAULT_INTENT_DIR
from edge.errors import BundleError, InputError
from edge.nlu.engines import Engine, open_engine
from edge.nlu.text import encode_batch

_LOGGER = logging.getLogger(__name__)

MAX_LABELS_PER_TURN: Final = 3
"""A caller rarely packs more than two or three asks into one turn."""


@dataclass(frozen=True)
class IntentResult:
    """What one utterance means."""

    label: str
    """The top label (the first of `labels`)."""
    score: float
    """Probability of `label`, in [0, 1]."""
    labels: list[str]
    """Every label above threshold, best first; a compound turn has several."""
    scores: dict[str, float] = field(repr=False)
    """Probability of every label the model knows."""

    def to_dict(self) -> dict:
        return {"label": self.label, "score": round(self.score, 4), "labels": self.labels,
                "scores": {k: round(v, 4) for k, v in self.scores.items()}}


def decide_labels(probs: np.ndarray, labels: Sequence[str], threshold: float,
                  other_label: str | None) -> list[str]:
    """Labels at or above threshold, best first; the export stage scores with this too."""
    order = np.argsort(-probs)
    chosen = [labels[i] for i in order[:MAX_LABELS_PER_TURN]
              if probs[i] >= threshold and labels[i] != other_label]
    if not chosen:
        # Below threshold everywhere: out of scope if the model has such a
        # class, else the best guess (a user's label set may lack "other").
        chosen = [other_label or labels[order[0]]]
    return chosen


class IntentModel:
    """A multi-label intent classifier loaded from a bundle."""

    def __init__(self, bundle: Bundle, engine: Engine, tokenizer: Tokenizer,
                 labels: list[str], threshold: float, max_length: int, other_label: str | None):
        self.bundle = bundle
        self.engine = engine
        self.tokenizer = tokenizer
        self.labels = labels
        self.threshold = threshold
        self.max_length = max_length
        self.other_label = other_label

    @classmethod
    def load(cls, bundle: str | Path = DEFAULT_INTENT_DIR, engine: str = "onnxruntime",
             threads: int = 1, threshold: float | None = None) -> "IntentModel":
        """Open and verify an intent bundle.

        Args:
            bundle: bundle directory (the built-in one by default).
            engine: "onnxruntime" or "openvino".
            threads: intra-op threads.
            threshold: label score threshold; None takes the value tuned at export.

        Raises:
            BundleError: missing, corrupt or incomplete bundle, or no model for the engine.
        """
        opened = Bundle.open(bundle, kind="intent")
        manifest = opened.manifest
        models = manifest.get("models", {})
        if engine not in models:
            raise BundleError(f"{opened.root}: bundle has no model for engine {engine!r} (has: {sorted(models)})")
        try:
            tokenizer = Tokenizer.from_file(str(opened.path("tokenizer.json")))
            labels = json.loads(opened.path("labels.json").read_text(encoding="utf-8"))
        except BundleError:
            raise
        except Exception as exc:
            raise BundleError(f"{opened.root}: tokenizer or labels unreadable ({exc})") from None
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise BundleError(f"{opened.root}/labels.json must be a non-empty list of label strings")
        decision = manifest.get("decision", {})
        return cls(
            bundle=opened,
            engine=open_engine(engine, opened.path(models[engine]), threads),
            tokenizer=tokenizer,
            labels=labels,
            threshold=float(threshold if threshold is not None else decision.get("threshold", 0.5)),
            max_length=int(manifest.get("max_length", 64)),
            other_label=decision.get("other_label"),
        )

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise InputError("predict() takes a list of texts, not one string")
        ids, mask = encode_batch(self.tokenizer, list(texts), self.max_length)
        out = self.engine.run(ids, mask)
        if out.shape != (len(texts), len(self.labels)):
            raise BundleError(f"{self.bundle.root}: model output {out.shape} does not match {len(self.labels)} labels")
        return out

    def predict(self, texts: Sequence[str]) -> list[IntentResult]:
        """Classify a batch of utterances (one engine call for all of them)."""
        if len(texts) == 0:
            return []
        probs = 1.0 / (1.0 + np.exp(-self.logits(texts).astype(np.float64)))
        return [self._decide(row) for row in probs]

    def _decide(self, probs: np.ndarray) -> IntentResult:
        chosen = decide_labels(probs, self.labels, self.threshold, self.other_label)
        scores = {label: float(p) for label, p in zip(self.labels, probs)}
        return IntentResult(label=chosen[0], score=scores[chosen[0]], labels=chosen, scores=scores)
