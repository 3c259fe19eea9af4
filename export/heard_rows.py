"""Train-only rows as the built-in ASR hears them: noisy-channel copies for the intent model.

On the phone the intent model reads the ASR's transcripts, not what was said, and the Cantonese ASR
mishears more (benchmarks/results/dialects.md). The corpus's own training sentences cannot teach
that: the built-in ASR trained on them and hears them almost perfectly. The train-only rows
(export/data/train_extra) were written after it was trained, so it hears them as it hears a caller.

Each row is spoken by the built-in TTS with *training* voice settings over a phone line
(export/asr/voices.py: never the held-out voices the benchmarks speak with), heard by the built-in
ASR, and kept when the transcript differs from the text, with the row's labels and dialect and its
family suffixed "-heard". The output is itself a train-only file, for a second `--train-extra`:

    python -m export.heard_rows --rows export/data/train_extra --out runs/heard/heard.csv
    salesbot export intent --train-extra export/data/train_extra --train-extra runs/heard --out runs/intent-h

Measured (benchmarks/results/heard_rows.md): it bought little with the built-in ASR, whose
transcripts of these rows are 93% right (dialect gap through the ASR 0.090 -> 0.086, out-of-scope
false positives 0.127 -> 0.151), so the shipped bundle is built without it. A real ASR that
mishears more, or a box's own recorded calls, is where it may pay.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

_LOGGER = logging.getLogger(__name__)

FAMILY_SUFFIX = "-heard"
NEGATIONS = frozenset("不唔没冇莫别未无勿非")
"""A transcript that gains or loses one of these (方便啊 heard as 唔方便啊) says the opposite of its label:
no lesson for the model, so it is left out."""


def phone_ear(seed: int = 4321) -> Callable[[str, str], str]:
    """hear(text, dialect) -> transcript: the built-in TTS with training voice settings over a phone line,
    heard by the built-in ASR."""
    from edge import asr
    from edge.tts.espeak import speak
    from export.asr.augment import apply
    from export.asr.texts import LANG_OF_DIALECT
    from export.asr.voices import train_line, train_settings

    recognizer = asr.open()
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)

    def hear(text: str, dialect: str) -> str:
        lang = LANG_OF_DIALECT.get(dialect, "cmn")
        line = dataclasses.replace(train_line(rng), phone=True)  # calls come over the phone
        pcm = apply(speak(text, train_settings(lang, rng)), line, noise)
        return "".join(r.text for r in asr.transcribe(recognizer, pcm))

    return hear


def heard_rows(rows: Sequence, hear: Callable[[str, str], str]) -> tuple[list[tuple], dict]:
    """(transcript, labels, dialect, family) for each row ``hear`` gets wrong, and counts. A transcript
    equal to a row, or to one already kept, is not a new row; nor is one whose negations differ (NEGATIONS)."""
    from edge.asr.text import cer
    from export.corpus import same_text_key

    out, transcripts = [], []
    seen = {same_text_key(row.text) for row in rows}
    for row in rows:
        heard = hear(row.text, row.dialect)
        transcripts.append(heard)
        flips = _negations(heard) != _negations(row.text)
        if heard.strip() and not flips and same_text_key(heard) not in seen:
            seen.add(same_text_key(heard))
            out.append((heard, row.labels, row.dialect, row.family + FAMILY_SUFFIX))
    return out, {"rows": len(rows), "misheard": len(out), "cer": round(cer([r.text for r in rows], transcripts), 4)}


def _negations(text: str) -> list[str]:
    return sorted(ch for ch in text if ch in NEGATIONS)


def main(argv: Sequence[str] | None = None) -> None:
    from edge.nlu.labelled import read_corpus

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", nargs="+", required=True, help="train-only CSV files or folders")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=4321)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    rows = [r for r in read_corpus(args.rows) if not r.family.endswith(FAMILY_SUFFIX)]
    out, counts = heard_rows(rows, phone_ear(args.seed))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["transcript", "intent_label", "dialect", "family"])
        for text, labels, dialect, family in out:
            writer.writerow([text, "|".join(labels), dialect, family])
    _LOGGER.info("%s: %d of %d rows misheard (CER %.1f%%) in %.0f s", args.out, counts["misheard"], counts["rows"],
                 100 * counts["cer"], time.perf_counter() - started)


if __name__ == "__main__":
    main()
