"""The few-shot head of an intent bundle: an extra ONNX model whose embedding
space is built for matching intents the classifier never trained on
(export/fewshot_head.py), plus the trained intents' centroids in that space.

A bundle declares it in its manifest:
    "fewshot_head": {"model": "fewshot_head.onnx", "centroids": "fewshot_centroids.npy",
                     "output": "embedding", "dim": 9454, "threshold_floor": 0.1, "text": "synonyms",
                     "build": {...}}
`text` says what the head reads: "plain" (the turn as the classifier reads it)
or "synonyms" (the turn with the lexicon's dialect forms and synonym groups
folded in first: 收费 and 多少钱 both read as 价格). Bundles without the
entry still load; few-shot intents then use the classifier's own embedding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from edge.bundle import Bundle
from edge.errors import BundleError
from edge.nlu.engines import Engine, open_engine
from edge.nlu.text import to_simplified

_LOGGER = logging.getLogger(__name__)

MANIFEST_KEY = "fewshot_head"
TEXT_VIEWS = ("plain", "synonyms")


def synonym_view(text: str, lexicon) -> str:
    """What a "synonyms" head reads: Simplified, dialect forms and synonyms folded into their group name."""
    return lexicon.canonical(to_simplified(text))


@dataclass(frozen=True)
class FewShotHead:
    """Embeds encoded turns (the intent model's feeds) into the head's space."""

    engine: Engine
    centroids: np.ndarray
    """[trained labels, dim] unit rows (zero for a label without single-label training examples)."""
    dim: int
    threshold_floor: float
    output: str = "embedding"
    text: str = "plain"
    """What the head reads (TEXT_VIEWS); FewShotIntentModel prepares the turn accordingly."""

    @classmethod
    def load(cls, bundle: Bundle, labels: list[str], threads: int = 1) -> "FewShotHead | None":
        """The bundle's head, or None when its manifest declares none.

        Raises:
            BundleError: the head or its centroids are unreadable, or disagree with the manifest.
        """
        entry = bundle.manifest.get(MANIFEST_KEY)
        if entry is None:
            return None
        where = f"{bundle.root}: few-shot head"
        try:
            model, centroids_file, dim = entry["model"], entry["centroids"], int(entry["dim"])
        except (KeyError, TypeError, ValueError):
            raise BundleError(f"{where}: manifest entry {MANIFEST_KEY!r} needs model, centroids and dim; "
                              "re-run `python -m export.fewshot_head`") from None
        # onnxruntime whatever the classifier's engine: the head is a tiny scatter-add graph.
        engine = open_engine("onnxruntime", bundle.path(model), threads, model="fewshot_head")
        output = entry.get("output", "embedding")
        if output not in engine.outputs:
            raise BundleError(f"{where} {model} has no output {output!r} (has {engine.outputs}); re-export it")
        try:
            centroids = np.load(bundle.path(centroids_file), allow_pickle=False).astype(np.float32)
        except ValueError as exc:
            raise BundleError(f"{where}: {centroids_file} unreadable ({exc}); re-export the head") from None
        if centroids.shape != (len(labels), dim):
            raise BundleError(f"{where}: {centroids_file} is {centroids.shape}, manifest says "
                              f"({len(labels)} labels, dim {dim}); re-export the head")
        text = entry.get("text", "plain")
        if text not in TEXT_VIEWS:
            raise BundleError(f"{where}: text {text!r} is not one of {TEXT_VIEWS}; re-export the head")
        head = cls(engine, centroids, dim, float(entry.get("threshold_floor", 0.0)), output, text)
        probe = head.embed({"input_ids": np.array([[2, 3]], dtype=np.int64),
                            "attention_mask": np.ones((1, 2), dtype=np.int64)})
        if probe.shape[1] != dim:
            raise BundleError(f"{where} {model} outputs dim {probe.shape[1]}, manifest says {dim}; re-export the head")
        _LOGGER.debug("few-shot head %s loaded (dim %d)", model, dim)
        return head

    def embed(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Unit rows [batch, dim]."""
        vectors = self.engine.run(feeds)[self.output].astype(np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-9)
