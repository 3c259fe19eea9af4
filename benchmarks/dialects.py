"""The dialect gap on matched content: every idea said in Mandarin, Cantonese and Sichuanese.

The corpus's test split cannot measure the gap: each dialect's test turns hold
different intents (a Cantonese family or two per intent), so their macro-F1s
differ by what was drawn. benchmarks/data/intent_dialects.csv holds
evaluation-only ideas, each written once per dialect (its README says who wrote
it and from what). An idea any of whose rows equals a transcript an intent
model may train on (the corpus split's train and dev rows and the train-only
rows of export/data/train_extra, after Traditional->Simplified and
normalisation) is dropped whole, so every dialect and every bundle is scored
on the same unseen ideas; with --asr, so is an idea any of whose transcripts
equals such a row (export/heard_rows.py trains on transcripts too). Reported
per bundle: macro-F1 and accuracy per dialect, the gap (best minus worst macro-F1), F1 per intent and dialect,
and with --asr the same on the built-in ASR's transcripts (each row spoken by
the built-in TTS in its language, held-out voices, phone line).

    python benchmarks/dialects.py [--bundle DIR ...] [--asr]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT / "benchmarks" / "data" / "intent_dialects.csv"
SHIPPED = ROOT / "edge" / "models" / "default" / "intent"


def matched_ideas(examples, training_texts: set[str]):
    """(examples of the ideas that are complete in every dialect and unseen in training, dropped idea ids)."""
    from export.corpus import same_text_key

    dialects = sorted({e.dialect for e in examples})
    by_idea: dict[str, list] = {}
    for e in examples:
        by_idea.setdefault(e.family, []).append(e)
    seen = {same_text_key(t) for t in training_texts}
    kept, dropped = [], []
    for idea, rows in by_idea.items():
        leaked = any(same_text_key(e.text) in seen for e in rows)
        if leaked or sorted(e.dialect for e in rows) != dialects:
            dropped.append(idea)
        else:
            kept.extend(rows)
    return kept, sorted(dropped)


def score(model, examples) -> dict:
    """Per dialect: macro-F1, accuracy and F1 per intent; plus the gap between dialects."""
    from edge.nlu.metrics import evaluate

    results = []
    for start in range(0, len(examples), 64):
        results.extend(model.predict([e.text for e in examples[start:start + 64]]))
    other = model.other_label
    by_dialect = {}
    for dialect in sorted({e.dialect for e in examples}):
        idx = [i for i, e in enumerate(examples) if e.dialect == dialect]
        report = evaluate([examples[i].labels for i in idx], [results[i].labels for i in idx], other)
        by_dialect[dialect] = {"n": len(idx), "macro_f1": round(report.macro_f1, 4),
                               "accuracy": round(report.accuracy, 4),
                               "f1": {label: round(s.f1, 4) for label, s in report.per_label.items() if s.support}}
    f1s = [d["macro_f1"] for d in by_dialect.values()]
    return {"by_dialect": by_dialect, "gap": round(max(f1s) - min(f1s), 4)}


def markdown(result: dict) -> str:
    lines = ["# Dialect gap on matched content", "",
             f"`python benchmarks/dialects.py{result['args']}`. Set: {result['data']}, {result['ideas']} ideas kept "
             f"(each said in every dialect; {len(result['dropped'])} dropped because a row, or with --asr its "
             "transcript, equals a training transcript, or a dialect is missing)."
             + (f" ASR transcripts: CER {result['asr_cer']:.1%}." if "asr_cer" in result else ""), ""]
    dialects = sorted(next(iter(result["rows"].values()))["clean"]["by_dialect"])
    lines += ["| bundle | text | " + " | ".join(dialects) + " | gap |", "|---|---|" + "---|" * (len(dialects) + 1)]
    for name, row in result["rows"].items():
        for text, scored in row.items():
            cells = " | ".join(f"{scored['by_dialect'][d]['macro_f1']:.4f}" for d in dialects)
            lines.append(f"| {name} | {text} | {cells} | {scored['gap']:.4f} |")
    for name, row in result["rows"].items():
        scored = row["clean"]["by_dialect"]
        labels = sorted({label for d in scored.values() for label in d["f1"]})
        lines += ["", f"F1 per intent, {name}, written text:", "", "| intent | " + " | ".join(dialects) + " |",
                  "|---|" + "---|" * len(dialects)]
        lines += [f"| {label} | " + " | ".join(f"{scored[d]['f1'].get(label, 0.0):.2f}" for d in dialects) + " |"
                  for label in labels]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--corpus", type=Path, default=ROOT / "export" / "data" / "intents")
    parser.add_argument("--train-extra", type=Path, action="append",
                        default=[ROOT / "export" / "data" / "train_extra"], help="train-only rows (repeatable)")
    parser.add_argument("--bundle", type=Path, action="append", help="intent bundle(s); default: the shipped one")
    parser.add_argument("--asr", action="store_true", help="also score the built-in ASR's transcripts")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    from edge.nlu import IntentModel
    from edge.nlu.labelled import read_corpus, read_csv
    from export.corpus import load_split

    split, _ = load_split([args.corpus])
    trained = split.train + split.dev + read_corpus(args.train_extra)
    training_texts = {e.text for e in trained}
    examples, dropped = matched_ideas(read_csv(args.data), training_texts)
    tests = {"clean": examples}
    result: dict = {"data": str(args.data.relative_to(ROOT)) if args.data.is_relative_to(ROOT) else str(args.data),
                    "dropped": dropped, "rows": {},
                    "args": "".join(f" --bundle {b}" for b in args.bundle or []) + (" --asr" if args.asr else "")}
    if args.asr:
        from benchmarks.robustness import asr_transcripts
        from edge.asr.text import cer

        heard, _ = asr_transcripts(examples, ROOT / "runs" / "dialects" / "asr_transcripts.json")
        through_asr = [replace(e, text=h) for e, h in zip(examples, heard)]
        _, leaked = matched_ideas(through_asr, training_texts)
        result["dropped"] = sorted(dropped + leaked)
        examples = [e for e in examples if e.family not in leaked]
        through_asr = [e for e in through_asr if e.family not in leaked]
        tests = {"clean": examples, "asr": through_asr}
        result["asr_cer"] = cer([e.text for e in examples], [e.text for e in through_asr])
    result["ideas"] = len({e.family for e in examples})
    for folder in args.bundle or [SHIPPED]:
        model = IntentModel.load(folder)
        name = "shipped" if folder.resolve() == SHIPPED.resolve() else str(folder)
        result["rows"][name] = {text: score(model, rows) for text, rows in tests.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "dialects.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    (args.out / "dialects.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))


if __name__ == "__main__":
    main()
