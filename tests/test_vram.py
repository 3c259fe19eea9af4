"""benchmarks/vram.py on a tiny model: weights counted, activations grow with the batch, CUDA absence said."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the VRAM estimate reads ONNX graphs (the [export] extra has onnx)")


def test_estimate_tiny_model(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from benchmarks import vram

    weight = numpy_helper.from_array(np.ones((16, 32), dtype=np.float32), name="W")  # 2 KiB of weights
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
                              "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])],
                              initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    estimate = vram.estimate("tiny", path, text_len=8, audio_frames=100)
    assert estimate.weights_mib == round(16 * 32 * 4 / 2**20, 2)
    assert estimate.source == {"1": "observed", "32": "observed"}
    # batch 32: x (32x16) + h (32x32) + y (32x32) floats, no reuse
    assert estimate.activations_no_reuse_mib["32"] == round(32 * (16 + 32 + 32) * 4 / 2**20, 2)
    peak, total, coverage = vram.activations(model, 32, 8, 100)  # from shape inference alone
    assert total == 32 * (16 + 32 + 32) * 4 and coverage == 1.0 and peak <= total
    assert vram.measure_cuda([estimate], 8, 100)["available"] in (True, False)
