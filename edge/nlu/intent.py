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
from edge.nlu.text import TextEncoder

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


def to_result(probs: np.ndarray, labels: Sequence[str], threshold: float, other_label: str | None) -> IntentResult:
    chosen = decide_labels(probs, labels, threshold, other_label)
    scores = {label: float(p) for label, p in zip(labels, probs)}
    return IntentResult(label=chosen[0], score=scores[chosen[0]], labels=chosen, scores=scores)


class IntentModel:
    """A multi-label intent classifier loaded from a bundle."""

    def __init__(self, bundle: Bundle, engine: Engine, encoder: TextEncoder,
                 labels: list[str], threshold: float, other_label: str | None,
                 centroids: np.ndarray | None = None):
        self.bundle = bundle
        self.engine = engine
        self.encoder = encoder
        self.labels = labels
        self.threshold = threshold
        self.other_label = other_label
        self.centroids = centroids
        """Unit embedding centroid per trained label (few-shot intents compare against them), if shipped."""

    @classmethod
    def load(cls, bundle: str | Path = DEFAULT_INTENT_DIR, engine: str = "onnxruntime",
             threads: int = 1, threshold: float | None = None, device: str = "cpu") -> "IntentModel":
        """Open and verify an intent bundle.

        Args:
            bundle: bundle directory (the built-in one by default).
            engine: "onnxruntime" or "openvino".
            threads: intra-op threads.
            threshold: label score threshold; None takes the value tuned at export.
            device: where it runs (edge.accel.DEVICES); a missing GPU falls back to the CPU with a warning.

        Raises:
            BundleError: missing, corrupt or incomplete bundle, or no model for the engine.
        """
        opened = Bundle.open(bundle, kind="intent")
        manifest = opened.manifest
        models = manifest.get("models", {})
        if engine not in models:
            raise BundleError(f"{opened.root}: bundle has no model for engine {engine!r} (has: {sorted(models)})")
        text_options = manifest.get("text", {})
        try:
            tokenizer = Tokenizer.from_file(str(opened.path("tokenizer.json")))
            labels = json.loads(opened.path("labels.json").read_text(encoding="utf-8"))
            pinyin = (json.loads(opened.path("pinyin.json").read_text(encoding="utf-8"))
                      if text_options.get("pinyin") else None)
        except BundleError:
            raise
        except Exception as exc:
            raise BundleError(f"{opened.root}: tokenizer, labels or pinyin table unreadable ({exc})") from None
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise BundleError(f"{opened.root}/labels.json must be a non-empty list of label strings")
        decision = manifest.get("decision", {})
        centroids = None
        if opened.has("centroids.npy"):
            try:
                centroids = np.load(opened.path("centroids.npy"), allow_pickle=False)
            except ValueError as exc:
                raise BundleError(f"{opened.root}/centroids.npy unreadable ({exc})") from None
            if centroids.shape[0] != len(labels):
                raise BundleError(f"{opened.root}/centroids.npy has {centroids.shape[0]} rows for {len(labels)} labels")
        return cls(
            bundle=opened,
            engine=open_engine(engine, opened.path(models[engine]), threads, device, model="intent"),
            encoder=TextEncoder(tokenizer, int(manifest.get("max_length", 64)),
                                t2s=bool(text_options.get("t2s")), pinyin_vocab=pinyin),
            labels=labels,
            threshold=float(threshold if threshold is not None else decision.get("threshold", 0.5)),
            other_label=decision.get("other_label"),
            centroids=centroids,
        )

    @property
    def tokenizer(self) -> Tokenizer:
        return self.encoder.tokenizer

    def run(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Raw model outputs: "logits" [batch, labels] and, for hybrid models, "embedding"."""
        if isinstance(texts, str):
            raise InputError("predict() takes a list of texts, not one string")
        return self.run_feeds(self.encoder.encode(list(texts)))

    def run_feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """run() on feeds already encoded (the few-shot head reads the same feeds)."""
        out = self.engine.run(feeds)
        logits = out.get("logits", next(iter(out.values())))
        if logits.shape != (len(feeds["input_ids"]), len(self.labels)):
            raise BundleError(f"{self.bundle.root}: model output {logits.shape} does not match {len(self.labels)} labels")
        out["logits"] = logits
        return out

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        return self.run(texts)["logits"]

    def predict(self, texts: Sequence[str]) -> list[IntentResult]:
        """Classify a batch of utterances (one engine call for all of them)."""
        if len(texts) == 0:
            return []
        return self.results_from_logits(self.logits(texts))

    def results_from_logits(self, logits: np.ndarray) -> list[IntentResult]:
        probs = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        return [to_result(row, self.labels, self.threshold, self.other_label) for row in probs]
