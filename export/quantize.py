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


def export_onnx(model: torch.nn.Module, path: Path, vocab_size: int) -> Path:
    """Legacy (TorchScript) exporter: one file, ~10x faster than dynamo here."""
    model.eval()
    ids = torch.randint(3, max(4, vocab_size), (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (ids, mask), str(path), input_names=list(INPUTS), output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"},
                          "logits": {0: "batch"}},
            opset_version=OPSET_VERSION, dynamo=False,
        )
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


def quantize_ort_static(src: Path, dst: Path, calibration: Iterable[tuple[np.ndarray, np.ndarray]]) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter([{"input_ids": i, "attention_mask": m} for i, m in calibration])

        def get_next(self):
            return next(self._it, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["MatMul", "Gather"], per_channel=True)
    return dst


def quantize_openvino(src_onnx: Path, dst_xml: Path, calibration: list[tuple[np.ndarray, np.ndarray]]) -> Path:
    """OpenVINO IR, INT8 by NNCF post-training quantization on calibration text."""
    import nncf
    import openvino as ov

    model = ov.convert_model(str(src_onnx))
    dataset = nncf.Dataset(calibration, lambda item: {"input_ids": item[0], "attention_mask": item[1]})
    quantized = nncf.quantize(model, dataset, model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(calibration), fast_bias_correction=True)
    dst_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(dst_xml), compress_to_fp16=False)
    return dst_xml
