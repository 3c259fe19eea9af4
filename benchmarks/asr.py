"""ASR benchmark: held-out CER (Mandarin, Cantonese; clean, phone line) and real-time factor per backend.

Scores every recognizer given (default: the built-in bundle) on the held-out
set of the built-in model's export (texts and voices never trained on),
through the runtime's own interface (`asr.open`, VAD, decode, rescoring),
one stream on one thread. Prints a table; writes JSON and Markdown under
benchmarks/results/. Rescoring is scored twice: with each utterance's
language given (``[asr] language = "cmn"/"yue"``, or a call whose earlier
turns showed it) and guessed from the utterance's own text (the first turn
of an ``auto`` call). A third row cuts each utterance as a call does: a
second of its own line before and after, then the call loop's own VAD stage
(energy gate, silero, endpointer, pre-roll) and batched decoding of the turns
it cut (``decode_segments``), language given.

A bundle with per-language decoding graphs (export/asr/graph.py) is scored
twice: with them (the language given picks the graph; guessed, the greedy
text's language picks the graph of a second search) and with the greedy
search alone.

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

import asyncio  # noqa: E402

import numpy as np  # noqa: E402

from edge import asr  # noqa: E402
from edge.asr.base import decode_segments  # noqa: E402
from edge.asr.text import edit_distance, normalize  # noqa: E402
from edge.audio.vad import EnergyGate, SileroPool, VoiceDetector  # noqa: E402
from edge.calls.events import AudioIn, Utterance  # noqa: E402
from edge.calls.listen import VadStage  # noqa: E402
from edge.calls.pipeline import Pipeline, Stage  # noqa: E402
from edge.config import DEFAULT_ASR_DIR, AsrConfig, CallConfig  # noqa: E402
from export.asr.heldout import Sample, decoder_rtf, render, score  # noqa: E402

HELDOUT = ROOT / "export" / "asr" / "data" / "heldout.json"


class _Turns(Stage):
    name = "turns"

    def __init__(self) -> None:
        super().__init__()
        self.cut: list[np.ndarray] = []

    async def process(self, event) -> None:
        if isinstance(event, Utterance):
            self.cut.append(event.pcm)


async def _cut_as_a_call(audio: np.ndarray, pool: SileroPool, config: CallConfig) -> list[np.ndarray]:
    """The caller turns the call loop's VAD stage cuts from ``audio``, 20 ms frames pushed in order."""
    vad = VadStage(VoiceDetector(pool, EnergyGate(config.energy_gate_dbfs)), config)
    turns = _Turns()
    pipeline = Pipeline([vad, turns])
    pipeline.start()
    for index in range(len(audio) // 320):
        await pipeline.push(AudioIn(audio[index * 320:(index + 1) * 320], index * 0.02))
    await pipeline.idle()
    await pipeline.stop()
    return turns.cut


def call_loop_cer(recognizer, samples: list[Sample], config: CallConfig = CallConfig()) -> dict:
    """CER per (language, condition) of each sample heard as one caller turn of a call: a second of its
    own line (its first 200 ms, repeated) before and after it, cut by the call loop's VAD stage and
    decoded like a call's finished turns, the language given. ``turns`` counts the turns cut; one per
    sample is right."""
    pool, counts = SileroPool(config.vad_threshold), {}
    for sample in samples:
        line = np.tile(sample.audio[:3200], 5)
        cut = asyncio.run(_cut_as_a_call(np.concatenate([line, sample.audio, line]), pool, config))
        heard = "".join(r.text for r in decode_segments(recognizer, cut, [sample.lang] * len(cut))) if cut else ""
        ref = normalize(sample.text)
        for key in (f"{sample.lang}/{sample.condition}", "all"):
            entry = counts.setdefault(key, {"edits": 0, "chars": 0, "sentences": 0, "turns": 0})
            entry["edits"] += edit_distance(ref, normalize(heard))
            entry["chars"] += len(ref)
            entry["sentences"] += 1
            entry["turns"] += len(cut)
    return {key: {"cer": round(e["edits"] / max(1, e["chars"]), 4), "sentences": e["sentences"],
                  "turns": e["turns"]} for key, e in counts.items()}


def _table(rows: list[dict]) -> str:
    lines = ["| model | rescoring | cmn clean | cmn phone | yue clean | yue phone | all | RTF (1 thread) | "
             "decoder RTF |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        cer = row["cer"]
        decoder = "-" if row["decoder_rtf"] is None else f"{row['decoder_rtf']:.4f}"

        def cell(key: str, field: str) -> str:
            return f"{cer[key][field] * 100:.1f}%" if key in cer else "-"

        for field, label in (("cer_no_rescoring", "off"), ("cer", "on, language given"),
                             ("cer_language_guessed", "on, language guessed per utterance"),
                             ("cer_call_loop", "on, language given, cut as a call's turns")):
            if field != "cer_no_rescoring" and not row["rescoring"] or field not in cer.get("all", {}):
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
    parser.add_argument("--no-call-loop", action="store_true", help="Skip the row cut as a call's turns.")
    args = parser.parse_args(argv)
    texts = json.loads(args.split.read_text(encoding="utf-8"))["test"]
    samples = render(texts, args.limit)
    rows = []
    for model in args.model or [DEFAULT_ASR_DIR]:
        recognizer = asr.open(AsrConfig(model=model, threads=1))
        result = score(recognizer, samples, language_given=True)
        # sherpa-onnx alone (features + model + greedy CTC), the "RTF through the runtime's decoder"
        result["decoder_rtf"] = decoder_rtf(model, samples) if recognizer.info.get("backend") == "sherpa-onnx" \
            and not recognizer.info.get("streaming") else None
        if recognizer.info.get("rescoring"):
            guessed = score(recognizer, samples, language_given=False)["cer"]
            for key, entry in result["cer"].items():
                entry["cer_language_guessed"] = guessed[key]["cer"]
            if not args.no_call_loop:
                in_calls = call_loop_cer(recognizer, samples)
                for key, entry in result["cer"].items():
                    entry["cer_call_loop"], entry["call_loop_turns"] = in_calls[key]["cer"], in_calls[key]["turns"]
        name = model.name if model != DEFAULT_ASR_DIR else "built-in"
        graphs = bool(recognizer.info.get("language_graphs"))
        if graphs:
            result["decoder_rtf"] = decoder_rtf(model, samples, language_graphs=True)
        rows.append({"name": f"{name}, language graphs" if graphs else name, "model": str(model),
                     "info": recognizer.info, "rescoring": recognizer.info.get("rescoring", False), **result})
        if graphs:  # the same model searched greedily only (`[asr] language_graphs = false`)
            greedy = asr.open(AsrConfig(model=model, threads=1, language_graphs=False))
            rows.append({"name": f"{name}, greedy search", "model": str(model), "info": greedy.info,
                         "rescoring": greedy.info.get("rescoring", False),
                         **score(greedy, samples, language_given=True),
                         "decoder_rtf": decoder_rtf(model, samples)})
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
