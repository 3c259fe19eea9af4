"""Per-intent centroids of the shipped model's utterance embeddings.

Few-shot intents are matched by cosine similarity to their prototypes; the
trained intents' centroids, computed here on the training split with the
shipped INT8 model (the exact embedding space the runtime sees), let the
runtime compare like with like: a few-shot intent wins only where its
prototype is nearer than every trained intent's centroid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from edge.nlu.engines import open_engine
from edge.nlu.labelled import Example
from edge.nlu.text import TextEncoder

FILE = "centroids.npy"


def compute(model_path: Path, encoder: TextEncoder, examples: Sequence[Example], labels: list[str],
            batch_size: int = 64) -> np.ndarray:
    """[labels, dim] float32, unit rows (zero rows for labels without single-label examples)."""
    engine = open_engine("onnxruntime", model_path, threads=1)
    single = [e for e in examples if len(e.labels) == 1]
    vectors = []
    for start in range(0, len(single), batch_size):
        out = engine.run(encoder.encode([e.text for e in single[start:start + batch_size]]))
        vectors.append(out["embedding"])
    vectors = np.concatenate(vectors).astype(np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)
    centroids = np.zeros((len(labels), vectors.shape[1]), dtype=np.float32)
    index = {label: i for i, label in enumerate(labels)}
    for vector, example in zip(vectors, single):
        centroids[index[example.labels[0]]] += vector
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    return np.divide(centroids, norms, out=np.zeros_like(centroids), where=norms > 0)


def save(path: Path, centroids: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, centroids.astype(np.float32), allow_pickle=False)


def add_to_bundle(bundle_dir: str | Path) -> Path:
    """Compute and add centroids to an existing full export (same split and seed
    as its manifest records), re-hashing the manifest's file list."""
    import json

    from edge.bundle import MANIFEST, sha256_file
    from edge.nlu import IntentModel
    from export.corpus import load_split

    root = Path(bundle_dir)
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    options = manifest["build"]["options"]
    split, labels = load_split(options["corpus"], options["test"], seed=options["seed"])
    model = IntentModel.load(root)
    save(root / FILE, compute(root / manifest["models"]["onnxruntime"], model.encoder, split.train, labels))
    manifest["files"][FILE] = {"sha256": sha256_file(root / FILE), "bytes": (root / FILE).stat().st_size}
    (root / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return root / FILE
