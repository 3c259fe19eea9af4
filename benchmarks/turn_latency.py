"""Turn latency and whole-call success of simulated voice calls (Mandarin and Cantonese callers).

Each scenario under benchmarks/data/scenarios/ is a caller file with its
expected result (`# expect: outcome=... grade=... task=... due=... dnc=...`).
A simulated callee speaks it (built-in TTS, its own voice, a phone line);
the call loop hears, decides and answers through the full pipeline
(VAD/endpointing -> ASR -> intents + mood -> dialogue -> TTS -> line).

Turn latency is measured on each answered caller turn as the time from the
endpoint (the moment the endpointer decides the caller has finished) to the
reply's first audio handed to the line, split by stage: ASR final, NLU done
(intents, prosody, mood), reply chosen, first audio (TTS of the first
sentence or a prompt-cache read). What a caller hears as the gap adds the
trailing silence the endpointer waits (500 ms by default, 900 ms where a
time or number is asked); that is reported apart. Turns whose reply queued
behind a line still playing, and no-input turns, are left out of the turn
figures (listed in the JSON).

A call succeeds when outcome, grade and the follow-up (task kind and due
time, DNC flag) all match the scenario's expectation.

    python benchmarks/turn_latency.py                    # every scenario, twice (different line noise)
    python benchmarks/turn_latency.py --repeat 1 --asr oracle --intents keywords

Models: `--asr auto` uses the built-in ASR when its bundle is installed,
else the oracle (the bot is told what the callee said); `--intents auto`
the built-in intent bundle when installed, else the keyword classifier of
tests/fakes.py. The report says which ran. Writes
benchmarks/results/turn_latency.json and turn_latency.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the service does (cli.main)
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, percentile, write  # noqa: E402
from edge.calls.simcallee import read_callee_file  # noqa: E402
from edge.calls.simulate import simulate  # noqa: E402
from edge.config import DEFAULT_ASR_DIR, Config, TtsConfig  # noqa: E402

SCENARIOS = ROOT / "benchmarks" / "data" / "scenarios"
STAGES = (("asr", None, "asr_final"), ("nlu", "asr_final", "nlu_done"), ("dialogue", "nlu_done", "reply_chosen"),
          ("tts + out", "reply_chosen", "first_audio"))


def build_runtime(asr: str, intents: str, cache_dir: Path, bundle: str | None = None):
    from edge.calls.oracle import OracleRecognizer
    from edge.calls.runtime import Runtime

    config = Config(tts=TtsConfig(cache_dir=cache_dir))
    if bundle:
        config.nlu.intent_bundle = Path(bundle)
    config.call.offload = False  # the simulator runs model work inline: deterministic, and timed as such
    if asr == "auto":
        asr = "builtin" if (DEFAULT_ASR_DIR / "manifest.json").is_file() else "oracle"
    if intents == "auto":
        intents = "bundle" if (config.nlu.intent_bundle / "manifest.json").is_file() else "keywords"
    recognizer = OracleRecognizer() if asr == "oracle" else None
    if asr not in ("oracle", "builtin"):
        config.asr.model = Path(asr)
    classifier = None
    if intents == "keywords":
        from tests.fakes import KeywordClassifier

        classifier = KeywordClassifier()
    started = time.perf_counter()
    runtime = Runtime.load(config, recognizer=recognizer, classifier=classifier)
    load_s = time.perf_counter() - started
    return runtime, asr, intents, load_s


def edits(reference: str, hypothesis: str) -> tuple[int, int]:
    """(character edits, reference characters), punctuation and spaces ignored."""
    ref = [c for c in reference if c.isalnum()]
    hyp = [c for c in hypothesis if c.isalnum()]
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1], len(ref)


def expected(script) -> dict[str, str]:
    return dict(item.split("=", 1) for item in script.directives.get("expect", "").split())


def check(report: dict, want: dict[str, str]) -> list[str]:
    """What differs from the expectation (empty: the call succeeded)."""
    got = {"outcome": report["outcome"], "grade": report["grade"], "dnc": "yes" if report["dnc"] else "no"}
    tasks = report["tasks"]
    got["task"] = tasks[0]["kind"] if tasks else "none"
    got["due"] = tasks[0]["due"] if tasks else "none"
    misses = [f"{key}: {got[key]} (expected {value})" for key, value in want.items() if got.get(key) != value]
    if "task" not in want and tasks:
        misses.append(f"task: {got['task']} (expected none)")
    if "dnc" not in want and report["dnc"]:
        misses.append("dnc: yes (expected no)")
    return misses


def run(args) -> dict:
    files = sorted(Path(args.scenarios).glob("*.txt"))
    if args.only:
        files = [f for f in files if any(key in f.stem for key in args.only)]
    with tempfile.TemporaryDirectory() as tmp:
        base, asr, intents, load_s = build_runtime(args.asr, args.intents, Path(args.cache or tmp), args.bundle)
        calls, turns = [], []
        for repeat in range(args.repeat):
            for path in files:
                script = read_callee_file(path)
                runtime = dataclasses.replace(base, _batchers={})
                if asr == "oracle":
                    runtime = dataclasses.replace(runtime, recognizer=type(base.recognizer)())
                started = time.perf_counter()
                call = asyncio.run(simulate(runtime, script, seed=repeat, max_duration_s=600))
                wall = time.perf_counter() - started
                report = call.report
                misses = check(report, expected(script))
                language = "Cantonese" if script.directives.get("voice", "").startswith("yue") else "Mandarin"
                said = "".join(x.text for x in call.callee_log if x.kind in ("say", "interrupt"))
                heard = "".join((t.get("speech") or {}).get("heard") or "" for t in report["turns"])
                errors, chars = edits(said, heard)
                calls.append({"scenario": path.stem, "repeat": repeat, "language": language, "ok": not misses,
                              "misses": misses, "outcome": report["outcome"], "grade": report["grade"],
                              "tasks": report["tasks"], "call_s": report["voice"]["duration_s"],
                              "wall_s": round(wall, 2), "turns": len(report["turns"]),
                              "asr_edits": errors, "asr_chars": chars})
                for row in report["voice"]["latency_ms"]:
                    turns.append({"scenario": path.stem, "repeat": repeat, **row})
                mark = "ok " if not misses else "MISS"
                print(f"{mark} {path.stem:28} {report['outcome']:15} {report['grade']}  "
                      f"{report['voice']['duration_s']:6.1f} s call, {wall:5.2f} s wall  {'; '.join(misses)}",
                      flush=True)
        base.close()
    return summarize(calls, turns, asr, intents, load_s, args)


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(percentile(values, 0.5), 1), "p95": round(percentile(values, 0.95), 1),
            "min": round(min(values), 1), "max": round(max(values), 1)}


def summarize(calls, turns, asr, intents, load_s, args) -> dict:
    answered = [t for t in turns if "first_audio" in t and "asr_final" in t and "queued_behind_s" not in t]
    stages = {}
    for name, start, end in STAGES:
        stages[name] = stats([t[end] - (t[start] if start else 0.0) for t in answered])
    stages["total (endpoint -> first audio)"] = stats([t["first_audio"] for t in answered])
    heard_gap = stats([t["first_audio"] + t["endpoint_silence"] for t in answered])
    by_language = {}
    for language in ("Mandarin", "Cantonese"):
        subset = [c for c in calls if c["language"] == language]
        if subset:
            by_language[language] = {"calls": len(subset), "ok": sum(c["ok"] for c in subset),
                                     "asr_cer": round(sum(c["asr_edits"] for c in subset)
                                                      / max(1, sum(c["asr_chars"] for c in subset)), 3)}
    if intents == "bundle":
        import json

        from edge.config import DEFAULT_INTENT_DIR

        root = Path(args.bundle) if args.bundle else DEFAULT_INTENT_DIR
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        intents = f"bundle {root} (built {manifest.get('created', '?')})"
    return {"machine": machine(), "asr": asr, "intents": intents, "runtime_load_s": round(load_s, 2),
            "repeat": args.repeat, "calls": calls, "success": {"calls": len(calls), "ok": sum(c["ok"] for c in calls),
                                                             "by_language": by_language},
            "turn_latency_ms": stages, "heard_gap_ms": heard_gap,
            "no_input_turns": [t for t in turns if "no_input_at_s" in t],
            "queued_turns": [t for t in turns if "queued_behind_s" in t], "turns": answered}


def markdown(data: dict) -> str:
    m = data["machine"]
    success = data["success"]
    rate = 100.0 * success["ok"] / max(1, success["calls"])
    lines = ["# Turn latency and simulated-call success", "",
             f"`{m['command']}` on {m['cpu']} ({m['cores']} cores, Python {m['python']}); "
             f"ASR: **{data['asr']}**, intents: **{data['intents']}**, model work inline (one process, the "
             f"simulator without real-time pacing), {data['repeat']} run(s) of each scenario.", "",
             "## Turn latency, one call at a time", "",
             "ms from the endpoint (the endpointer decided the caller had finished) to the reply's first audio "
             f"on the line, over {data['turn_latency_ms']['total (endpoint -> first audio)'].get('n', 0)} "
             "answered turns:", "",
             "| stage | p50 | p95 | min | max |", "|---|---|---|---|---|"]
    for name, row in data["turn_latency_ms"].items():
        if row.get("n"):
            lines.append(f"| {name} | {row['p50']} | {row['p95']} | {row['min']} | {row['max']} |")
    gap = data["heard_gap_ms"]
    if gap.get("n"):
        lines += ["", f"What the caller hears as the gap (trailing silence waited + the above): p50 {gap['p50']} ms, "
                      f"p95 {gap['p95']} ms (500 ms silence by default, 900 ms where a time or number is asked, "
                      "300 ms for speech over the bot)."]
    lines += ["", "## Whole calls", "",
              f"Success (outcome, grade and follow-up as expected): **{success['ok']} / {success['calls']} "
              f"({rate:.1f} %)**; " + ", ".join(f"{k} {v['ok']}/{v['calls']}"
                                               for k, v in success["by_language"].items()) + ". "
              "Character error rate of what the bot heard against what the callee said: " +
              ", ".join(f"{k} {v['asr_cer']:.1%}" for k, v in success["by_language"].items()) + ".", "",
              "| scenario | language | outcome | grade | ok | call s | wall s |", "|---|---|---|---|---|---|---|"]
    for c in data["calls"]:
        lines.append(f"| {c['scenario']}#{c['repeat']} | {c['language']} | {c['outcome']} | {c['grade']} | "
                     f"{'yes' if c['ok'] else 'NO: ' + '; '.join(c['misses'])} | {c['call_s']} | {c['wall_s']} |")
    if data["asr"] == "oracle":
        lines += ["", "The oracle ASR hears exactly what the callee said: these figures measure the call loop "
                      "(VAD, endpointing, barge-in, dialogue, TTS, timing), not recognition errors."]
    if data["intents"] == "keywords":
        lines += ["", "Intents came from the keyword classifier (tests/fakes.py), a stand-in while the built-in "
                      "intent bundle is absent."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=str(SCENARIOS), help="folder of scenario caller files")
    parser.add_argument("--only", nargs="*", help="run scenarios whose name contains one of these")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each scenario (different line noise)")
    parser.add_argument("--asr", default="auto", help="auto | oracle | builtin | a model directory")
    parser.add_argument("--intents", default="auto", choices=("auto", "bundle", "keywords"))
    parser.add_argument("--bundle", help="intent bundle directory (default: the built-in one)")
    parser.add_argument("--cache", help="prompt cache directory (default: a fresh temporary one)")
    parser.add_argument("--name", default="turn_latency", help="results file name (benchmarks/results/NAME.json/.md)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    data = run(args)
    text = markdown(data)
    print("\n" + text)
    if not args.no_write:
        write(args.name, data, text)


if __name__ == "__main__":
    main()
