"""Few-shot intents: does an intent added from k examples work, and what does
it cost the others?

Protocol: for each held-out intent H, export a bundle whose training data
(the corpus's train and dev splits, and export/data/train_extra as the built-in
bundle adds it) has no row labelled H (BERT teacher skipped to keep it affordable: the student is
distilled from the n-gram teacher alone), and build its few-shot head with H
excluded too (export/fewshot_head.py --exclude H: the head's episodes, IDF and
checkpoint choice never see H). Then add H back as a few-shot intent from
k = 5, 10, 20 examples drawn from H's *training* families, and score the
held-out test split (families never seen): F1 of H, and macro-F1 of the other
intents against the same bundle without the few-shot intent. Three draws per
k. Each row is measured twice: prototypes in the few-shot head's space, and in
the classifier's own pooled embedding (the space used before the head).

    python benchmarks/fewshot.py [--intents ask_trial ask_price wrong_person send_info] [--reuse]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


VARIANTS = {
    "head": ("bundle-head", {}),
    "head, centroid rule": ("bundle-head", {"other_slack": 0.0}),
    "head, no comparison": ("bundle-head", {"other_slack": float("inf")}),
    "head, no synonyms": ("bundle-head-no-synonyms", {}),
    "head, no aliases": ("bundle-head-no-aliases", {}),
    "head, before": ("bundle-head-no-aliases", {"other_slack": 0.0}),
    "classifier": ("bundle-head", {"use_head": False}),
}
"""Name -> (head build, FewShotIntentModel options): the runtime, ablations, and the classifier's space."""


def write_csv(path: Path, examples) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["transcript", "intent_label", "dialect", "family"])
        for e in examples:
            writer.writerow([e.text, "|".join(e.labels), e.dialect, e.family])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(ROOT / "export" / "data" / "intents"))
    parser.add_argument("--train-extra", default=str(ROOT / "export" / "data" / "train_extra"),
                        help="train-only rows the built-in bundle adds (those of the held-out intent are left out)")
    parser.add_argument("--intents", nargs="+", default=["ask_trial", "ask_price", "wrong_person", "send_info"])
    parser.add_argument("--ks", nargs="+", type=int, default=[5, 10, 20])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--student-epochs", type=int, default=12)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "fewshot")
    parser.add_argument("--reuse", action="store_true", help="reuse bundles and heads already built in --work")
    parser.add_argument("--head-episodes", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    import shutil
    import time

    from edge.nlu import FewShotIntentModel, FewShotStore, IntentModel
    from edge.nlu.labelled import read_corpus
    from edge.nlu.metrics import evaluate
    from export import episodes, fewshot_head
    from export.corpus import load_split
    from export.pipeline import ExportOptions, run

    split, _ = load_split([args.corpus])
    extra = read_corpus([args.train_extra]) if args.train_extra else []
    rows, heads = [], {}
    for held in args.intents:
        work = args.work / held
        work.mkdir(parents=True, exist_ok=True)
        keep = lambda e: held not in e.labels  # noqa: E731
        test = [e for e in split.test if keep(e) or e.labels == (held,)]
        if not (args.reuse and (work / "bundle" / "manifest.json").exists()):
            write_csv(work / "train.csv", [e for e in split.train + split.dev if keep(e)])
            write_csv(work / "test.csv", [e for e in test if keep(e)])
            write_csv(work / "train_extra.csv", [e for e in extra if keep(e)])
            run(ExportOptions(corpus=[str(work / "train.csv")], test=str(work / "test.csv"), out=str(work / "bundle"),
                              train_extra=[str(work / "train_extra.csv")] if extra else [],
                              teacher_epochs=0, student_epochs=args.student_epochs, slim=True, progress=False))
        for name, aliases, synonyms in (("bundle-head", None, True), ("bundle-head-no-synonyms", None, False),
                                        ("bundle-head-no-aliases", {}, False)):
            with_head = work / name
            if not (args.reuse and (with_head / fewshot_head.HEAD_FILE).exists()):
                shutil.rmtree(with_head, ignore_errors=True)
                shutil.copytree(work / "bundle", with_head)
                config = episodes.EpisodeConfig(**({"episodes": args.head_episodes} if args.head_episodes else {}))
                t0 = time.perf_counter()
                fewshot_head.build(with_head, [args.corpus], exclude=[held], episode_config=config, aliases=aliases,
                                   synonyms=synonyms)
                print(f"{held}: {name} built in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        with_head = work / "bundle-head"
        heads[held] = json.loads((with_head / "manifest.json").read_text(encoding="utf-8"))["fewshot_head"]["build"]
        model = IntentModel.load(with_head)
        models = {"bundle-head": model, "bundle-head-no-synonyms": IntentModel.load(work / "bundle-head-no-synonyms"),
                  "bundle-head-no-aliases": IntentModel.load(work / "bundle-head-no-aliases")}
        gold = [e.labels for e in test]
        others = lambda report: sum(s.f1 for l, s in report.per_label.items() if l != held) / max(  # noqa: E731
            1, sum(1 for l in report.per_label if l != held))
        base = evaluate(gold, [r.labels for r in model.predict([e.text for e in test])], model.other_label)
        pool = [e.text for e in split.train if e.labels == (held,)]
        for space, (bundle_name, options) in VARIANTS.items():
            for k in args.ks:
                f1s, deltas, precisions, recalls, oos = [], [], [], [], []
                for draw in range(args.draws):
                    store = FewShotStore(":memory:")
                    store.add(held, random.Random(draw).sample(pool, k))
                    fewshot = FewShotIntentModel(models[bundle_name], store, **options)
                    report = evaluate(gold, [r.labels for r in fewshot.predict([e.text for e in test])],
                                      model.other_label)
                    f1s.append(report.per_label[held].f1)
                    precisions.append(report.per_label[held].precision)
                    recalls.append(report.per_label[held].recall)
                    deltas.append(others(report) - others(base))
                    oos.append((report.oos_false_positive_rate or 0.0) - (base.oos_false_positive_rate or 0.0))
                rows.append({"space": space, "intent": held, "k": k, "f1": round(sum(f1s) / len(f1s), 4),
                             "f1_min": round(min(f1s), 4), "precision": round(sum(precisions) / len(precisions), 4),
                             "recall": round(sum(recalls) / len(recalls), 4),
                             "out_of_scope_fp_rate_change": round(sum(oos) / len(oos), 4),
                             "others_macro_f1_change": round(sum(deltas) / len(deltas), 4),
                             "others_macro_f1_without": round(others(base), 4),
                             "test_support": sum(g == (held,) for g in gold)})
                print(rows[-1], file=sys.stderr)

    lines = ["# Few-shot intents", "",
             "Each intent held out of the classifier *and* of the few-shot head, then added back from k "
             f"training examples ({args.draws} draws); scored on the held-out test split (families never "
             "seen). `head`: the runtime (prototypes in the few-shot head's space, export/fewshot_head.py); "
             "`classifier`: in the classifier's pooled embedding (bundles without a head). Ablations on the same "
             "bundles: `head, centroid rule`: a turn the classifier calls other must also beat the trained "
             "centroids (the rule before); `head, no comparison`: any turn the classifier calls other goes to a few-shot "
             "intent whose threshold it clears (no centroid comparison); `head, no synonyms`: a head that reads turns "
             "as they are, not through the lexicon's synonym groups (session 6's head); `head, no aliases`: neither "
             "synonyms nor the dialect aliases; `head, before`: that and the centroid rule (session 3's method). "
             "Bundles are trained like the built-in one: corpus plus the train-only rows, less every row of H.", "",
             f"Command: `python {' '.join(sys.argv)}`", "",
             "| space | intent | k | F1 (mean) | F1 (worst draw) | P | R | others' macro-F1 change | "
             "out-of-scope FP rate change | test n |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['space']} | {r['intent']} | {r['k']} | {r['f1']:.4f} | {r['f1_min']:.4f} | "
                     f"{r['precision']:.2f} | {r['recall']:.2f} | {r['others_macro_f1_change']:+.4f} | "
                     f"{r['out_of_scope_fp_rate_change']:+.4f} | {r['test_support']} |")
    for space in VARIANTS:
        for k in args.ks:
            sel = [r for r in rows if r["k"] == k and r["space"] == space]
            mean = lambda key: sum(r[key] for r in sel) / len(sel)  # noqa: E731
            lines.append(f"| **{space}, mean** | | {k} | {mean('f1'):.4f} | | {mean('precision'):.2f} | "
                         f"{mean('recall'):.2f} | {mean('others_macro_f1_change'):+.4f} | "
                         f"{mean('out_of_scope_fp_rate_change'):+.4f} | |")
    lines += ["", "Head builds (one per held-out intent, H excluded):", "",
              "| held out | build s | validation intents (dev) | best dev accuracy | best episode |", "|---|---|---|---|---|"]
    for held, build in heads.items():
        training = build["training"]
        lines.append(f"| {held} | {build['duration_s']} | {', '.join(training['validation_intents'])} | "
                     f"{training['best_dev_accuracy']} | {training['best_episode']} |")
    markdown = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fewshot.json").write_text(json.dumps({"command": sys.argv, "rows": rows, "heads": heads},
                                                       indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (args.out / "fewshot.md").write_text(markdown, encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
