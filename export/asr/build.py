"""Build the built-in ASR bundle, step by step, reproducible from the command line.

\b
    python -m export.asr.build data   --work runs/asr    # texts -> speech -> fbank (~5 min)
    python -m export.asr.build train  --work runs/asr    # CTC training (--budget-min, default 35)
    python -m export.asr.build export --work runs/asr --out edge/models/default/asr
    python -m export.asr.build all    --work runs/asr --out edge/models/default/asr

Each step writes its artefacts and a JSON record under --work; `export`
gathers them into the bundle's manifest.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

_LOGGER = logging.getLogger("export.asr")
CORPUS_DIR = Path(__file__).resolve().parents[1] / "data" / "intents"


def step_data(work: Path, corpus: Path, seed: int, concatenations: int) -> dict:
    from export.asr import dataset, texts

    start = time.monotonic()
    utterances = texts.load_corpus(corpus) + texts.load_lines()
    split = texts.split(utterances, seed=seed)
    items = dataset.plan(split.train, concatenations=concatenations, seed=seed)
    vocab = dataset.vocabulary([u.text for u in split.train])
    work.mkdir(parents=True, exist_ok=True)
    (work / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (work / "split.json").write_text(json.dumps(
        {"train": [u.__dict__ for u in split.train], "test": [u.__dict__ for u in split.test]},
        ensure_ascii=False, indent=0), encoding="utf-8")
    dataset.build(items, vocab, work / "data.npz")
    root = Path(__file__).resolve().parents[2]
    shown = corpus.resolve().relative_to(root) if corpus.resolve().is_relative_to(root) else corpus
    record = {"corpus": str(shown), "corpus_rows_used": len(utterances), "train_texts": len(split.train),
              "test_texts": len(split.test), "items": len(items), "vocab_size": len(vocab) + 1,
              "seconds": round(time.monotonic() - start), "seed": seed, "concatenations": concatenations}
    (work / "data.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    _LOGGER.info("data: %s", record)
    return record


def step_train(work: Path, budget_min: float, seed: int, init: Path | None = None) -> dict:
    from export.asr.train import TrainConfig, train

    vocab = json.loads((work / "vocab.json").read_text(encoding="utf-8"))
    config = TrainConfig(budget_s=budget_min * 60, seed=seed, init=str(init) if init else None)
    return train(work / "data.npz", len(vocab) + 1, work, config)


def step_export(work: Path, out: Path, seed: int, limit: int | None) -> dict:
    from export.asr.bundle import write_bundle, write_vad_bundle

    manifest = write_bundle(work, out, seed=seed, limit=limit)
    write_vad_bundle(out.parent / "vad")
    return manifest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=("data", "train", "export", "all"))
    parser.add_argument("--work", type=Path, default=Path("runs/asr"), help="Working directory for artefacts.")
    parser.add_argument("--out", type=Path, default=Path("edge/models/default/asr"), help="Bundle directory.")
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR, help="Folder of intent CSVs (transcripts).")
    parser.add_argument("--budget-min", type=float, default=35.0, help="Training wall-clock minutes.")
    parser.add_argument("--concatenations", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--init", type=Path, default=None,
                        help="Continue training from this model.pt (copy it first: train overwrites work/model.pt).")
    parser.add_argument("--limit", type=int, default=None, help="Held-out texts per language to score (smoke runs).")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.step in ("data", "all"):
        step_data(args.work, args.corpus, args.seed, args.concatenations)
    if args.step in ("train", "all"):
        step_train(args.work, args.budget_min, args.seed, args.init)
    if args.step in ("export", "all"):
        step_export(args.work, args.out, args.seed, args.limit)


if __name__ == "__main__":
    main()
