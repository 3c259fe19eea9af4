"""ASR benchmark: held-out CER (Mandarin, Cantonese; clean, phone line) and real-time factor per backend.

Scores every recognizer given (default: the built-in bundle) on the held-out
set of the built-in model's export (texts and voices never trained on),
through the runtime's own interface (`asr.open`, VAD, decode, rescoring),
one stream on one thread. Prints a table; writes JSON and Markdown under
benchmarks/results/. Rescoring is scored twice: with each utterance's
language given (``[asr] language = "cmn"/"yue"``, or a call whose earlier
turns showed it) and guessed from the utterance's own text (the first turn
of an ``auto`` call).

\b
    python benchmarks/asr.py                         # built-in model
    python benchmarks/asr.py --model path/to/sherpa-model --limit 40
    python benchmarks/asr.py --split runs/asr/split.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge import asr  # noqa: E402
from edge.config import DEFAULT_ASR_DIR, AsrConfig  # noqa: E402
from export.asr.heldout import decoder_rtf, render, score  # noqa: E402

HELDOUT = ROOT / "export" / "asr" / "data" / "heldout.json"


def _table(rows: list[dict]) -> str:
    lines = ["| model | rescoring | cmn clean | cmn phone | yue clean | yue phone | all | RTF (1 thread) | "
             "decoder RTF |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        cer = row["cer"]
        decoder = "-" if row["decoder_rtf"] is None else f"{row['decoder_rtf']:.4f}"

        def cell(key: str, field: str) -> str:
            return f"{cer[key][field] * 100:.1f}%" if key in cer else "-"

        for field, label in (("cer_no_rescoring", "off"), ("cer", "on, language given"),
                             ("cer_language_guessed", "on, language guessed per utterance")):
            if field != "cer_no_rescoring" and not row["rescoring"]:
                continue
            lines.append(f"| {row['name']} | {label} | {cell('cmn/clean', field)} | {cell('cmn/phone', field)} | "
                         f"{cell('yue/clean', field)} | {cell('yue/phone', field)} | {cell('all', field)} | "
                         f"{row['rtf']:.4f} | {decoder} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", type=Path, default=None,
                        help="Model directory to score (repeatable; default: the built-in bundle).")
    parser.add_argument("--split", type=Path, default=HELDOUT, help="Held-out texts (JSON with a 'test' list).")
    parser.add_argument("--limit", type=int, default=None, help="At most this many texts per language.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    texts = json.loads(args.split.read_text(encoding="utf-8"))["test"]
    samples = render(texts, args.limit)
    rows = []
    for model in args.model or [DEFAULT_ASR_DIR]:
        recognizer = asr.open(AsrConfig(model=model, threads=1))
        result = score(recognizer, samples, language_given=True)
        # sherpa-onnx alone (features + model + greedy CTC), the "RTF through the runtime's decoder"
        result["decoder_rtf"] = decoder_rtf(model, samples[:200]) if recognizer.info.get("backend") == "sherpa-onnx" \
            and not recognizer.info.get("streaming") else None
        if recognizer.info.get("rescoring"):
            guessed = score(recognizer, samples, language_given=False)["cer"]
            for key, entry in result["cer"].items():
                entry["cer_language_guessed"] = guessed[key]["cer"]
        rows.append({"name": model.name if model != DEFAULT_ASR_DIR else "built-in", "model": str(model),
                     "info": recognizer.info, "rescoring": recognizer.info.get("rescoring", False), **result})
    table = _table(rows)
    print(table)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    machine = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
               "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if argv is None else str(argv)}
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"when": stamp, "machine": machine, "samples": len(samples), "rows": rows}
    (args.out / f"asr-{stamp}.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    (args.out / f"asr-{stamp}.md").write_text(
        f"# ASR benchmark {stamp}\n\n{len(samples)} held-out utterances (texts and voices never trained on), "
        f"one stream, one thread, {machine['cpus']} CPUs, Python {machine['python']}.\n\n{table}\n",
        encoding="utf-8")
    print(f"wrote {args.out}/asr-{stamp}.json and .md")


if __name__ == "__main__":
    main()
