"""Classification metrics for multi-label intents (numpy only, runtime-safe)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


@dataclass
class LabelScores:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Report:
    accuracy: float
    """Exact match of the whole label set."""
    macro_f1: float
    """Mean F1 over labels with support in the gold data."""
    compound_exact_match: float | None
    """Exact match on utterances with two or more gold labels."""
    oos_false_positive_rate: float | None
    """Share of out-of-scope utterances pushed into a business intent."""
    per_label: dict[str, LabelScores] = field(default_factory=dict)
    n: int = 0

    def to_dict(self) -> dict:
        return {
            "n": self.n, "accuracy": round(self.accuracy, 4), "macro_f1": round(self.macro_f1, 4),
            "compound_exact_match": None if self.compound_exact_match is None else round(self.compound_exact_match, 4),
            "oos_false_positive_rate": None if self.oos_false_positive_rate is None else round(self.oos_false_positive_rate, 4),
            "per_label": {k: {"precision": round(v.precision, 4), "recall": round(v.recall, 4),
                              "f1": round(v.f1, 4), "support": v.support} for k, v in self.per_label.items()},
        }


def evaluate(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], other_label: str | None = "other") -> Report:
    """Score predicted label sets against gold label sets (order ignored)."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold rows but {len(pred)} predictions")
    gold_sets = [frozenset(g) for g in gold]
    pred_sets = [frozenset(p) for p in pred]
    labels = sorted(set().union(*gold_sets)) if gold_sets else []
    per_label = {}
    for label in labels:
        tp = sum(label in g and label in p for g, p in zip(gold_sets, pred_sets))
        fp = sum(label not in g and label in p for g, p in zip(gold_sets, pred_sets))
        fn = sum(label in g and label not in p for g, p in zip(gold_sets, pred_sets))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[label] = LabelScores(precision, recall, f1, tp + fn)
    exact = [g == p for g, p in zip(gold_sets, pred_sets)]
    compound = [e for e, g in zip(exact, gold_sets) if len(g) > 1]
    oos = [p != {other_label} for g, p in zip(gold_sets, pred_sets) if g == {other_label}]
    return Report(
        accuracy=sum(exact) / len(exact) if exact else 0.0,
        macro_f1=sum(s.f1 for s in per_label.values()) / len(per_label) if per_label else 0.0,
        compound_exact_match=sum(compound) / len(compound) if compound else None,
        oos_false_positive_rate=sum(oos) / len(oos) if oos else None,
        per_label=per_label,
        n=len(gold_sets),
    )


def format_report(report: Report, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"utterances {report.n}  accuracy {report.accuracy:.4f}  macro-F1 {report.macro_f1:.4f}")
    if report.compound_exact_match is not None:
        lines.append(f"compound exact-match {report.compound_exact_match:.4f}")
    if report.oos_false_positive_rate is not None:
        lines.append(f"out-of-scope pushed into a business intent {report.oos_false_positive_rate:.4f}")
    lines.append(f"{'intent':<28}{'P':>8}{'R':>8}{'F1':>8}{'n':>6}")
    for label, s in sorted(report.per_label.items()):
        lines.append(f"{label:<28}{s.precision:>8.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.support:>6}")
    return "\n".join(lines)
