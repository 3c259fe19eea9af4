"""What the built-in ASR's held-out errors are: homophones, characters it cannot write, or mishearings.

Decodes the held-out test sentences (the same set as benchmarks/asr.py,
language given) and sorts every edit against the reference:

- *homophone*: a substitution by a character of the same toneless sound in
  the language's sound table (the bundle's lexicon.tsv / lexicon_yue.tsv):
  the acoustic model heard the syllable; only context can pick the character;
- *outside the vocabulary*: a reference character the model has no output for
  (tokens.txt): no decoder can produce it;
- *in an English word*: an edit of a Latin letter (the held-out Mandarin
  has words such as OUTLOOK, EXCEL, DEMO, each letter counted as a
  character), whatever the edit;
- *other substitution*, *deletion*, *insertion*: mishearings.

Each is given as a share of the reference characters (so the kinds add up to
the CER), before and after the rescoring, with the commonest homophone pairs.

\b
    python benchmarks/asr_errors.py                       # the built-in model
    python benchmarks/asr_errors.py --model DIR --limit 40
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge import asr  # noqa: E402
from edge.asr.base import transcribe  # noqa: E402
from edge.asr.rescore import read_lexicon  # noqa: E402
from edge.asr.text import edits, normalize  # noqa: E402
from edge.config import DEFAULT_ASR_DIR, AsrConfig  # noqa: E402
from export.asr.heldout import render  # noqa: E402
from export.asr.lexicon import LEXICONS  # noqa: E402

HELDOUT = ROOT / "export" / "asr" / "data" / "heldout.json"
KINDS = ("homophone", "outside the vocabulary", "in an English word", "other substitution", "deletion", "insertion")


def kind_of(ref: str, hyp: str, sounds: dict[str, str], vocab: set[str]) -> str:
    if (ref or hyp).isascii() and (ref or hyp).isalpha():
        return "in an English word"
    if ref and ref not in vocab:
        return "outside the vocabulary"
    if not ref:
        return "insertion"
    if not hyp:
        return "deletion"
    return "homophone" if sounds.get(ref) is not None and sounds.get(ref) == sounds.get(hyp) else "other substitution"


def breakdown(rows: list[dict], model: Path, field: str) -> tuple[dict, Counter]:
    """Per group ("all", "cmn/clean", ...): reference characters and each kind's share of them."""
    tables = {lang: read_lexicon(model / name) for lang, name in LEXICONS.items() if (model / name).exists()}
    lines = (model / "tokens.txt").read_text(encoding="utf-8").splitlines()
    vocab = {line.rsplit(maxsplit=1)[0] for line in lines if line.strip()}
    chars: Counter = Counter()
    counts: dict[str, Counter] = {}
    pairs: Counter = Counter()
    for row in rows:
        ref, hyp = normalize(row["ref"]), normalize(row[field])
        sounds = tables.get(row["lang"]) or tables.get("cmn", {})
        for group in ("all", f"{row['lang']}/{row['condition']}"):
            chars[group] += len(ref)
            for a, b in edits(ref, hyp):
                kind = kind_of(a, b, sounds, vocab)
                counts.setdefault(group, Counter())[kind] += 1
                if group == "all" and kind == "homophone":
                    pairs[f"{row['lang']} {a}->{b}"] += 1
    table = {group: {"chars": chars[group],
                     "cer": round(sum(counts.get(group, Counter()).values()) / max(1, chars[group]), 4),
                     **{kind: round(counts.get(group, Counter())[kind] / max(1, chars[group]), 4) for kind in KINDS}}
             for group in sorted(chars)}
    return table, pairs


def markdown(name: str, results: dict) -> str:
    out = [f"### {name}", "", "| rescoring | group | CER | " + " | ".join(KINDS) + " |",
           "|---|---|---|" + "---|" * len(KINDS)]
    for field, label in (("raw", "off"), ("hyp", "on")):
        for group, entry in results[field]["table"].items():
            out.append(f"| {label} | {group} | {entry['cer']:.1%} | "
                       + " | ".join(f"{entry[kind]:.1%}" for kind in KINDS) + " |")
    top = ", ".join(f"{pair} ×{n}" for pair, n in results["hyp"]["pairs"][:15])
    out += ["", f"Commonest homophone errors after the rescoring: {top}", ""]
    return "\n".join(out)


def _shown(path: Path) -> str:
    return str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", type=Path, default=None,
                        help="Model directory (repeatable; default: the built-in bundle).")
    parser.add_argument("--split", type=Path, default=HELDOUT,
                        help="JSON whose 'test' list ({text, lang}) is spoken with the held-out voices (default: the "
                             "held-out test texts; export/asr/data/english_dev.json: Mandarin with English words).")
    parser.add_argument("--part", default="test",
                        help="Which list of --split to speak: 'test', or 'tuning' (heldout.json's tuning texts; "
                             "export/asr/data/english_tuning.json: English words, for choices).")
    parser.add_argument("--limit", type=int, default=None, help="At most this many texts per language.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--name", default="asr_errors")
    args = parser.parse_args(argv)
    parts = json.loads(args.split.read_text(encoding="utf-8"))
    if args.part not in parts:
        parser.error(f"{args.split} has no list {args.part!r} (it has: {', '.join(k for k in parts if k != 'about')})")
    samples = render(parts[args.part], args.limit)
    report, sections = {"when": time.strftime("%Y%m%d-%H%M%S"), "samples": len(samples), "models": {}}, []
    for model in args.model or [DEFAULT_ASR_DIR]:
        recognizer = asr.open(AsrConfig(model=model, threads=1))
        rows = []
        for sample in samples:
            finals = transcribe(recognizer, sample.audio, language=sample.lang)
            rows.append({"ref": sample.text, "lang": sample.lang, "condition": sample.condition,
                         "raw": "".join(r.raw_text if r.raw_text is not None else r.text for r in finals),
                         "hyp": "".join(r.text for r in finals)})
        results = {}
        for field in ("raw", "hyp"):
            table, pairs = breakdown(rows, model, field)
            results[field] = {"table": table, "pairs": pairs.most_common(40)}
        name = "built-in" if model == DEFAULT_ASR_DIR else str(model)
        report["models"][name] = results
        sections.append(markdown(name, results))
        print(sections[-1])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    (args.out / f"{args.name}.md").write_text(
        f"# Held-out ASR errors by kind\n\n`python benchmarks/asr_errors.py"
        f"{'' if args.split == HELDOUT else f' --split {_shown(args.split)}'}"
        f"{'' if args.part == 'test' else f' --part {args.part}'}"
        f"{''.join(f' --model {m}' for m in args.model or [])}`: {len(samples)} "
        f"{'held-out test' if args.part == 'test' else args.part} utterances, the "
        f"language given. Each kind is a share of the reference characters; the kinds add up to the CER. "
        f"Homophone: same toneless sound in the language's sound table, so only context can tell them "
        f"apart; outside the vocabulary: a character the model has no output for; in an English word: an edit "
        f"of a Latin letter, each letter counted as a character.\n\n" + "\n".join(sections),
        encoding="utf-8")
    print(f"wrote {args.out}/{args.name}.json and .md")


if __name__ == "__main__":
    main()
