"""Build the few-shot head of an intent bundle and add it to the bundle.

    python -m export.fewshot_head --bundle edge/models/default/intent --corpus export/data/intents
    python -m export.fewshot_head --bundle runs/x/bundle --exclude ask_trial   # benchmarks: head never sees ask_trial

Writes fewshot_head.onnx (output "embedding", unit rows) and
fewshot_centroids.npy (one unit row per trained label, from the training split,
computed with the exported file through onnxruntime: the space the runtime
sees), and declares both in the manifest's "fewshot_head" entry with sha256 and
how they were built. The split is the corpus's split by family (same seed as
the classifier's export): episodes use train, the checkpoint is chosen on dev
of intents kept out of the episodes, test is never read. The head stays FP32:
it is ~80 KB, a scatter-add over one weight vector, with no matrix that INT8
would shrink or speed up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from edge.bundle import MANIFEST, sha256_file
from edge.nlu.engines import open_engine
from edge.nlu.fewshot_head import synonym_view
from export import episodes
from export.corpus import augment, corpus_hash, load_split
from export.embedder import DIALECT_ALIASES, EmbedderConfig, FewShotEmbedder, export_onnx
from export.teacher import char_encoder

_LOGGER = logging.getLogger(__name__)

HEAD_FILE = "fewshot_head.onnx"
CENTROIDS_FILE = "fewshot_centroids.npy"
THRESHOLD_FLOOR = 0.1
"""Lowest cosine a few-shot match may have in this space (TF-IDF-like cosines run lower than dense ones)."""


def _items(examples, exclude: Sequence[str], view) -> list[episodes.Item]:
    return [episodes.Item(view(e.text), e.labels[0], e.family) for e in examples
            if len(e.labels) == 1 and e.labels[0] not in exclude]


def build(bundle_dir: str | Path, corpus: Sequence[str] = ("export/data/intents",), exclude: Sequence[str] = (),
          episode_config: episodes.EpisodeConfig | None = None, seed: int = 1234,
          aliases: dict[str, str] | None = None, synonyms: bool = True) -> dict:
    """Train, export and add the head to the bundle; returns the manifest's "fewshot_head" entry.

    aliases: characters read as others (default DIALECT_ALIASES; {} for none, as benchmarks compare).
    synonyms: the head reads turns through the built-in lexicon's synonym groups (edge/nlu/fewshot_head.py
    synonym_view), in training and at run time; False reads them as they are (benchmarks compare).
    """
    from edge.nlu import lexicon
    from edge.nlu.intent import IntentModel

    started = time.perf_counter()
    torch.manual_seed(seed)
    root = Path(bundle_dir)
    model = IntentModel.load(root)
    encode = char_encoder(model.encoder)
    split, _ = load_split(list(corpus), seed=seed)
    words = lexicon.load() if synonyms else None
    view = (lambda text: synonym_view(text, words)) if words is not None else (lambda text: text)
    train = _items(split.train, exclude, view)
    noisy = augment([(i.text, (i.label,)) for i in train], [], random.Random(seed), copies=1)
    train_aug = train + [episodes.Item(text, i.label, i.family) for (text, _), i in zip(noisy, train)]
    dev = _items(split.dev, exclude, view)
    labels = sorted({i.label for i in train})

    aliases = DIALECT_ALIASES if aliases is None else aliases
    embedder = FewShotEmbedder(EmbedderConfig(vocab_size=model.tokenizer.get_vocab_size(), aliases=dict(aliases)),
                               token_to_id=model.tokenizer.token_to_id)
    texts = [i.text for i in train]
    embedder.fit_idf((f["input_ids"], f["attention_mask"])
                     for f in (encode(texts[s:s + 256]) for s in range(0, len(texts), 256)))
    config = episode_config or episodes.EpisodeConfig(seed=seed)
    history = episodes.train(embedder, encode, train_aug, dev, labels, config, clean_train=train)

    path = export_onnx(embedder, root / HEAD_FILE)
    engine = open_engine("onnxruntime", path, threads=1, model="fewshot_head")
    exported = _embed(engine, model.encoder, texts)
    parity = float(np.abs(exported[:64] - episodes.embed(embedder, encode, texts[:64])).max())
    centroids = np.zeros((len(model.labels), exported.shape[1]), dtype=np.float32)
    index = {label: n for n, label in enumerate(model.labels)}
    for vector, item in zip(exported, train):
        if item.label in index:
            centroids[index[item.label]] += vector
    norms = np.linalg.norm(centroids, axis=1, keepdims=True)
    centroids = np.divide(centroids, norms, out=np.zeros_like(centroids), where=norms > 0)
    with open(root / CENTROIDS_FILE, "wb") as handle:
        np.save(handle, centroids, allow_pickle=False)

    entry = {
        "model": HEAD_FILE, "centroids": CENTROIDS_FILE, "output": "embedding", "dim": int(exported.shape[1]),
        "threshold_floor": THRESHOLD_FLOOR, "text": "synonyms" if synonyms else "plain",
        "build": {
            "command": "python -m export.fewshot_head " + " ".join(sys.argv[1:]) if "fewshot_head" in sys.argv[0] else None,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "corpus": list(corpus), "corpus_sha256": corpus_hash(list(corpus)), "seed": seed,
            "excluded_intents": list(exclude),
            **({"lexicon": str(lexicon.DEFAULT_LEXICON.relative_to(Path(__file__).resolve().parents[1])),
                "lexicon_sha256": sha256_file(lexicon.DEFAULT_LEXICON)} if synonyms else {}),
            "split": {"train": len(train), "train_with_noisy_copies": len(train_aug), "dev": len(dev),
                      "rule": "corpus split by family; episodes on train, checkpoint on dev of validation "
                              "intents kept out of the episodes; test never read"},
            "objective": "prototypical episodes (cosine to the mean of support utterances, support and "
                         "query from different families), per-feature weights of an IDF-initialised "
                         "character 1-2-gram bag; dialect characters read as Mandarin ones (aliases_used)",
            "embedder": embedder.config.to_dict(), "aliases_used": embedder.aliases_used,
            "episodes": config.to_dict(),
            "training": {k: v for k, v in history.items()},
            "onnx_vs_torch_max_abs_diff": parity,
            "duration_s": round(time.perf_counter() - started, 1),
        },
    }
    _add_to_manifest(root, entry)
    _LOGGER.info("few-shot head added to %s (dim %d) in %.0f s", root, entry["dim"], entry["build"]["duration_s"])
    return entry


def _embed(engine, encoder, texts: list[str], batch_size: int = 256) -> np.ndarray:
    return np.concatenate([engine.run(encoder.encode(texts[s:s + batch_size]))["embedding"]
                           for s in range(0, len(texts), batch_size)]).astype(np.float32)


def _add_to_manifest(root: Path, entry: dict) -> None:
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    manifest["fewshot_head"] = entry
    for name in (HEAD_FILE, CENTROIDS_FILE):
        manifest["files"][name] = {"sha256": sha256_file(root / name), "bytes": (root / name).stat().st_size}
    (root / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", required=True, help="intent bundle directory to add the head to")
    parser.add_argument("--corpus", nargs="+", default=["export/data/intents"])
    parser.add_argument("--exclude", nargs="*", default=[], help="intents the head must never see (benchmarks)")
    parser.add_argument("--episodes", type=int, default=episodes.EpisodeConfig.episodes)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--no-aliases", action="store_true", help="read dialect characters as they are (benchmarks)")
    parser.add_argument("--no-synonyms", action="store_true",
                        help="read turns as they are, not through the lexicon's synonym groups (benchmarks)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    entry = build(args.bundle, args.corpus, args.exclude,
                  episodes.EpisodeConfig(episodes=args.episodes, seed=args.seed), seed=args.seed,
                  aliases={} if args.no_aliases else None, synonyms=not args.no_synonyms)
    print(json.dumps({k: v for k, v in entry.items() if k != "build"} |
                     {"duration_s": entry["build"]["duration_s"],
                      "best_dev_accuracy": entry["build"]["training"]["best_dev_accuracy"],
                      "best_episode": entry["build"]["training"]["best_episode"]}, ensure_ascii=False))


if __name__ == "__main__":
    main()
