"""What the pinyin channel buys: robustness to ASR homophones, and the dialect gap.

Builds two bundles on the same split and seed, with and without the toneless
pinyin channel, and scores both (INT8, onnxruntime, through the runtime) on:
- the clean held-out test split;
- the same split with ASR-like homophone errors injected: 1-2 characters per
  utterance swapped for another character with the same toneless pinyin
  (drawn from the characters the model knows, e.g. 在->再, 价->加);
- the built-in ASR's actual transcripts of the same split: each test utterance
  spoken by the built-in TTS with held-out voice settings (export/asr/voices.py
  test grid; Cantonese rows by `yue`, the others by `cmn`) over the phone-line
  augmentation, then heard by the shipped ASR bundle (rescoring on). The ASR
  holds out exactly these families (export/asr/build.py held_out_groups), so
  it never heard these sentences; transcripts are cached per ASR bundle;
- per dialect (Mandarin, Cantonese, Sichuanese).

The shipped intent bundle (edge/models/default/intent) is scored as a third row.

    python benchmarks/robustness.py [--reuse]     (2 student-only exports, ~10 min each on 2 cores)

Both variants are built with the same settings (by default without the BERT
teacher, to keep two exports affordable), so the difference is the channel.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def homophone_table(chars: list[str]) -> dict[str, list[str]]:
    from edge.nlu.text import pinyin_of

    by_sound: dict[str, list[str]] = {}
    for ch in chars:
        if "\u4e00" <= ch <= "\u9fff":
            by_sound.setdefault(pinyin_of(ch)[0], []).append(ch)
    return {ch: [o for o in group if o != ch] for group in by_sound.values() for ch in group if len(group) > 1}


def inject(text: str, table: dict[str, list[str]], rng: random.Random) -> str:
    positions = [i for i, ch in enumerate(text) if ch in table]
    for i in rng.sample(positions, min(len(positions), rng.choice((1, 2)))):
        text = text[:i] + rng.choice(table[text[i]]) + text[i + 1:]
    return text


def asr_transcripts(examples, cache: Path) -> tuple[list[str], float]:
    """The shipped ASR's transcripts of ``examples`` (phone line, held-out voices) and their CER."""
    import numpy as np

    from edge import asr
    from edge.asr.text import edit_distance, normalize
    from edge.bundle import sha256_file
    from edge.tts.espeak import speak
    from export.asr.augment import apply
    from export.asr.texts import LANG_OF_DIALECT
    from export.asr.voices import PHONE_TEST, test_settings

    recognizer = asr.open()
    key = sha256_file(ROOT / "edge" / "models" / "default" / "asr" / "manifest.json")[:16]
    stored = json.loads(cache.read_text(encoding="utf-8")) if cache.exists() else {}
    if stored.get("asr") != key or len(stored.get("texts", {})) < len({e.text for e in examples}):
        texts = {}
        for index, example in enumerate(examples):
            if example.text in texts:
                continue
            lang = LANG_OF_DIALECT.get(example.dialect, "cmn")
            pcm = apply(speak(example.text, test_settings(lang, index)), PHONE_TEST, np.random.default_rng(index))
            texts[example.text] = "".join(r.text for r in asr.transcribe(recognizer, pcm))
        stored = {"asr": key, "texts": texts}
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(stored, ensure_ascii=False, indent=0), encoding="utf-8")
    heard = [stored["texts"][e.text] for e in examples]
    edits = sum(edit_distance(normalize(e.text), normalize(h)) for e, h in zip(examples, heard))
    return heard, edits / max(1, sum(len(normalize(e.text)) for e in examples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(ROOT / "export" / "data" / "intents"))
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "robustness")
    parser.add_argument("--reuse", action="store_true", help="reuse bundles already in --work")
    parser.add_argument("--teacher-epochs", type=int, default=0,
                        help="0 (default) distils from the n-gram teacher only, to afford two exports")
    parser.add_argument("--student-epochs", type=int, default=12)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    from edge.nlu import IntentModel
    from edge.nlu.labelled import Example
    from export.corpus import load_split
    from export.evaluate import full_report
    from export.pipeline import ExportOptions, run

    variants = {"pinyin": True, "no_pinyin": False}
    for name, pinyin in variants.items():
        out = args.work / name
        if not (args.reuse and (out / "manifest.json").exists()):
            run(ExportOptions(corpus=[args.corpus], out=str(out), pinyin=pinyin, slim=True, progress=False,
                              teacher_epochs=args.teacher_epochs, student_epochs=args.student_epochs))
    split, _ = load_split([args.corpus])
    rng = random.Random(99)
    chars = sorted({ch for e in split.train for ch in e.text})
    table = homophone_table(chars)
    noisy = [replace(e, text=inject(e.text, table, rng)) for e in split.test]
    changed = sum(a.text != b.text for a, b in zip(split.test, noisy))
    heard, asr_cer = asr_transcripts(split.test, args.work / "asr_transcripts.json")
    through_asr = [replace(e, text=h) for e, h in zip(split.test, heard)]

    rows = {}
    bundles = {name: args.work / name for name in variants}
    bundles["shipped"] = ROOT / "edge" / "models" / "default" / "intent"
    for name, folder in bundles.items():
        model = IntentModel.load(folder)
        other = model.other_label
        row = {}
        for test_name, examples in (("clean", split.test), ("homophones", noisy), ("asr", through_asr)):
            results = []
            for start in range(0, len(examples), 64):
                results.extend(model.predict([e.text for e in examples[start:start + 64]]))
            row[test_name] = full_report(examples, [r.labels for r in results], other)
        rows[name] = row

    lines = ["# Robustness: pinyin channel on/off", "",
             f"Held-out test split: {len(split.test)} utterances; homophone copy: {changed} of them changed "
             f"(1-2 characters swapped for a same-pinyin character; {len(table)} characters have a homophone "
             "in the vocabulary). ASR transcripts: the built-in ASR hearing the test split spoken by the built-in "
             f"TTS (held-out voices, phone line); their CER {asr_cer:.1%}.", "",
             "| variant | clean macro-F1 | homophones macro-F1 | drop | ASR transcripts macro-F1 | drop | Mandarin | "
             "Cantonese | Sichuanese | dialect gap |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        clean, noisy_r, asr_r = row["clean"], row["homophones"], row["asr"]
        d = {k: v["macro_f1"] for k, v in clean["by_dialect"].items()}
        lines.append(f"| {name} | {clean['macro_f1']:.4f} | {noisy_r['macro_f1']:.4f} | "
                     f"{clean['macro_f1'] - noisy_r['macro_f1']:+.4f} | {asr_r['macro_f1']:.4f} | "
                     f"{clean['macro_f1'] - asr_r['macro_f1']:+.4f} | {d.get('mandarin', 0):.4f} | "
                     f"{d.get('cantonese', 0):.4f} | {d.get('sichuanese', 0):.4f} | {max(d.values()) - min(d.values()):.4f} |")
    lines += ["", "Macro-F1 on the ASR transcripts per dialect:", "",
              "| variant | Mandarin | Cantonese | Sichuanese |", "|---|---|---|---|"]
    for name, row in rows.items():
        d = {k: v["macro_f1"] for k, v in row["asr"]["by_dialect"].items()}
        lines.append(f"| {name} | {d.get('mandarin', 0):.4f} | {d.get('cantonese', 0):.4f} | "
                     f"{d.get('sichuanese', 0):.4f} |")
    markdown = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "robustness.json").write_text(json.dumps({"rows": rows, "changed": changed, "asr_cer": asr_cer}, ensure_ascii=False,
                                                         indent=1) + "\n", encoding="utf-8")
    (args.out / "robustness.md").write_text(markdown, encoding="utf-8")
    print(markdown)


if __name__ == "__main__":
    main()
