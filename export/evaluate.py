"""Score models on a split through the runtime's own engines, and time them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from edge.nlu.engines import open_engine
from edge.nlu.labelled import Example
from edge.nlu.metrics import Report, evaluate
from edge.nlu.text import TextEncoder


def engine_logits(engine_name: str, model_path: Path, encoder: TextEncoder, texts: Sequence[str],
                  batch_size: int = 64) -> np.ndarray:
    """Logits from an exported file, run exactly as the runtime runs it."""
    engine = open_engine(engine_name, model_path, threads=1)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding per batch
    out: list[np.ndarray | None] = [None] * len(texts)
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        for i, row in zip(batch, engine.run(encoder.encode([texts[i] for i in batch]))["logits"]):
            out[i] = row
    return np.stack(out).astype(np.float32)


def full_report(examples: Sequence[Example], predictions: Sequence[Sequence[str]], other: str | None) -> dict:
    """Overall metrics plus macro-F1 per dialect."""
    gold = [e.labels for e in examples]
    report: Report = evaluate(gold, predictions, other)
    out = report.to_dict()
    by_dialect = {}
    for dialect in sorted({e.dialect for e in examples}):
        idx = [i for i, e in enumerate(examples) if e.dialect == dialect]
        sub = evaluate([gold[i] for i in idx], [predictions[i] for i in idx], other)
        by_dialect[dialect] = {"n": len(idx), "macro_f1": round(sub.macro_f1, 4), "accuracy": round(sub.accuracy, 4)}
    out["by_dialect"] = by_dialect
    return out


def latency_ms(run, texts: Sequence[str], runs: int = 1000, warmup: int = 50) -> dict:
    """p50/p95/min of single-utterance calls (batch 1), cycling through texts."""
    for i in range(warmup):
        run([texts[i % len(texts)]])
    times = []
    for i in range(runs):
        text = texts[i % len(texts)]
        start = time.perf_counter()
        run([text])
        times.append((time.perf_counter() - start) * 1000.0)
    arr = np.asarray(times)
    return {"p50": round(float(np.percentile(arr, 50)), 4), "p95": round(float(np.percentile(arr, 95)), 4),
            "min": round(float(arr.min()), 4), "runs": runs}


def part_latency(model_path: Path, encoder: TextEncoder, texts: Sequence[str], runs: int = 300) -> dict:
    """Where one utterance's time goes (batch 1, one thread): text prep vs model."""
    engine = open_engine("onnxruntime", model_path, threads=1)
    prep, model = [], []
    for i in range(runs):
        text = texts[i % len(texts)]
        t0 = time.perf_counter()
        feeds = encoder.encode([text])
        t1 = time.perf_counter()
        engine.run(feeds)
        t2 = time.perf_counter()
        prep.append(t1 - t0)
        model.append(t2 - t1)
    return {"text_prep_p50": round(float(np.median(prep)) * 1000, 4),
            "model_p50": round(float(np.median(model)) * 1000, 4)}
