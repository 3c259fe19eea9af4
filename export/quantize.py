"""ONNX export and INT8: onnxruntime (dynamic or static) and OpenVINO via NNCF."""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

_LOGGER = logging.getLogger(__name__)

OPSET_VERSION = 17
INPUTS = ("input_ids", "attention_mask")


def export_onnx(model: torch.nn.Module, path: Path, vocab_size: int, pinyin_vocab_size: int = 0) -> Path:
    """Legacy (TorchScript) exporter: one file, ~10x faster than dynamo here.

    Hybrid models export logits and the utterance embedding (few-shot intents
    read it); other models (an --init teacher) export logits only.
    """
    from export.models import ExportedClassifier, HybridClassifier

    model.eval()
    ids = torch.randint(3, max(4, vocab_size), (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    args, inputs = (ids, mask), list(INPUTS)
    if pinyin_vocab_size:
        args, inputs = (ids, mask, torch.randint(3, max(4, pinyin_vocab_size), (2, 12))), inputs + ["pinyin_ids"]
    outputs = ["logits"]
    if isinstance(model, HybridClassifier):
        model, outputs = ExportedClassifier(model), ["logits", "embedding"]
    axes = {name: {0: "batch", 1: "length"} for name in inputs} | {name: {0: "batch"} for name in outputs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=OPSET_VERSION, dynamo=False)
    _LOGGER.info("wrote %s", path)
    return path


def quantize_ort_dynamic(src: Path, dst: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_dynamic(str(pre), str(dst), weight_type=QuantType.QInt8, per_channel=False)
    return dst


def quantize_ort_static(src: Path, dst: Path, calibration: Iterable[dict[str, np.ndarray]]) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(list(calibration))

        def get_next(self):
            return next(self._it, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["MatMul", "Gather"], per_channel=True)
    return dst


def quantize_openvino(src_onnx: Path, dst_xml: Path, calibration: list[dict[str, np.ndarray]],
                      mode: str = "full") -> Path:
    """OpenVINO IR, INT8 by NNCF.

    mode "full": post-training quantization of weights and activations on
    calibration text (fastest); "weights": INT8 weights, float activations
    (closest to FP32, for when full INT8 moves too many decisions).
    """
    import nncf
    import openvino as ov

    model = ov.convert_model(str(src_onnx))
    if mode == "full":
        quantized = nncf.quantize(model, nncf.Dataset(calibration), model_type=nncf.ModelType.TRANSFORMER,
                                  subset_size=len(calibration), fast_bias_correction=True)
    elif mode == "weights":
        quantized = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    else:
        raise ValueError(f"unknown OpenVINO quantization mode {mode!r}")
    dst_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(dst_xml), compress_to_fp16=False)
    return dst_xml
