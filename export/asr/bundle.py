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
from export.asr.lexicon import LEXICONS
from export.asr.model import CtcModel, ModelConfig

_LOGGER = logging.getLogger(__name__)
OPSET_VERSION = 17
KEEP_BONUS_GRID = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0)


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
    (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    return folder


def _manifest(folder: Path, model_file: dict, rescoring_settings: dict | None, extra: dict | None = None) -> dict:
    files = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
             for p in sorted(folder.iterdir()) if p.name != MANIFEST}
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


def _rescoring_section(folder: Path, settings: dict) -> dict:
    others = {voice: name for voice, name in LEXICONS.items() if voice != "cmn" and (folder / name).exists()}
    return {"files": [LEXICONS["cmn"], *others.values(), "lm.json"], "lexicons": others, "settings": settings}


def _rescorer(folder: Path, keep_bonus: float):
    from edge.asr.rescore import Rescorer, RescoreSettings

    others = {voice: name for voice, name in LEXICONS.items() if voice != "cmn" and (folder / name).exists()}
    return Rescorer.load(folder, RescoreSettings(keep_bonus=keep_bonus), others)


def split_tuning(test: list[dict], seed: int, share: float = 1 / 3) -> tuple[list[dict], list[dict]]:
    """Held-out texts -> (tuning, reporting), by group: the rescoring bonus is picked on texts the
    acoustic model never heard (on trained texts it is near-perfect and the pick trusts it too much),
    and the CER is reported on the other groups only."""
    groups = sorted({t["group"] for t in test})
    random.Random(seed).shuffle(groups)
    tuning = set(groups[:max(1, round(len(groups) * share))])
    return [t for t in test if t["group"] in tuning], [t for t in test if t["group"] not in tuning]


def tune_keep_bonus(tuning: list[dict], stage_folder: Path, limit: int | None = None) -> dict:
    """Pick the keep bonus that gives the lowest CER on the tuning texts (never trained on), each text
    rescored with its language's sound table."""
    from export.asr.heldout import cer_of, raw_hypotheses, render

    samples = render(tuning, limit)
    hypotheses = raw_hypotheses(_open(stage_folder), samples)
    results = {bonus: cer_of(samples, hypotheses, _rescorer(stage_folder, bonus)) for bonus in KEEP_BONUS_GRID}
    best = min(results, key=lambda b: (results[b], -b))
    _LOGGER.info("tuning CER by keep bonus: %s (no rescoring %.4f)", results, cer_of(samples, hypotheses, None))
    return {"keep_bonus": best, "tuning_sentences": len(samples), "tuning_cer": {str(k): v for k, v in results.items()},
            "tuning_cer_no_rescoring": cer_of(samples, hypotheses, None)}


def write_bundle(work: Path, out: Path, seed: int = 1234, limit: int | None = None) -> dict:
    """Export, tune the rescoring, score on the held-out set and write the bundle to ``out``.

    Args:
        limit: score at most this many held-out texts per language (smoke runs); None scores all.
    """
    from export.asr import lexicon
    from export.asr.heldout import decoder_rtf, load_texts, render, score

    start = time.monotonic()
    fp32, int8 = export_onnx(work)
    tokens = write_tokens(work)
    vocab = json.loads((work / "vocab.json").read_text(encoding="utf-8"))
    split = json.loads((work / "split.json").read_text(encoding="utf-8"))
    tuning_texts, report_texts = split_tuning(load_texts(work / "split.json"), seed)
    files = lexicon.write(work, [t["text"] for t in split["train"]], vocab)
    int8_folder = _stage(work, "stage-int8", {int8.name: int8, "tokens.txt": tokens, **files}, rescoring=True)
    tuning = tune_keep_bonus(tuning_texts, int8_folder, limit)
    samples = render(report_texts, limit)
    metrics = {}
    for name, model_file in (("int8", int8), ("fp32", fp32)):
        folder = _stage(work, f"stage-{name}", {model_file.name: model_file, "tokens.txt": tokens, **files},
                        rescoring=True)
        metrics[name] = score(_open(folder), samples, _rescorer(folder, tuning["keep_bonus"]))
        metrics[name]["decoder_rtf"] = decoder_rtf(folder, samples[:200])
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
    manifest = _manifest(out, {"model": int8.name}, {"keep_bonus": tuning["keep_bonus"]}, extra)
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    _LOGGER.info("bundle written to %s", out)
    return manifest


HELDOUT = Path(__file__).resolve().parent / "data" / "heldout.json"


def update_rescoring(bundle: Path, work: Path, limit: int | None = None, heldout: Path = HELDOUT) -> dict:
    """Rebuild a bundle's sound tables, retune the keep bonus on the held-out tuning texts and re-score
    the held-out test texts (export/asr/data/heldout.json), in place. The model and the n-gram stay, so
    no training folder is needed.

    Args:
        limit: texts per language (smoke runs; the manifest is then left alone).
        heldout: JSON with the "tuning" and "test" texts.
    """
    from export.asr import lexicon
    from export.asr.heldout import render, score

    started = time.monotonic()
    manifest = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))
    lines = (bundle / "tokens.txt").read_text(encoding="utf-8").splitlines()
    vocab = [line.rsplit(maxsplit=1)[0] for line in lines if line.strip() and not line.startswith("<blk>")]
    work.mkdir(parents=True, exist_ok=True)
    tables = lexicon.write_lexicons(work, vocab)
    model = manifest["model"]["files"]["model"]
    stage = _stage(work, "stage-rescoring", {model: bundle / model, "tokens.txt": bundle / "tokens.txt", **tables,
                                             "lm.json": bundle / "lm.json"}, rescoring=True)
    texts = json.loads(heldout.read_text(encoding="utf-8"))
    tuning = tune_keep_bonus(texts["tuning"], stage, limit)
    result = score(_open(stage), render(texts["test"], limit), _rescorer(stage, tuning["keep_bonus"]))
    _LOGGER.info("held-out with the language given: %s", json.dumps(result["cer"]))
    if limit is not None:
        return {"tuning": tuning, **result}
    for name, path in tables.items():
        shutil.copy(path, bundle / name)
    manifest["files"] = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                         for p in sorted(bundle.iterdir()) if p.name != MANIFEST}
    manifest["rescoring"] = _rescoring_section(bundle, {"keep_bonus": tuning["keep_bonus"]})
    metrics = manifest.setdefault("metrics", {})
    metrics["heldout_int8"] = result["cer"]
    metrics.setdefault("rtf_1_thread", {}).setdefault("int8", {})["vad_decoder_rescoring"] = result["rtf"]
    metrics["rescoring_tuning"] = tuning
    metrics["examples_of_errors"] = result["examples_of_errors"][:20]
    manifest.setdefault("build", {})["rescoring_update"] = {
        "tool": "python -m export.asr.build rescoring", "seconds": round(time.monotonic() - started),
        "note": "sound tables per language (Mandarin, Cantonese); heldout_int8 'cer' tells the rescoring each "
                "text's language, 'cer_language_guessed' lets it guess from the text alone; heldout_fp32 is "
                "from the export, with the Mandarin table only"}
    (bundle / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
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
