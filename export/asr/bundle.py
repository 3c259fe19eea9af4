"""Export the trained CTC model for sherpa-onnx, build the rescoring data, score it, write the bundle.

The bundle (edge/models/default/asr/) holds the INT8 ONNX model in the
layout of sherpa-onnx's ``OfflineRecognizer.from_zipformer_ctc`` (inputs x,
x_lens; outputs log_probs, log_probs_len; no metadata needed), tokens.txt,
the rescoring files (lexicon.tsv, lexicon_yue.tsv, lm.json), and a
manifest.json with the sha256 of every file, the held-out metrics and how it
was built. `update_rescoring` rebuilds only the rescoring of a bundle (its
sound tables and bonus) and re-scores it, without the training work folder.
"""

from __future__ import annotations

import json
import logging
import platform
import random
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from edge.bundle import FORMAT_VERSION, MANIFEST, sha256_file
from export.asr.lexicon import LANGUAGE_LMS, LEXICONS
from export.asr.model import CtcModel, ModelConfig

_LOGGER = logging.getLogger(__name__)
OPSET_VERSION = 17
KEEP_BONUS_GRID = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0)
LANGUAGE_LM_GRID = (0.0, 0.25, 0.5, 0.75, 0.9)
GUESS_MARGIN_GRID = (None, -0.5, 0.0, 0.25, 0.5, 1.0)


def export_onnx(work: Path) -> tuple[Path, Path]:
    record = json.loads((work / "train.json").read_text(encoding="utf-8"))
    model = CtcModel(ModelConfig(**record["model"]))
    model.load_state_dict(torch.load(work / "model.pt", map_location="cpu"))
    model.eval()
    fp32 = work / "model.onnx"
    x = torch.randn(2, 300, 80)
    x_lens = torch.tensor([300, 211], dtype=torch.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x, x_lens), str(fp32), input_names=["x", "x_lens"],
                          output_names=["log_probs", "log_probs_len"], opset_version=OPSET_VERSION, dynamo=False,
                          dynamic_axes={"x": {0: "N", 1: "T"}, "x_lens": {0: "N"}, "log_probs": {0: "N", 1: "T_out"},
                                        "log_probs_len": {0: "N"}})
    _check_against_torch(model, fp32)
    int8 = work / "model.int8.onnx"
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"])
    _LOGGER.info("wrote %s (%.1f MB) and %s (%.1f MB)", fp32, fp32.stat().st_size / 1e6, int8,
                 int8.stat().st_size / 1e6)
    return fp32, int8


def _check_against_torch(model: CtcModel, path: Path) -> None:
    import onnxruntime as ort

    x = torch.randn(1, 157, 80) * 3
    x_lens = torch.tensor([157])
    with torch.no_grad():
        want, _ = model(x, x_lens)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x.numpy(), "x_lens": x_lens.numpy()})[0]
    diff = float(np.abs(got - want.numpy()).max())
    if diff > 1e-3:
        raise RuntimeError(f"ONNX export differs from torch by {diff}")


def read_vocab(bundle: Path) -> list[str]:
    """The characters of a bundle's tokens.txt, in id order, the blank left out (write_tokens' inverse)."""
    lines = (bundle / "tokens.txt").read_text(encoding="utf-8").splitlines()
    return [line.rsplit(maxsplit=1)[0] for line in lines if line.strip() and not line.startswith("<blk>")]


def write_tokens(work: Path) -> Path:
    vocab = json.loads((work / "vocab.json").read_text(encoding="utf-8"))
    path = work / "tokens.txt"
    path.write_text("<blk> 0\n" + "".join(f"{c} {i + 1}\n" for i, c in enumerate(vocab)), encoding="utf-8")
    return path


def _stage(work: Path, name: str, files: dict[str, Path], rescoring: bool) -> Path:
    """A model directory the runtime can open (manifest without metrics), for scoring."""
    folder = work / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    for target, source in files.items():
        shutil.copy(source, folder / target)
    manifest = _manifest(folder, {"model": "model.onnx" if "model.onnx" in files else "model.int8.onnx"},
                         rescoring_settings={"keep_bonus": 3.0} if rescoring else None)
    _write_manifest(folder, manifest)
    return folder


def _file_entries(folder: Path) -> dict:
    """The manifest's "files": sha256 and size of every file in ``folder`` but the manifest."""
    return {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(folder.iterdir()) if p.name != MANIFEST}


def _write_manifest(folder: Path, manifest: dict) -> None:
    (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")


def _manifest(folder: Path, model_file: dict, rescoring_settings: dict | None, extra: dict | None = None) -> dict:
    files = _file_entries(folder)
    manifest = {"kind": "asr", "format_version": FORMAT_VERSION,
                "model": {"backend": "sherpa-onnx", "kind": "zipformer_ctc",
                          "files": {"model": model_file["model"], "tokens": "tokens.txt"},
                          "sample_rate": 16000, "feature": "kaldi fbank, 80 bins (sherpa-onnx defaults)"},
                "files": files}
    if rescoring_settings is not None:
        manifest["rescoring"] = _rescoring_section(folder, rescoring_settings)
    manifest.update(extra or {})
    return manifest


def _open(folder: Path):
    """The runtime's recognizer for a staged folder, without rescoring (applied separately)."""
    from edge.asr.modeldir import inspect
    from edge.asr.sherpa_offline import OfflineVadRecognizer
    from edge.config import AsrConfig

    return OfflineVadRecognizer(inspect(folder), AsrConfig(model=folder, threads=1), None)


def _language_files(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(other languages' sound tables, their own n-grams) present in ``folder``: code -> file name."""
    tables = {voice: name for voice, name in LEXICONS.items() if voice != "cmn" and (folder / name).exists()}
    lms = {code: name for code, name in LANGUAGE_LMS.items() if (folder / name).exists()}
    return tables, lms


def _rescoring_section(folder: Path, settings: dict) -> dict:
    tables, lms = _language_files(folder)
    return {"files": [LEXICONS["cmn"], *tables.values(), "lm.json", *lms.values()], "lexicons": tables, "lms": lms,
            "settings": settings}


def _rescorer(folder: Path, settings: dict):
    from edge.asr.rescore import Rescorer, RescoreSettings

    return Rescorer.load(folder, RescoreSettings(**settings), *_language_files(folder))


def split_tuning(test: list[dict], seed: int, share: float = 1 / 3) -> tuple[list[dict], list[dict]]:
    """Held-out texts -> (tuning, reporting), by group: the rescoring bonus is picked on texts the
    acoustic model never heard (on trained texts it is near-perfect and the pick trusts it too much),
    and the CER is reported on the other groups only."""
    groups = sorted({t["group"] for t in test})
    random.Random(seed).shuffle(groups)
    tuning = set(groups[:max(1, round(len(groups) * share))])
    return [t for t in test if t["group"] in tuning], [t for t in test if t["group"] not in tuning]


def extra_heldout(corpus: Path, seed: int) -> tuple[list[dict], list[dict]]:
    """The evaluation-only texts (export/asr/data/heldout_extra.tsv) -> (tuning, test), half their groups
    each, less any that overlap what the recipe may train on."""
    from export.asr import texts

    kept, dropped = texts.load_extra_heldout(texts.trainable_texts(corpus))
    _LOGGER.info("evaluation-only texts: %d kept, %d dropped (they lie inside a trainable text)", len(kept), dropped)
    return split_tuning([u.__dict__ for u in kept], seed, share=0.5)


def _merged(part: list[dict], extra: list[dict]) -> list[dict]:
    """``part`` plus the texts of ``extra`` whose groups it does not have yet."""
    groups = {t["group"] for t in part}
    return part + [t for t in extra if t["group"] not in groups]


def tune_rescoring(tuning: list[dict], stage_folder: Path, limit: int | None = None) -> dict:
    """Pick the keep bonus and, with it, the weight of each language's own n-gram that together give the
    lowest CER on the tuning texts (never trained on), each text rescored as a call in its language; ties go
    to the larger bonus and the smaller weight (trust the acoustic model and the shared n-gram). Each
    language's weight is scored on that language's texts, for every bonus (a bonus picked first, with no
    language n-gram, missed better pairs); the guess margin (first turns of calls in an unknown language)
    from all texts, each language guessed."""
    from edge.asr.text import normalize
    from export.asr.heldout import cer_of, raw_hypotheses, render

    samples = render(tuning, limit)
    hypotheses = raw_hypotheses(_open(stage_folder), samples)
    own = {code: [i for i, s in enumerate(samples) if s.lang == code] for code in _language_files(stage_folder)[1]}
    own = {code: rows for code, rows in own.items() if rows}
    chars = {code: sum(len(normalize(samples[i].text)) for i in rows) for code, rows in own.items()}
    shared = [i for i, s in enumerate(samples) if s.lang not in own]  # a language with no n-gram of its own
    shared_chars = sum(len(normalize(samples[i].text)) for i in shared)

    def language_cers(bonus: float) -> dict[str, dict[float, float]]:
        return {code: {w: cer_of([samples[i] for i in rows], [hypotheses[i] for i in rows],
                                 _rescorer(stage_folder, {"keep_bonus": bonus, "language_lm_weight": {code: w}}))
                       for w in LANGUAGE_LM_GRID} for code, rows in own.items()}

    def combined(bonus: float, cers: dict[str, dict[float, float]]) -> float:
        errors = sum(min(by.values()) * chars[code] for code, by in cers.items())
        if shared:
            errors += cer_of([samples[i] for i in shared], [hypotheses[i] for i in shared],
                             _rescorer(stage_folder, {"keep_bonus": bonus})) * shared_chars
        return round(errors / max(1, sum(chars.values()) + shared_chars), 4)

    grid = {bonus: language_cers(bonus) for bonus in KEEP_BONUS_GRID}
    by_bonus = {bonus: combined(bonus, cers) for bonus, cers in grid.items()}
    keep = min(by_bonus, key=lambda b: (by_bonus[b], -b))
    by_weight = grid[keep]
    weights = {code: min(by, key=lambda w: (by[w], w)) for code, by in by_weight.items()}
    # where the call's language is unknown (its first turn): all tuning texts, each language guessed
    chosen = {"keep_bonus": keep, "language_lm_weight": weights}
    by_margin = {margin: cer_of(samples, hypotheses, _rescorer(stage_folder, {**chosen, "guess_margin": margin}),
                                language_given=False)
                 for margin in (GUESS_MARGIN_GRID if "yue" in weights else (None,))}
    margin = min(by_margin, key=lambda m: (by_margin[m], m is not None, -(m or 0)))
    _LOGGER.info("tuning CER by keep bonus, each language at its best weight: %s (no rescoring %.4f); by own "
                 "n-gram weight at the chosen bonus: %s; language guessed, "
                 "by guess margin: %s", by_bonus, cer_of(samples, hypotheses, None), by_weight, by_margin)
    return {**chosen, "guess_margin": margin, "tuning_sentences": len(samples),
            "tuning_cer": {str(k): v for k, v in by_bonus.items()},
            "tuning_cer_own_language_by_weight": {code: {str(k): v for k, v in cers.items()}
                                                  for code, cers in by_weight.items()},
            "tuning_cer_language_guessed_by_margin": {str(k): v for k, v in by_margin.items()},
            "tuning_cer_no_rescoring": cer_of(samples, hypotheses, None)}


def _settings(tuning: dict) -> dict:
    return {key: tuning[key] for key in ("keep_bonus", "language_lm_weight", "guess_margin") if key in tuning}


def write_bundle(work: Path, out: Path, seed: int = 1234, limit: int | None = None,
                 extra: tuple[list[dict], list[dict]] = ([], [])) -> dict:
    """Export, tune the rescoring, score on the held-out set and write the bundle to ``out``.

    Args:
        limit: score at most this many held-out texts per language (smoke runs); None scores all.
        extra: evaluation-only (tuning, test) texts added to the split's (see extra_heldout).
    """
    from export.asr import lexicon
    from export.asr.heldout import decoder_rtf, load_texts, render, score

    start = time.monotonic()
    fp32, int8 = export_onnx(work)
    tokens = write_tokens(work)
    vocab = json.loads((work / "vocab.json").read_text(encoding="utf-8"))
    split = json.loads((work / "split.json").read_text(encoding="utf-8"))
    tuning_texts, report_texts = split_tuning(load_texts(work / "split.json"), seed)
    tuning_texts, report_texts = _merged(tuning_texts, extra[0]), _merged(report_texts, extra[1])
    files = lexicon.write(work, split["train"], vocab, [t["text"] for t in (*tuning_texts, *report_texts)])
    int8_folder = _stage(work, "stage-int8", {int8.name: int8, "tokens.txt": tokens, **files}, rescoring=True)
    tuning = tune_rescoring(tuning_texts, int8_folder, limit)
    samples = render(report_texts, limit)
    metrics = {}
    for name, model_file in (("int8", int8), ("fp32", fp32)):
        folder = _stage(work, f"stage-{name}", {model_file.name: model_file, "tokens.txt": tokens, **files},
                        rescoring=True)
        metrics[name] = score(_open(folder), samples, _rescorer(folder, _settings(tuning)))
        metrics[name]["decoder_rtf"] = decoder_rtf(folder, samples)
        _LOGGER.info("%s held-out: %s rtf %.4f", name, json.dumps(metrics[name]["cer"]), metrics[name]["rtf"])
    if limit is None:
        heldout = Path(__file__).resolve().parent / "data" / "heldout.json"
        heldout.write_text(json.dumps({"test": report_texts, "tuning": tuning_texts}, ensure_ascii=False, indent=0),
                           encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for source in (int8, tokens, *files.values()):
        shutil.copy(source, out / source.name)
    data = json.loads((work / "data.json").read_text(encoding="utf-8"))
    train = json.loads((work / "train.json").read_text(encoding="utf-8"))
    train.pop("history", None)
    extra = {
        "metrics": {"heldout_int8": metrics["int8"]["cer"], "heldout_fp32": metrics["fp32"]["cer"],
                    "rtf_1_thread": {name: {"decoder": m["decoder_rtf"], "vad_decoder_rescoring": m["rtf"]}
                                     for name, m in metrics.items()},
                    "rtf_note": "one stream, one thread, measured while other jobs shared the 2 cores",
                    "sizes_bytes": {"fp32_onnx": fp32.stat().st_size, "int8_onnx": int8.stat().st_size},
                    "rescoring_tuning": tuning,
                    "examples_of_errors": metrics["int8"]["examples_of_errors"][:20]},
        "build": {"tool": "python -m export.asr.build", "data": data, "train": train,
                  "heldout": {"texts": "the intent model's test families and 8% of the script lines, never trained "
                                       "on (split.json 'test'); a third of their groups tunes the rescoring bonus, "
                                       "the CER is reported on the other two thirds (heldout.json 'test')",
                              "voices": "espeak-ng variants m6/m7/f4, rates 138/168/198, pitches 37/54/70 "
                                        "(none used in training)",
                              "phone": "300-3400 Hz, 8 kHz mu-law, pink noise at 15 dB SNR, -6 dB"},
                  "export_seconds": round(time.monotonic() - start), "torch": torch.__version__,
                  "python": platform.python_version(), "machine": platform.machine(),
                  "note": "bootstrap model: synthetic (espeak-ng) speech only; install a real model for production"},
    }
    manifest = _manifest(out, {"model": int8.name}, _settings(tuning), extra)
    _write_manifest(out, manifest)
    _LOGGER.info("bundle written to %s", out)
    return manifest


HELDOUT = Path(__file__).resolve().parent / "data" / "heldout.json"


def update_rescoring(bundle: Path, work: Path, train: list[dict], limit: int | None = None,
                     heldout: Path = HELDOUT, extra: tuple[list[dict], list[dict]] = ([], [])) -> dict:
    """Rebuild a bundle's sound tables and per-language n-grams, retune the rescoring on the held-out
    tuning texts and re-score the held-out test texts (export/asr/data/heldout.json), in place. The model
    and lm.json stay, so no training folder is needed.

    Args:
        train: the training texts (``{"text", "lang"}``) the bundle's lm.json was counted from; refused
            when they no longer give that lm.json (the corpus changed: export again).
        limit: texts per language (smoke runs; the bundle is then left alone).
        heldout: JSON with the "tuning" and "test" texts; rewritten with ``extra``'s added.
        extra: evaluation-only (tuning, test) texts (see extra_heldout).
    """
    from export.asr import lexicon
    from export.asr.heldout import render, score

    started = time.monotonic()
    manifest = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
    shipped = json.loads((bundle / "lm.json").read_text(encoding="utf-8"))
    if lexicon.build_ngrams([t["text"] for t in train]) != shipped:
        raise ValueError(f"{bundle}/lm.json was not counted from these training texts (the corpus or the "
                         "script lines changed since the export): run the export instead")
    vocab = read_vocab(bundle)
    work.mkdir(parents=True, exist_ok=True)
    texts = json.loads(heldout.read_text(encoding="utf-8"))
    texts = {"test": _merged(texts["test"], extra[1]), "tuning": _merged(texts["tuning"], extra[0])}
    held_out = [t["text"] for part in ("tuning", "test") for t in texts[part]]
    files = {**lexicon.write_lexicons(work, vocab), **lexicon.write_language_lms(work, train, held_out)}
    model = manifest["model"]["files"]["model"]
    stage = _stage(work, "stage-rescoring", {model: bundle / model, "tokens.txt": bundle / "tokens.txt", **files,
                                             "lm.json": bundle / "lm.json"}, rescoring=True)
    tuning = tune_rescoring(texts["tuning"], stage, limit)
    result = score(_open(stage), render(texts["test"], limit), _rescorer(stage, _settings(tuning)))
    _LOGGER.info("held-out with the language given: %s", json.dumps(result["cer"]))
    if limit is not None:
        return {"tuning": tuning, **result}
    for name, path in files.items():
        shutil.copy(path, bundle / name)
    heldout.write_text(json.dumps(texts, ensure_ascii=False, indent=0), encoding="utf-8")
    manifest["files"] = _file_entries(bundle)
    manifest["rescoring"] = _rescoring_section(bundle, _settings(tuning))
    metrics = manifest.setdefault("metrics", {})
    metrics["heldout_int8"] = result["cer"]
    metrics.setdefault("rtf_1_thread", {}).setdefault("int8", {})["vad_decoder_rescoring"] = result["rtf"]
    metrics["rescoring_tuning"] = tuning
    metrics["examples_of_errors"] = result["examples_of_errors"][:20]
    manifest.setdefault("build", {})["rescoring_update"] = {
        "tool": "python -m export.asr.build rescoring", "seconds": round(time.monotonic() - started),
        "note": "per-language sound tables (Mandarin, Cantonese) and a Cantonese n-gram mixed in for Cantonese "
                "calls; heldout_int8 'cer' tells the rescoring each text's language, 'cer_language_guessed' "
                "lets it guess from the text alone; heldout_fp32 is from the export, before these"}
    _write_manifest(bundle, manifest)
    return manifest


NOTE_DECODING = ("per-language CTC search graphs (export/asr/graph.py) for calls whose language is known; a turn "
                 "of unknown language is searched greedily, then again under the graph of the language its text shows")
GRAPH_SCALE_GRID = (0.2, 0.3, 0.5)
"""n-gram weights tried for the decoding graphs (the per-character bonus equals it: it hardly mattered, session
14's grid on the tuning texts: scale 0.3 gave 3.90% with bonus 0 or 0.3, 0.5 gave 3.93% with 0.5 or 1.0)."""
GENERAL_NGRAMS = {"cmn": {"weight": 0.4, "min_count": 30}}
"""General n-grams mixed into a language's graph (export/asr/general_lm.py: jieba's words, Mandarin only).
Session 17's grid on the Mandarin tuning texts, stage 5's model, graph scale 0.3, rescored: none 4.21%;
weight 0.3-0.6 and min count 3-100 gave 3.92-4.21%, most near 4.1%; 0.4 with 30 gave 4.08% for a 10.6 MB
graph (7.7 MB without; 25 MB with every n-gram)."""
SEARCHED_KEEP_GRID = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
"""Keep bonuses tried per language on the text its graph searched (RescoreSettings.language_keep_bonus)."""


def tune_searched_keep(folder: Path, samples: list, settings: dict) -> dict:
    """Each language's keep bonus for the text its graph searched: the lowest CER over the tuning texts of that
    language, decoded as calls in it (ties go to the larger bonus: trust the search). The bonus that
    ``tune_rescoring`` picks is for greedy text, where the n-gram has not spoken yet."""
    from edge.asr.base import transcribe
    from export.asr.heldout import cer_of

    recognizer = _open(folder)
    hypotheses = [[r.text for r in transcribe(recognizer, s.audio, language=s.lang)] for s in samples]
    chosen, table = {}, {}
    for code in sorted({s.lang for s in samples}):
        rows = [i for i, s in enumerate(samples) if s.lang == code]
        table[code] = {bonus: cer_of([samples[i] for i in rows], [hypotheses[i] for i in rows],
                                     _rescorer(folder, {**settings, "language_keep_bonus": {code: bonus}}))
                       for bonus in SEARCHED_KEEP_GRID}
        chosen[code] = min(table[code], key=lambda b: (table[code][b], -b))
    _LOGGER.info("tuning CER of searched text by keep bonus: %s", table)
    return {"language_keep_bonus": chosen,
            "tuning_cer_by_keep_bonus": {code: {str(b): v for b, v in by.items()} for code, by in table.items()}}


def update_graphs(bundle: Path, work: Path, limit: int | None = None, heldout: Path = HELDOUT,
                  general: dict[str, dict] | None = None, dictionary: Path | None = None) -> dict:
    """Build the bundle's per-language decoding graphs (export/asr/graph.py) from its n-grams and rescoring
    settings, pick their n-gram weight on the held-out tuning texts, then each language's keep bonus for the
    text they search, score the test texts and, where the graphs beat the greedy search on the tuning texts,
    add them to the bundle in place.

    Each text is decoded as a call in its own language (the graph and the rescoring's), as a call whose
    language is set or known; a call's first turns, language unknown, are searched again under the graph of
    the language their greedy text shows (edge/asr/sherpa_offline.py).

    Args:
        limit: texts per language (smoke runs; the bundle is then left alone).
        general: language -> {"weight", "min_count"} of the general n-gram in its graph (GENERAL_NGRAMS when
            None; {} for none).
        dictionary: the word list the general n-grams count (jieba's dict.txt when None).
    """
    from export.asr import graph
    from export.asr.general_lm import general_lm, jieba_dictionary
    from export.asr.heldout import render, score

    started = time.monotonic()
    manifest = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
    manifest.pop("decoding", None)
    # the graphs are chosen with the rescoring tuned on greedy text; a per-language bonus is tuned afresh below
    settings = {key: value for key, value in manifest.get("rescoring", {}).get("settings", {}).items()
                if key != "language_keep_bonus"}
    rescorer = _rescorer(bundle, settings)
    vocab = read_vocab(bundle)
    general = GENERAL_NGRAMS if general is None else general
    dictionary = (dictionary or jieba_dictionary()) if general else None
    mixed = {code: graph.General(general_lm(set(vocab), spec["min_count"], dictionary), spec["weight"])
             for code, spec in general.items() if code in rescorer.languages}
    general_record = {code: {**general[code], "source": f"{dictionary.parent.name}/{dictionary.name}",
                             "sha256": sha256_file(dictionary)} for code in mixed}
    texts = json.loads(heldout.read_text(encoding="utf-8"))
    tuning = render(texts["tuning"], limit)

    def staged(scale: float | None) -> Path:
        folder = work / f"stage-graphs-{scale}"
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(bundle, folder)
        staged_manifest = dict(manifest)
        if scale is not None:
            names = graph.write(rescorer, vocab, folder, scale, scale, mixed)
            staged_manifest["decoding"] = {"graphs": names, "lm_scale": scale, "char_bonus": scale}
            if general_record:
                staged_manifest["decoding"]["general_ngrams"] = general_record
        staged_manifest["files"] = _file_entries(folder)
        _write_manifest(folder, staged_manifest)
        return folder

    work.mkdir(parents=True, exist_ok=True)
    by_scale, folders = {}, {}
    for scale in (None, *GRAPH_SCALE_GRID):
        folders[scale] = staged(scale)
        by_scale[scale] = score(_open(folders[scale]), tuning, rescorer)["cer"]["all"]["cer"]
    chosen = min(by_scale, key=lambda k: (by_scale[k], k is not None))
    _LOGGER.info("tuning CER by graph n-gram weight (None: greedy): %s", by_scale)
    tuned = {"tuning_sentences": len(tuning), "tuning_cer_by_lm_scale": {str(k): v for k, v in by_scale.items()},
             "lm_scale": chosen}
    if chosen is None:
        _LOGGER.warning("the graphs did not beat the greedy search on the tuning texts: %s left without", bundle)
        if limit is None:
            for old in bundle.glob("graph_*.fst"):
                old.unlink()
            manifest["files"] = _file_entries(bundle)
            manifest.setdefault("rescoring", {})["settings"] = settings
            _write_manifest(bundle, manifest)
        return {"tuning": tuned}
    folder = folders[chosen]
    keep = tune_searched_keep(folder, tuning, settings)
    tuned.update(keep)
    settings = {**settings, "language_keep_bonus": keep["language_keep_bonus"]}
    rescorer = _rescorer(bundle, settings)
    result = score(_open(folder), render(texts["test"], limit), rescorer)
    _LOGGER.info("held-out test texts, each decoded under its language's graph: %s", json.dumps(result["cer"]))
    if limit is not None:
        return {"tuning": tuned, **result}
    decoding = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["decoding"]
    for name in decoding["graphs"].values():
        shutil.copy(folder / name, bundle / name)
    manifest["decoding"] = {**decoding, "note": NOTE_DECODING}
    manifest["files"] = _file_entries(bundle)
    manifest.setdefault("rescoring", {})["settings"] = settings
    metrics = manifest.setdefault("metrics", {})
    metrics["heldout_int8_graphs"] = result["cer"]
    metrics.setdefault("rtf_1_thread", {}).setdefault("int8", {})["vad_graph_rescoring"] = result["rtf"]
    metrics["graph_tuning"] = tuned
    manifest.setdefault("build", {})["graphs"] = {"tool": "python -m export.asr.build graphs",
                                                  "seconds": round(time.monotonic() - started)}
    _write_manifest(bundle, manifest)
    return manifest


def write_vad_bundle(out: Path) -> dict:
    """Ship silero VAD (MIT) as its own small bundle, copied from the silero-vad wheel."""
    import importlib.util

    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.origin:
        raise RuntimeError("pip install --no-deps silero-vad to copy its ONNX model")
    source = Path(spec.origin).parent / "data" / "silero_vad.onnx"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, out / "silero_vad.onnx")
    from importlib.metadata import version

    manifest = {"kind": "vad", "format_version": FORMAT_VERSION,
                "files": {"silero_vad.onnx": {"sha256": sha256_file(out / "silero_vad.onnx"),
                                              "bytes": (out / "silero_vad.onnx").stat().st_size}},
                "build": {"source": f"silero-vad {version('silero-vad')} wheel, silero_vad/data/silero_vad.onnx",
                          "license": "MIT (snakers4/silero-vad)"}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest
