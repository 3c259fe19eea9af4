"""Intent model benchmark: the seed's table beside this project's models.

Re-exports the intent bundle from the corpus (unless --bundle-dir points at a
non-slim export), then, on the held-out test split (families never seen in
training), measures for teacher, student, INT8-onnxruntime, INT8-OpenVINO:
macro-F1, accuracy, compound exact-match, out-of-scope false-positive rate,
macro-F1 per dialect, p50/p95 latency (batch 1, 1 thread, after warm-up,
>= 1000 runs), size on disk and peak RSS (each model in its own process),
plus the TF-IDF char 1-3-gram + linear SVM baseline trained on the same split.

    python benchmarks/intent.py                     # full export (~15-25 min on 2 cores) + measure
    python benchmarks/intent.py --bundle-dir runs/intent   # measure an existing export
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED_TABLE = [  # the seed's figures, for comparison (not measured here)
    ("seed: BERT-Large", 0.94, 85.0, None, 1200.0),
    ("seed: distilled", 0.91, 32.0, None, 360.0),
    ("seed: INT8", 0.90, 25.0, None, 90.0),
]

_MEASURE = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from edge.nlu import IntentModel
from edge.nlu.engines import open_engine
engine, model, bundle, runs = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
texts = json.loads(sys.stdin.read())
encoder = IntentModel.load(bundle).encoder  # the bundle's text pipeline (t2s, pinyin) as the runtime runs it
e = open_engine(engine, model, threads=1)
def one(t):
    e.run(encoder.encode([t]))
for i in range(100):
    one(texts[i % len(texts)])
times = []
for i in range(runs):
    t0 = time.perf_counter(); one(texts[i % len(texts)]); times.append((time.perf_counter() - t0) * 1000)
a = np.asarray(times)
print(json.dumps({"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "min": float(a.min()),
                  "runs": runs, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(engine: str, model: Path, bundle: Path, texts: list[str], runs: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(ROOT), engine, str(model), str(bundle), str(runs)],
                          input=json.dumps(texts, ensure_ascii=False), capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def model_size_mb(path: Path) -> float:
    size = path.stat().st_size
    if path.suffix == ".xml":
        size += path.with_suffix(".bin").stat().st_size
    return size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(ROOT / "export" / "data" / "intents"))
    parser.add_argument("--bundle-dir", type=Path, default=None, help="existing non-slim export to measure")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    from export.corpus import load_split
    from export.evaluate import engine_logits, full_report
    from export.train import decide_all, sigmoid
    from edge.nlu import IntentModel

    bundle_dir = args.bundle_dir
    export_seconds = None
    if bundle_dir is None:
        from export.pipeline import ExportOptions, run
        bundle_dir = ROOT / "runs" / "bench-intent"
        t0 = time.perf_counter()
        run(ExportOptions(corpus=[args.corpus], out=str(bundle_dir)))
        export_seconds = round(time.perf_counter() - t0, 1)
    manifest = json.loads((bundle_dir / "manifest.json").read_text(encoding="utf-8"))
    options = manifest["build"]["options"]
    split, labels = load_split(options["corpus"], options["test"], seed=options["seed"])
    if labels != manifest["labels"]:
        raise SystemExit("the corpus changed since this export: re-run without --bundle-dir")
    other = manifest["decision"]["other_label"]
    thresholds = manifest["build"]["thresholds_dev"]
    encoder = IntentModel.load(bundle_dir).encoder
    texts = [e.text for e in split.test]

    rows = []
    models = [("teacher (BERT, FP32)", "onnxruntime", "teacher.onnx", thresholds["teacher_bert"]),
              ("student (FP32)", "onnxruntime", "student.onnx", thresholds["student_fp32"]),
              ("student INT8 onnxruntime", "onnxruntime", manifest["models"]["onnxruntime"], thresholds["student_int8"]),
              ("student INT8 OpenVINO", "openvino", manifest["models"]["openvino"], thresholds["student_int8"])]
    for name, engine, file, threshold in models:
        path = bundle_dir / file
        if not path.exists():
            continue
        logits = engine_logits(engine, path, encoder, texts)
        report = full_report(split.test, decide_all(sigmoid(logits), labels, threshold, other), other)
        timing = measure(engine, path, bundle_dir, texts, args.runs)
        rows.append({"model": name, "engine": engine, "file": file, "macro_f1": report["macro_f1"],
                     "accuracy": report["accuracy"], "compound_exact_match": report["compound_exact_match"],
                     "oos_false_positive_rate": report["oos_false_positive_rate"],
                     "by_dialect": report["by_dialect"], "latency_ms": timing, "size_mb": round(model_size_mb(path), 2)})
        print(f"measured {name}", file=sys.stderr)
    for key, name in (("teacher_ensemble", "teacher ensemble (BERT + n-gram LR)"),
                      ("ngram_svm_baseline", "baseline: TF-IDF char 1-3 + LinearSVC")):
        m = manifest["metrics"][key]
        rows.append({"model": name, "macro_f1": m["macro_f1"], "accuracy": m["accuracy"],
                     "compound_exact_match": m["compound_exact_match"],
                     "oos_false_positive_rate": m["oos_false_positive_rate"], "by_dialect": m["by_dialect"]})

    int8 = next(r for r in rows if r["model"] == "student INT8 onnxruntime")
    teacher_row = next((r for r in rows if r["model"].startswith("teacher (BERT")), None)
    base = next(r for r in rows if r["model"].startswith("baseline"))
    result = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "bundle_dir": str(bundle_dir), "export_seconds": export_seconds,
        "split_sizes": manifest["build"]["split_sizes"], "rows": rows,
        "margins": {"int8_minus_svm_macro_f1": round(int8["macro_f1"] - base["macro_f1"], 4),
                    "int8_minus_teacher_macro_f1": round(int8["macro_f1"] - teacher_row["macro_f1"], 4) if teacher_row else None},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "intent.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    markdown = render(result)
    (args.out / "intent.md").write_text(markdown, encoding="utf-8")
    print(markdown)


def render(result: dict) -> str:
    def f(x, fmt="{:.4f}"):
        return "-" if x is None else fmt.format(x)

    lines = [f"# Intent benchmark ({result['when']})", "",
             f"Machine: {result['machine']['platform']}, {result['machine']['cpus']} CPUs. "
             f"Command: `{result['command']}`. Held-out test split: {result['split_sizes']['test']} utterances "
             "(families never seen in training).", "",
             "| model | macro-F1 | accuracy | compound EM | OOS->intent | p50 ms | p95 ms | size MB | peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, f1, ms, _, mb in SEED_TABLE:
        lines.append(f"| {name} | {f1:.2f} | - | - | - | {ms:.0f} | - | {mb:.0f} | - |")
    for r in result["rows"]:
        lat = r.get("latency_ms") or {}
        lines.append(f"| {r['model']} | {f(r['macro_f1'])} | {f(r['accuracy'])} | {f(r['compound_exact_match'])} | "
                     f"{f(r['oos_false_positive_rate'])} | {f(lat.get('p50'), '{:.3f}')} | {f(lat.get('p95'), '{:.3f}')} | "
                     f"{f(r.get('size_mb'), '{:.2f}')} | {f(lat.get('peak_rss_mb'), '{:.0f}')} |")
    lines += ["", "Macro-F1 per dialect:", "", "| model | " + " | ".join(sorted(result["rows"][0]["by_dialect"])) + " |",
              "|---|" + "---|" * len(result["rows"][0]["by_dialect"])]
    for r in result["rows"]:
        lines.append(f"| {r['model']} | " + " | ".join(f"{v['macro_f1']:.4f} (n={v['n']})" for _, v in sorted(r["by_dialect"].items())) + " |")
    m = result["margins"]
    lines += ["", f"INT8 student minus TF-IDF+SVM baseline (macro-F1): {m['int8_minus_svm_macro_f1']:+.4f}",
              f"INT8 student minus BERT teacher (macro-F1): {f(m['int8_minus_teacher_macro_f1'], '{:+.4f}')}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
