"""Device selection: a GPU asked for on a box without one runs on the CPU with ONE warning, never a crash."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from edge import accel
from edge.config import Config
from edge.errors import ConfigError
from edge.nlu.engines import open_engine

onnx = pytest.importorskip("onnx", reason="building the tiny test model needs onnx (the [export] extra)")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """y = relu(x @ W): a 4 -> 3 linear layer, opset 13, one file."""
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, name="W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])], "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path_factory.mktemp("accel") / "tiny.onnx"
    onnx.save(model, str(path))
    return path


@pytest.fixture(autouse=True)
def fresh_warnings():
    accel._warned.clear()
    yield
    accel._warned.clear()


def _expected(x):
    return np.maximum(x @ (np.arange(12, dtype=np.float32).reshape(4, 3) / 10), 0)


def _fallbacks(caplog):
    return [r for r in caplog.records if getattr(r, "event", None) == "device_fallback"]


@pytest.mark.parametrize("device", ["cuda", "tensorrt", "gpu"])
def test_onnxruntime_gpu_falls_back_to_cpu_with_one_warning(tiny_model, caplog, device):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: the fallback path is not taken here")
    x = np.ones((2, 4), dtype=np.float32)
    with caplog.at_level(logging.INFO, logger="edge"):
        engines = [open_engine("onnxruntime", tiny_model, device=device, model="tiny") for _ in range(3)]
    for engine in engines:
        assert engine.device == "cpu"
        assert np.allclose(engine.run({"x": x})["y"], _expected(x))
    warnings = _fallbacks(caplog)
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert f"device {device!r}" in message and "running on the CPU" in message and "onnxruntime-gpu" in message
    chosen = [r for r in caplog.records if getattr(r, "event", None) == "model_device"]
    assert len(chosen) == 3 and all(r.device == "cpu" for r in chosen)


def test_openvino_gpu_falls_back_to_cpu_with_one_warning(tiny_model, caplog):
    import openvino as ov

    if any(d.startswith("GPU") for d in ov.Core().available_devices):
        pytest.skip("OpenVINO sees a GPU here: the fallback path is not taken")
    x = np.ones((1, 4), dtype=np.float32)
    with caplog.at_level(logging.INFO, logger="edge"):
        engines = [open_engine("openvino", tiny_model, device="gpu", model="tiny") for _ in range(2)]
    assert all(e.device == "cpu" for e in engines)
    assert np.allclose(engines[0].run({"x": x})["y"], _expected(x), atol=1e-5)
    warnings = _fallbacks(caplog)
    assert len(warnings) == 1 and "intel-opencl-icd" in warnings[0].getMessage()


def test_cpu_and_auto_never_warn(tiny_model, caplog):
    with caplog.at_level(logging.INFO, logger="edge"):
        for engine in ("onnxruntime", "openvino"):
            for device in ("cpu", "auto"):
                open_engine(engine, tiny_model, device=device, model="tiny")
    assert _fallbacks(caplog) == []


def test_provider_chains():
    cpu_only = ["CPUExecutionProvider"]
    nvidia = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert accel.ort_providers("cpu", model="m", available=nvidia) == (["CPUExecutionProvider"], "cpu")
    assert accel.ort_providers("cuda", model="m", available=nvidia) == (nvidia[1:], "cuda")
    assert accel.ort_providers("tensorrt", model="m", available=nvidia) == (nvidia, "tensorrt")
    assert accel.ort_providers("auto", model="m", available=nvidia) == (nvidia[1:], "cuda")
    assert accel.ort_providers("cuda", model="m", available=cpu_only) == (cpu_only, "cpu")
    assert accel.openvino_device("auto", model="m", available=["CPU", "GPU.0"]) == "GPU"
    assert accel.openvino_device("gpu", model="m", available=["CPU"]) == "CPU"
    assert accel.sherpa_provider("cuda", model="asr", version="2.0.1") == "cpu"
    assert accel.sherpa_provider("cuda", model="asr", version="1.10.30+cuda") == "cuda"
    assert accel.sherpa_provider("tensorrt", model="asr", version="1.10.30+cuda") == "trt"


def test_one_warning_per_backend_and_device(caplog):
    with caplog.at_level(logging.WARNING, logger="edge"):
        for _ in range(3):
            accel.ort_providers("cuda", model="asr", available=["CPUExecutionProvider"])
            accel.ort_providers("cuda", model="tts", available=["CPUExecutionProvider"])
            accel.sherpa_provider("cuda", model="vad", version="2.0.1")
    assert len(_fallbacks(caplog)) == 2  # onnxruntime once, sherpa-onnx once


def test_config_device_key():
    assert Config.from_dict({"nlu": {"device": "auto"}}).nlu.device == "auto"
    with pytest.raises(ConfigError, match="nlu.device must be one of"):
        Config.from_dict({"nlu": {"device": "npu"}})
    with pytest.raises(ConfigError, match="with engine \"openvino\" use \"gpu\""):
        Config.from_dict({"nlu": {"engine": "openvino", "device": "cuda"}})
