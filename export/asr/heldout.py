"""The held-out test: texts never trained on, spoken with settings never trained on, clean and phone line.

No torch here: the benchmark (benchmarks/asr.py) and the export step both
use it to score any recognizer through the runtime's own interface.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edge.asr.base import Recognizer, transcribe
from edge.asr.text import edit_distance, normalize
from edge.tts.espeak import speak
from export.asr.augment import apply
from export.asr.voices import CLEAN_TEST, PHONE_TEST, test_settings

CONDITIONS = {"clean": CLEAN_TEST, "phone": PHONE_TEST}


@dataclass(frozen=True)
class Sample:
    text: str
    lang: str
    condition: str
    audio: np.ndarray


def load_texts(split_json: Path) -> list[dict]:
    return json.loads(split_json.read_text(encoding="utf-8"))["test"]


def render(texts: list[dict], limit_per_lang: int | None = None) -> list[Sample]:
    """Speak each held-out text once per condition with the held-out voice grid."""
    out = []
    per_lang: dict[str, int] = {}
    for index, item in enumerate(texts):
        lang = item["lang"]
        if limit_per_lang is not None and per_lang.get(lang, 0) >= limit_per_lang:
            continue
        per_lang[lang] = per_lang.get(lang, 0) + 1
        pcm = speak(item["text"], test_settings(lang, index))
        for condition, line in CONDITIONS.items():
            audio = apply(pcm, line, np.random.default_rng(index))
            out.append(Sample(item["text"], lang, condition, audio))
    return out


Rescorer = Callable[..., str]
"""``rescorer(text, language=None) -> text`` (edge.asr.rescore.Rescorer)."""


def score(recognizer: Recognizer, samples: list[Sample], rescorer: Rescorer | None = None,
          language_given: bool = True) -> dict:
    """CER per (lang, condition) and overall, with and without rescoring, and the path's RTF.

    Rescoring comes from the recognizer itself (results carry ``raw_text``) or from ``rescorer``,
    applied to each final result (its time counts in the RTF).

    Args:
        language_given: tell the rescoring each sample's language (as ``[asr] language`` does); False
            leaves it to guess from each utterance's text alone. With ``rescorer``, both are reported
            (``cer`` as asked, ``cer_language_guessed``).
    """
    groups: dict[str, dict] = {}
    audio_s = decode_s = 0.0
    errors = []
    for sample in samples:
        language = sample.lang if language_given else None
        start = time.perf_counter()
        finals = transcribe(recognizer, sample.audio, language=language)
        raw = "".join(r.raw_text if r.raw_text is not None else r.text for r in finals)
        hyp = "".join(rescorer(r.text, language) if rescorer else r.text for r in finals)
        decode_s += time.perf_counter() - start
        guessed = "".join(rescorer(r.text) for r in finals) if rescorer else hyp
        audio_s += len(sample.audio) / 16000
        ref = normalize(sample.text)
        for key in (f"{sample.lang}/{sample.condition}", "all"):
            g = groups.setdefault(key, {"chars": 0, "edits": 0, "edits_raw": 0, "edits_guessed": 0, "n": 0})
            g["chars"] += len(ref)
            g["edits"] += edit_distance(ref, normalize(hyp))
            g["edits_guessed"] += edit_distance(ref, normalize(guessed))
            g["edits_raw"] += edit_distance(ref, normalize(raw))
            g["n"] += 1
        if normalize(hyp) != ref and len(errors) < 40:
            errors.append({"ref": sample.text, "hyp": hyp, "raw": raw, "lang": sample.lang,
                           "condition": sample.condition})
    table = {key: {"sentences": g["n"], "chars": g["chars"], "cer": round(g["edits"] / max(1, g["chars"]), 4),
                   "cer_no_rescoring": round(g["edits_raw"] / max(1, g["chars"]), 4),
                   **({"cer_language_guessed": round(g["edits_guessed"] / max(1, g["chars"]), 4)} if rescorer else {})}
             for key, g in sorted(groups.items())}
    return {"cer": table, "rtf": round(decode_s / max(audio_s, 1e-9), 5), "audio_s": round(audio_s, 1),
            "examples_of_errors": errors}


def raw_hypotheses(recognizer: Recognizer, samples: list[Sample]) -> list[list[str]]:
    """Final texts per sample (no rescoring), for tuning a rescorer without decoding again."""
    return [[r.text for r in transcribe(recognizer, sample.audio)] for sample in samples]


def cer_of(samples: list[Sample], hypotheses: list[list[str]], rescorer: Rescorer | None,
           language_given: bool = True) -> float:
    edits = chars = 0
    for sample, finals in zip(samples, hypotheses):
        language = sample.lang if language_given else None
        hyp = "".join(rescorer(t, language) if rescorer else t for t in finals)
        ref = normalize(sample.text)
        edits += edit_distance(ref, normalize(hyp))
        chars += len(ref)
    return round(edits / max(1, chars), 4)


def decoder_rtf(model_dir: Path, samples: list[Sample], threads: int = 1, language_graphs: bool = False,
                limit: int = 200, rounds: int = 3) -> float:
    """Real-time factor of the sherpa-onnx decoder alone (features + model + CTC search), one stream: greedy,
    or under each sample's language graph where the bundle has one.

    Up to ``limit`` samples taken in turn from each language and condition (a Cantonese graph is timed too),
    decoded ``rounds`` times after one warm-up each; the median round is returned, so one round slowed by
    other work on the box does not make the figure."""
    from edge.asr.modeldir import inspect
    from edge.asr.sherpa_offline import build
    from edge.audio.convert import pcm16_to_float

    model = inspect(model_dir)
    greedy = build(model, threads)
    graphs = model.graphs if language_graphs else {}
    searches = {language: build(model, threads, path) for language, path in graphs.items()}
    chosen = [(searches.get(s.lang, greedy), pcm16_to_float(s.audio)) for s in _in_turn(samples, limit)]
    if not chosen:
        raise ValueError("decoder_rtf needs at least one sample")
    for recognizer in {id(r): r for r, _ in chosen}.values():
        _decode_once(recognizer, chosen[0][1])
    audio_s = sum(len(audio) for _, audio in chosen) / 16000
    per_round = []
    for _ in range(rounds):
        start = time.perf_counter()
        for recognizer, audio in chosen:
            _decode_once(recognizer, audio)
        per_round.append((time.perf_counter() - start) / max(audio_s, 1e-9))
    return round(statistics.median(per_round), 5)


def _decode_once(recognizer, audio) -> None:
    stream = recognizer.create_stream()
    stream.accept_waveform(16000, audio)
    recognizer.decode_stream(stream)


def _in_turn(samples: list[Sample], limit: int) -> list[Sample]:
    """Up to ``limit`` samples, one from each (language, condition) group in turn."""
    groups: dict[tuple[str, str], list[Sample]] = {}
    for sample in samples:
        groups.setdefault((sample.lang, sample.condition), []).append(sample)
    queues = [iter(group) for group in groups.values()]
    out: list[Sample] = []
    while queues and len(out) < limit:
        for queue in list(queues):
            sample = next(queue, None)
            if sample is None:
                queues.remove(queue)
            elif len(out) < limit:
                out.append(sample)
    return out
