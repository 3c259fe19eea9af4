"""`salesbot export intent`: corpus -> teacher -> student -> INT8 -> bundle.

Every stage is measured on the held-out test split (families never seen in
training); choices (checkpoint, threshold, quantization mode) use dev only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm import tqdm

from edge.bundle import FORMAT_VERSION, MANIFEST, sha256_file
from edge.nlu import report as quality_report
from edge.nlu.intent import to_result
from edge.nlu.labelled import Example
from edge.nlu.text import TextEncoder, to_simplified
from export import baseline, centroids, distill, quantize, teacher, tokenizer as tok
from export.corpus import OTHER, Split, add_train_extra, augment, corpus_hash, load_split
from export.evaluate import engine_logits, full_report, part_latency
from export.train import TrainConfig, decide_all, multi_hot, predict_logits, sigmoid, train, tune_threshold

_LOGGER = logging.getLogger(__name__)

ORT_MODEL = "student.int8.onnx"
MIN_AGREEMENT = 0.99
OV_MODEL = "openvino/student.int8.xml"


@dataclass
class ExportOptions:
    corpus: list[str]
    out: str
    test: str | None = None
    train_extra: list[str] = field(default_factory=list)
    """CSV files or folders whose rows join training only (export/corpus.py add_train_extra)."""
    init: str | None = None
    """Local transformers checkpoint to initialise the teacher from."""
    seed: int = 1234
    max_length: int = 64
    t2s: bool = True
    """Normalise Traditional to Simplified (OpenCC) before tokenization."""
    pinyin: bool = True
    """Add the toneless-pinyin channel (robustness to ASR homophones)."""
    teacher_epochs: int = 6
    student_epochs: int = 20
    augment_copies: int = 1
    synthetic_compounds: int = 600
    max_per_label: int | None = None
    """Subsample the corpus (fast tests); None uses everything."""
    slim: bool = False
    """Keep only what the runtime needs (INT8 models), as the built-in bundle does."""
    progress: bool = True
    teacher_overrides: dict = field(default_factory=dict)
    student_overrides: dict = field(default_factory=dict)


def _subsample(split: Split, limit: int | None, seed: int) -> Split:
    if limit is None:
        return split
    rng = random.Random(seed)

    def cut(examples: list[Example], n: int) -> list[Example]:
        by_label: dict[tuple, list[Example]] = {}
        for e in examples:
            by_label.setdefault(e.labels, []).append(e)
        out = []
        for group in sorted(by_label):
            items = by_label[group]
            out.extend(rng.sample(items, min(n, len(items))))
        return out

    return Split(train=cut(split.train, limit), dev=cut(split.dev, max(2, limit // 4)),
                 test=cut(split.test, max(2, limit // 4)))


def run(options: ExportOptions) -> dict:
    """Build a bundle in options.out; returns the manifest."""
    started = time.perf_counter()
    timings: dict[str, float] = {}
    torch.manual_seed(options.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(options.seed)

    split, labels = load_split(options.corpus, options.test, seed=options.seed)
    split, extra_counts = add_train_extra(split, options.train_extra, labels)
    split = _subsample(split, options.max_per_label, options.seed)
    other = OTHER if OTHER in labels else None
    steps = tqdm(total=7, desc="export intent", disable=not options.progress)

    def step(name: str, t0: float) -> None:
        timings[name] = round(time.perf_counter() - t0, 1)
        steps.set_postfix_str(name)
        steps.update(1)

    # 1. tokenizer and training data (augmented copies + synthetic compounds)
    t0 = time.perf_counter()
    seen_texts = [to_simplified(e.text) if options.t2s else e.text for e in split.train + split.dev]
    tokenizer = tok.build(seen_texts)
    pinyin_vocab = tok.build_pinyin_vocab(seen_texts, tokenizer) if options.pinyin else None
    encoder = TextEncoder(tokenizer, options.max_length, t2s=options.t2s, pinyin_vocab=pinyin_vocab)
    pinyin_size = len(pinyin_vocab) if pinyin_vocab else 0
    base = [(e.text, e.labels) for e in split.train]
    train_items = base + augment(base, labels, rng, copies=options.augment_copies,
                                 compounds=options.synthetic_compounds)
    train_texts = [t for t, _ in train_items]
    train_targets = multi_hot([l for _, l in train_items], labels)
    dev_texts, dev_gold = [e.text for e in split.dev], [e.labels for e in split.dev]
    test_texts = [e.text for e in split.test]
    encode = teacher.char_encoder(encoder)
    step("data", t0)

    def test_report(logits: np.ndarray, threshold: float) -> dict:
        return full_report(split.test, decide_all(sigmoid(logits), labels, threshold, other), other)

    metrics: dict[str, dict] = {}

    # 2. baseline a user would otherwise pick (same split): TF-IDF + linear SVM
    t0 = time.perf_counter()
    # trained on the raw training split, as a user would (no augmentation of ours)
    svm = baseline.NgramSvm(labels).fit([t for t, _ in base], multi_hot([l for _, l in base], labels))
    metrics["ngram_svm_baseline"] = full_report(split.test, svm.predict(test_texts), other)
    step("baseline", t0)

    # 3. teacher: BERT (scratch or --init) + n-gram LR partner, averaged.
    #    teacher_epochs=0 skips the BERT (cheap runs, e.g. benchmarks/fewshot.py).
    t0 = time.perf_counter()
    partner = teacher.NgramTeacher().fit(train_texts, train_targets)
    teacher_model, teacher_cfg, teacher_history, t_bert = None, None, None, None
    members = [partner.probs]
    if options.init or options.teacher_epochs > 0:
        if options.init:
            teacher_model, teacher_encode = teacher.checkpoint_teacher(options.init, labels, options.max_length)
            teacher_cfg = TrainConfig(epochs=max(1, options.teacher_epochs), lr=5e-5, seed=options.seed)
        else:
            teacher_model = teacher.scratch_teacher(tokenizer.get_vocab_size(), len(labels), options.max_length,
                                                    pinyin_vocab_size=pinyin_size, **options.teacher_overrides)
            teacher_encode = encode
            teacher_cfg = TrainConfig(epochs=options.teacher_epochs, lr=1e-3, seed=options.seed)
        teacher_history = train(teacher_model, teacher_encode, train_texts, train_targets, dev_texts, dev_gold,
                                labels, other, teacher_cfg, desc="teacher", progress=options.progress)
        bert_probs = lambda texts: sigmoid(predict_logits(teacher_model, teacher_encode, texts))  # noqa: E731
        t_bert, _ = tune_threshold(bert_probs(dev_texts), dev_gold, labels, other)
        metrics["teacher_bert"] = test_report(teacher.logit(bert_probs(test_texts)), t_bert)
        members.append(bert_probs)

    def ensemble(texts: list[str]) -> np.ndarray:
        return sum(member(texts) for member in members) / len(members)

    t_ens, _ = tune_threshold(ensemble(dev_texts), dev_gold, labels, other)
    metrics["teacher_ensemble"] = test_report(teacher.logit(ensemble(test_texts)), t_ens)
    soft = teacher.logit(ensemble(train_texts))
    step("teacher", t0)

    # 4. student distilled from the ensemble
    t0 = time.perf_counter()
    student_model = distill.student(tokenizer.get_vocab_size(), len(labels), options.max_length,
                                    pinyin_vocab_size=pinyin_size, **options.student_overrides)
    student_cfg = TrainConfig(epochs=options.student_epochs, lr=2e-3, seed=options.seed)
    student_history = train(student_model, encode, train_texts, train_targets, dev_texts, dev_gold, labels, other,
                            student_cfg, soft_logits=soft, desc="student", progress=options.progress)
    student_dev = sigmoid(predict_logits(student_model, encode, dev_texts))
    t_student, _ = tune_threshold(student_dev, dev_gold, labels, other)
    student_test = predict_logits(student_model, encode, test_texts)
    metrics["student_fp32"] = test_report(student_test, t_student)
    step("student", t0)

    # 5. ONNX FP32, then INT8 for onnxruntime (dynamic vs static, chosen on dev) and OpenVINO (NNCF)
    t0 = time.perf_counter()
    student_onnx = out / "student.onnx"
    quantize.export_onnx(student_model, student_onnx, tokenizer.get_vocab_size(), pinyin_size)
    if not options.slim and not options.init and teacher_model is not None:
        quantize.export_onnx(teacher_model, out / "teacher.onnx", tokenizer.get_vocab_size(), pinyin_size)
    calib_texts = rng.sample(train_texts, min(300, len(train_texts)))
    calibration = [encoder.encode([t]) for t in calib_texts]
    fp32_dev = sigmoid(engine_logits("onnxruntime", student_onnx, encoder, dev_texts))
    fp32_thr, _ = tune_threshold(fp32_dev, dev_gold, labels, other)
    fp32_dev_pred = decide_all(fp32_dev, labels, fp32_thr, other)

    def choose(engine_name: str, candidates: dict[str, Path], fastest_first: list[str]) -> tuple[str, dict]:
        """Per candidate: dev macro-F1 and decision agreement with FP32. Keep those
        agreeing on >= MIN_AGREEMENT of dev turns and within 0.002 F1 of the best
        of them; among those the first in fastest_first."""
        scores = {}
        for mode, path in candidates.items():
            probs = sigmoid(engine_logits(engine_name, path, encoder, dev_texts))
            thr, f1 = tune_threshold(probs, dev_gold, labels, other)
            pred = decide_all(probs, labels, fp32_thr, other)
            scores[mode] = {"dev_macro_f1": round(f1, 4), "size_bytes": _size(path),
                            "dev_agreement_with_fp32": round(float(np.mean(
                                [set(a) == set(b) for a, b in zip(pred, fp32_dev_pred)])), 4)}
        agreeing = [m for m in fastest_first if scores[m]["dev_agreement_with_fp32"] >= MIN_AGREEMENT] or fastest_first
        best = max(scores[m]["dev_macro_f1"] for m in agreeing)
        return next(m for m in agreeing if scores[m]["dev_macro_f1"] >= best - 0.002), scores

    ort_candidates = {
        "dynamic": quantize.quantize_ort_dynamic(student_onnx, out / "student.int8-dynamic.onnx"),
        "static": quantize.quantize_ort_static(student_onnx, out / "student.int8-static.onnx", calibration),
    }
    mode, quant_choice = choose("onnxruntime", ort_candidates, ["dynamic", "static"])
    shutil.move(ort_candidates.pop(mode), out / ORT_MODEL)
    for path in ort_candidates.values():
        path.unlink(missing_ok=True)
    ov_candidates = {m: quantize.quantize_openvino(student_onnx, out / f"ov-{m}" / "student.int8.xml", calibration, m)
                     for m in ("full", "weights")}
    ov_mode, ov_choice = choose("openvino", ov_candidates, ["full", "weights"])
    (out / OV_MODEL).parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".xml", ".bin"):
        shutil.move(ov_candidates[ov_mode].with_suffix(suffix), (out / OV_MODEL).with_suffix(suffix))
    for path in ov_candidates.values():
        shutil.rmtree(path.parent, ignore_errors=True)
    step("quantize", t0)

    # 6. evaluate the shipped files through the runtime engines; threshold from dev
    t0 = time.perf_counter()
    int8_dev = sigmoid(engine_logits("onnxruntime", out / ORT_MODEL, encoder, dev_texts))
    threshold, _ = tune_threshold(int8_dev, dev_gold, labels, other)
    fp32_test_pred = decide_all(sigmoid(engine_logits("onnxruntime", student_onnx, encoder, test_texts)),
                                labels, threshold, other)
    for key, engine_name, path in (("student_int8_onnxruntime", "onnxruntime", out / ORT_MODEL),
                                   ("student_int8_openvino", "openvino", out / OV_MODEL)):
        probs = sigmoid(engine_logits(engine_name, path, encoder, test_texts))
        pred = decide_all(probs, labels, threshold, other)
        metrics[key] = full_report(split.test, pred, other)
        metrics[key]["agreement_with_fp32"] = round(
            float(np.mean([set(a) == set(b) for a, b in zip(pred, fp32_test_pred)])), 4)
        if engine_name == "onnxruntime":
            shipped_results = [to_result(row, labels, threshold, other) for row in probs]
    quality_report.write(out / "report", split.test, shipped_results, labels, other,
                         extra={"latency_ms": part_latency(out / ORT_MODEL, encoder, test_texts),
                                "model": "student INT8 onnxruntime", "split": "held-out test (by family)"},
                         title="Intent model quality: shipped INT8 student on the held-out test split")
    step("evaluate", t0)

    # 7. bundle: tokenizer, labels, models, manifest with hashes and metrics
    t0 = time.perf_counter()
    tok.save(tokenizer, out / "tokenizer.json")
    (out / "labels.json").write_text(json.dumps(labels, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    centroids.save(out / centroids.FILE, centroids.compute(out / ORT_MODEL, encoder, split.train, labels))
    if pinyin_vocab:
        (out / "pinyin.json").write_text(json.dumps(pinyin_vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    if options.slim:
        student_onnx.unlink()
    sizes = {name: (out / name).stat().st_size for name in ("student.onnx", "teacher.onnx", ORT_MODEL)
             if (out / name).exists()}
    sizes[OV_MODEL] = _size(out / OV_MODEL)
    step("bundle", t0)
    steps.close()
    timings["total"] = round(time.perf_counter() - started, 1)
    manifest = {
        "kind": "intent",
        "format_version": FORMAT_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "models": {"onnxruntime": ORT_MODEL, "openvino": OV_MODEL},
        "max_length": options.max_length,
        "text": {"t2s": options.t2s, "pinyin": options.pinyin},
        "decision": {"threshold": threshold, "other_label": other},
        "labels": labels,
        "metrics": metrics,
        "sizes_bytes": sizes,
        "build": {
            "command": "salesbot " + " ".join(sys.argv[1:]) if sys.argv and "salesbot" in sys.argv[0] else None,
            "options": asdict(options),
            "corpus_sha256": corpus_hash(options.corpus + ([options.test] if options.test else [])),
            **({"train_extra_sha256": corpus_hash(options.train_extra), "train_extra": extra_counts}
               if options.train_extra else {}),
            "split_sizes": {"train": len(split.train), "train_augmented": len(train_items),
                            "dev": len(split.dev), "test": len(split.test)},
            "split_rule": "by family (paraphrase group), stratified per label set; test never used for choices",
            "teacher": {"init": options.init, "config": teacher_cfg and teacher_cfg.to_dict(),
                        "model": teacher_model is not None and _config_dict(teacher_model) or None,
                        "training": teacher_history and _short(teacher_history),
                        "ensemble": "mean of the BERT's and the char 1-3-gram LR's probabilities"
                                    if teacher_model is not None else "char 1-3-gram LR only (no BERT teacher)"},
            "student": {"config": student_cfg.to_dict(), "model": _config_dict(student_model),
                        "training": _short(student_history)},
            "quantization": {"rule": f"dev agreement with FP32 >= {MIN_AGREEMENT}, then dev macro-F1 "
                                     "within 0.002 of the best, then the faster mode",
                             "onnxruntime": {"chosen": mode, "candidates": quant_choice},
                             "openvino": {"chosen": ov_mode, "candidates": ov_choice,
                                          "full": "nncf.quantize, ModelType.TRANSFORMER, calibration "
                                                  f"{len(calibration)} training utterances",
                                          "weights": "nncf.compress_weights INT8_ASYM"}},
            "thresholds_dev": {"teacher_bert": t_bert, "teacher_ensemble": t_ens, "student_fp32": t_student,
                               "student_int8": threshold},
            "durations_s": timings,
            "versions": _versions(),
        },
    }
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != MANIFEST)
    manifest["files"] = {p.relative_to(out).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                         for p in files}
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    _LOGGER.info("bundle written to %s in %.0f s", out, timings["total"])
    return manifest


RUNTIME_FILES = ("tokenizer.json", "labels.json", "pinyin.json", centroids.FILE, ORT_MODEL, OV_MODEL, OV_MODEL.removesuffix(".xml") + ".bin",
                 "report/quality.md", "report/quality.json", "report/confusion.png", "report/reliability.png")


def slim_copy(src: str | Path, dst: str | Path) -> dict:
    """Copy only what the runtime needs (INT8 models, tokenizer, labels), with a
    manifest listing those files; metrics and build record stay as measured."""
    src, dst = Path(src), Path(dst)
    manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    if dst.exists():
        shutil.rmtree(dst)
    names = [name for name in RUNTIME_FILES if (src / name).exists()]
    for name in names:
        (dst / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / name, dst / name)
    manifest["files"] = {name: {"sha256": sha256_file(dst / name), "bytes": (dst / name).stat().st_size}
                         for name in names}
    manifest["build"]["slim_copy_of"] = src.name
    (dst / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return manifest


def _size(path: Path) -> int:
    return path.stat().st_size + (path.with_suffix(".bin").stat().st_size if path.suffix == ".xml" else 0)


def _config_dict(model) -> dict | None:
    config = getattr(model, "config", None)
    return config.to_dict() if hasattr(config, "to_dict") else None


def _short(history: dict) -> dict:
    return {k: v for k, v in history.items() if k != "history"} | {"epochs": len(history["history"])}


def _versions() -> dict:
    import nncf
    import onnxruntime
    import openvino
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "onnxruntime": onnxruntime.__version__, "openvino": openvino.__version__, "nncf": nncf.__version__,
            "python": sys.version.split()[0]}


def summary_table(manifest: dict) -> str:
    rows = [("model", "macro-F1", "accuracy", "compound EM", "OOS->intent")]
    for name, m in manifest["metrics"].items():
        rows.append((name, f"{m['macro_f1']:.4f}", f"{m['accuracy']:.4f}",
                     "-" if m["compound_exact_match"] is None else f"{m['compound_exact_match']:.4f}",
                     "-" if m["oos_false_positive_rate"] is None else f"{m['oos_false_positive_rate']:.4f}"))
    width = [max(len(r[i]) for r in rows) for i in range(5)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, width)) for r in rows)
