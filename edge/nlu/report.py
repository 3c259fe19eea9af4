"""A quality report a user can trust: per-intent scores, confusion matrix,
out-of-scope false positives, dialect split, calibration, cost per part.

Written next to every exported bundle, and by `salesbot intent eval --report`
for a user's own labelled CSV.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from edge.nlu.intent import IntentResult
from edge.nlu.labelled import Example
from edge.nlu.metrics import evaluate

CALIBRATION_BINS = 10


def calibration(examples: Sequence[Example], results: Sequence[IntentResult]) -> dict:
    """Top-1 score against how often the top-1 label is right, in 10 bins; ECE."""
    conf = np.array([r.score for r in results])
    correct = np.array([r.label in e.labels for e, r in zip(examples, results)], dtype=float)
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    bins, ece = [], 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf >= lo) & ((conf < hi) if hi < 1.0 else (conf <= hi))
        if inside.any():
            acc, mean_conf = float(correct[inside].mean()), float(conf[inside].mean())
            ece += inside.mean() * abs(acc - mean_conf)
            bins.append({"from": round(lo, 2), "to": round(hi, 2), "n": int(inside.sum()),
                         "confidence": round(mean_conf, 4), "accuracy": round(acc, 4)})
    return {"ece": round(float(ece), 4), "bins": bins}


def confusion(examples: Sequence[Example], results: Sequence[IntentResult], labels: list[str]) -> np.ndarray:
    """Counts of (gold, top predicted) over single-label utterances."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=int)
    for example, result in zip(examples, results):
        if len(example.labels) == 1 and example.labels[0] in index:
            matrix[index[example.labels[0]], index[result.label]] += 1
    return matrix


def shared_intents(examples: Sequence[Example], results: Sequence[IntentResult], other: str | None) -> dict:
    """Macro-F1 per dialect over only the intents every dialect's test turns have.

    A dialect's test subset usually covers fewer, and easier or harder, intents than Mandarin's, so the
    plain gap mixes "how well is this dialect understood" with "which intents did its turns happen to
    be". Here every dialect is scored on the same intents (turns with other gold labels left out).
    """
    dialects = sorted({e.dialect for e in examples})
    shared = set.intersection(*({label for e in examples if e.dialect == d for label in e.labels} for d in dialects))
    shared.discard(other)
    out: dict = {"intents": sorted(shared), "by_dialect": {}}
    for dialect in dialects:
        idx = [i for i, e in enumerate(examples) if e.dialect == dialect and set(e.labels) <= shared]
        sub = evaluate([examples[i].labels for i in idx], [results[i].labels for i in idx], other)
        f1s = [s.f1 for label, s in sub.per_label.items() if label in shared and s.support]
        out["by_dialect"][dialect] = {"n": len(idx), "macro_f1": round(sum(f1s) / max(1, len(f1s)), 4)}
    scores = [d["macro_f1"] for d in out["by_dialect"].values()]
    out["gap"] = round(max(scores) - min(scores), 4) if shared else None
    return out


def build(examples: Sequence[Example], results: Sequence[IntentResult], labels: list[str],
          other: str | None, extra: dict | None = None) -> dict:
    report = evaluate([e.labels for e in examples], [r.labels for r in results], other).to_dict()
    dialects = {}
    for dialect in sorted({e.dialect for e in examples}):
        idx = [i for i, e in enumerate(examples) if e.dialect == dialect]
        sub = evaluate([examples[i].labels for i in idx], [results[i].labels for i in idx], other)
        dialects[dialect] = {"n": len(idx), "macro_f1": round(sub.macro_f1, 4), "accuracy": round(sub.accuracy, 4)}
    report["by_dialect"] = dialects
    if len(dialects) > 1:
        scores = [d["macro_f1"] for d in dialects.values()]
        report["dialect_gap"] = round(max(scores) - min(scores), 4)
        report["shared_intents"] = shared_intents(examples, results, other)

    report["calibration"] = calibration(examples, results)
    matrix = confusion(examples, results, labels)
    pairs = [(int(matrix[i, j]), labels[i], labels[j]) for i in range(len(labels)) for j in range(len(labels))
             if i != j and matrix[i, j]]
    report["top_confusions"] = [{"gold": g, "predicted": p, "count": n} for n, g, p in sorted(pairs, reverse=True)[:10]]
    report.update(extra or {})
    return report


def write(out_dir: str | Path, examples: Sequence[Example], results: Sequence[IntentResult], labels: list[str],
          other: str | None, extra: dict | None = None, title: str = "Intent model quality") -> dict:
    """Write quality.json, quality.md, confusion.png and reliability.png."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = build(examples, results, labels, other, extra)
    (out / "quality.json").write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    _plot_confusion(confusion(examples, results, labels), labels, out / "confusion.png")
    _plot_reliability(report["calibration"], out / "reliability.png")
    (out / "quality.md").write_text(_markdown(report, title), encoding="utf-8")
    return report


def _markdown(report: dict, title: str) -> str:
    lines = [f"# {title}", "", f"Utterances: {report['n']}. Accuracy (exact label set) {report['accuracy']:.4f}, "
             f"macro-F1 {report['macro_f1']:.4f}."]
    if report["compound_exact_match"] is not None:
        lines.append(f"Compound turns, exact match: {report['compound_exact_match']:.4f}.")
    if report["oos_false_positive_rate"] is not None:
        lines.append(f"Out-of-scope turns pushed into a business intent: {report['oos_false_positive_rate']:.4f}.")
    lines.append(f"Calibration: expected calibration error {report['calibration']['ece']:.4f} "
                 "(reliability.png). Confusions: confusion.png.")
    lines += ["", "| dialect | n | macro-F1 | accuracy |", "|---|---|---|---|"]
    lines += [f"| {d} | {v['n']} | {v['macro_f1']:.4f} | {v['accuracy']:.4f} |" for d, v in report["by_dialect"].items()]
    shared = report.get("shared_intents")
    if shared and shared["gap"] is not None:
        lines += ["", f"Gap between dialects {report['dialect_gap']:.4f}; on the {len(shared['intents'])} intents every "
                  f"dialect has ({', '.join(shared['intents'])}): {shared['gap']:.4f} (" + ", ".join(
                      f"{d} {v['macro_f1']:.4f} n={v['n']}" for d, v in shared["by_dialect"].items()) + ")."]
    lines += ["", "| intent | precision | recall | F1 | n |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
              for k, v in sorted(report["per_label"].items())]
    if report["top_confusions"]:
        lines += ["", "Most frequent confusions (gold -> predicted): " + ", ".join(
            f"{c['gold']} -> {c['predicted']} ({c['count']})" for c in report["top_confusions"])]
    for key in ("latency_ms", "sizes_bytes"):
        if key in report:
            lines += ["", f"{key}: " + ", ".join(f"{k} {v}" for k, v in report[key].items())]
    return "\n".join(lines) + "\n"


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _plot_confusion(matrix: np.ndarray, labels: list[str], path: Path) -> None:
    plt = _pyplot()
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    fig, ax = plt.subplots(figsize=(0.38 * len(labels) + 3, 0.38 * len(labels) + 2.5))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted (top label)")
    ax.set_ylabel("gold (single-label turns)")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=5,
                        color="white" if share[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.04, label="share of gold row")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_reliability(calib: dict, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    centers = [(b["from"] + b["to"]) / 2 for b in calib["bins"]]
    ax.bar(centers, [b["accuracy"] for b in calib["bins"]], width=0.09, alpha=0.7, label="accuracy")
    ax.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    ax.plot([b["confidence"] for b in calib["bins"]], [b["accuracy"] for b in calib["bins"]], "o-", color="C1",
            label="mean confidence")
    ax.set_xlabel("top-1 score")
    ax.set_ylabel("share correct")
    ax.set_title(f"Reliability (ECE {calib['ece']:.3f})")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
