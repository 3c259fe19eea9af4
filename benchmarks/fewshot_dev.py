"""Few-shot intents on the dev split: where the runtime's choices are made.

benchmarks/fewshot.py scores the test split with bundles built without the
held-out intent; choices must not be made there. This suite holds out every
trained intent H in turn on the *built-in* bundle: H's classifier output is
masked (its logit forced far below the threshold) and its centroid in the
head's space zeroed, H is added back from k training examples (3 draws), and
the dev split (families the classifier never trained on) is scored: F1 of H
and the macro-F1 change of the others. The masking is an approximation (the
classifier and the head did see H in training; a classifier that never saw H
sends more of H's turns to trained intents), so figures here run above
benchmarks/fewshot.py's; use them to compare rules, not as the result.

    python benchmarks/fewshot_dev.py [--intents ask_trial ...] [--ks 5 10 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RULES = {"other": {}, "centroid": {"other_slack": 0.0}}
"""other: a turn the classifier calls "other" goes to a few-shot intent whose threshold it clears
(the runtime's rule); centroid: every turn must also beat the nearest trained centroid (the rule before)."""


class _Masked:
    """An IntentModel whose output for one label never fires."""

    def __init__(self, model, label: str):
        self._model, self._index = model, model.labels.index(label)

    def __getattr__(self, name):
        return getattr(self._model, name)

    def run_feeds(self, feeds):
        out = self._model.run_feeds(feeds)
        out["logits"] = out["logits"].copy()
        out["logits"][:, self._index] = -30.0
        return out

    def results_from_logits(self, logits):
        results = self._model.results_from_logits(logits)
        return [dataclasses.replace(r, scores={k: v for k, v in r.scores.items() if k != self.labels[self._index]})
                for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(ROOT / "export" / "data" / "intents"))
    parser.add_argument("--bundle", default=None, help="intent bundle (default: the built-in one)")
    parser.add_argument("--intents", nargs="*", default=None, help="held out in turn (default: every trained intent)")
    parser.add_argument("--ks", nargs="+", type=int, default=[5, 10, 20])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--slacks", nargs="*", type=float, default=None,
                        help="compare these other_slack values instead of RULES (inf: no comparison)")
    parser.add_argument("--margins", nargs="*", type=float, default=None,
                        help="compare these threshold margins (edge/nlu/fewshot.py DEFAULT_MARGIN) instead of RULES")
    parser.add_argument("--out", type=Path, default=None, help="write the rows here as JSON")
    args = parser.parse_args()

    from edge.config import DEFAULT_INTENT_DIR
    from edge.nlu import FewShotIntentModel, FewShotStore, IntentModel
    from edge.nlu.metrics import evaluate
    from export.corpus import load_split

    model = IntentModel.load(args.bundle or DEFAULT_INTENT_DIR)
    split, _ = load_split([args.corpus])
    dev = [e for e in split.dev if set(e.labels) <= set(model.labels)]
    gold = [e.labels for e in dev]
    texts = [e.text for e in dev]
    intents = args.intents or [label for label in model.labels if label != model.other_label]
    rules = {f"slack {x:g}": {"other_slack": x} for x in args.slacks} if args.slacks else RULES
    if args.margins:
        rules = {f"margin {x:g}": {"margin": x} for x in args.margins}
    rows = []
    for held in intents:
        masked = _Masked(model, held)
        base = evaluate(gold, [r.labels for r in masked.predict(texts)], model.other_label)
        others = lambda report: np.mean([s.f1 for l, s in report.per_label.items() if l != held])  # noqa: E731
        pool = [e.text for e in split.train if e.labels == (held,)]
        for rule, options in rules.items():
            fewshot = FewShotIntentModel(masked, FewShotStore(":memory:"), **options)
            if fewshot.head is not None:
                centroids = fewshot.head.centroids.copy()
                centroids[model.labels.index(held)] = 0.0
                fewshot.head = dataclasses.replace(fewshot.head, centroids=centroids)
            for k in args.ks:
                f1s, deltas, oos = [], [], []
                for draw in range(args.draws):
                    fewshot.store.remove(held)
                    fewshot.store.add(held, random.Random(draw).sample(pool, min(k, len(pool))))
                    report = evaluate(gold, [r.labels for r in fewshot.predict(texts)], model.other_label)
                    f1s.append(report.per_label[held].f1)
                    deltas.append(others(report) - others(base))
                    oos.append((report.oos_false_positive_rate or 0.0) - (base.oos_false_positive_rate or 0.0))
                rows.append({"rule": rule, "intent": held, "k": k, "f1": round(float(np.mean(f1s)), 4),
                             "others_macro_f1_change": round(float(np.mean(deltas)), 4),
                             "out_of_scope_fp_rate_change": round(float(np.mean(oos)), 4)})
        print(held, [(r["rule"], r["k"], r["f1"]) for r in rows if r["intent"] == held], file=sys.stderr)
    print(f"dev split, {len(intents)} intents held out in turn, {args.draws} draws; bundle {model.bundle.root}")
    print("| rule | k | mean F1 | others' macro-F1 change | out-of-scope FP rate change |\n|---|---|---|---|---|")
    for rule in rules:
        for k in args.ks:
            sel = [r for r in rows if r["rule"] == rule and r["k"] == k]
            print(f"| {rule} | {k} | {np.mean([r['f1'] for r in sel]):.4f} | "
                  f"{np.mean([r['others_macro_f1_change'] for r in sel]):+.4f} | "
                  f"{np.mean([r['out_of_scope_fp_rate_change'] for r in sel]):+.4f} |")
    if args.out:
        args.out.write_text(json.dumps({"command": sys.argv, "rows": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
