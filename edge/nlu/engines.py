"""Inference engines behind one call: run(feeds) -> {output name: array}.

onnxruntime and OpenVINO are both first-class; config picks one. Sessions are
created once per process and shared by every call.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from edge.errors import BundleError

_LOGGER = logging.getLogger(__name__)


class Engine(Protocol):
    name: str

    outputs: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class OnnxRuntimeEngine:
    name = "onnxruntime"

    def __init__(self, model_path: Path, threads: int = 1):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BundleError(f"{model_path}: onnxruntime cannot load the model ({exc}); re-export the bundle") from None
        self.inputs = [i.name for i in self._session.get_inputs()]
        self.outputs = [o.name for o in self._session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._session.run(None, {name: feeds[name] for name in self.inputs})
        return dict(zip(self.outputs, values))


class OpenVinoEngine:
    name = "openvino"

    def __init__(self, model_path: Path, threads: int = 1):
        import openvino as ov

        core = ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                  # the CPU plugin defaults to bf16 on some chips; the model was measured in f32/int8
                  "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        try:
            self._compiled = core.compile_model(str(model_path), "CPU", config)
        except Exception as exc:
            raise BundleError(f"{model_path}: OpenVINO cannot load the model ({exc}); re-export the bundle") from None
        self.inputs = [p.get_any_name() for p in self._compiled.inputs]
        self.outputs = [p.get_any_name() for p in self._compiled.outputs]
        self._request = self._compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request is not re-entrant

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            result = self._request.infer({name: feeds[name] for name in self.inputs})
            return {name: np.array(result[port]) for name, port in zip(self.outputs, self._compiled.outputs)}


def open_engine(name: str, model_path: Path, threads: int = 1) -> Engine:
    engines = {"onnxruntime": OnnxRuntimeEngine, "openvino": OpenVinoEngine}
    if name not in engines:
        raise BundleError(f"unknown engine {name!r}; choose one of {sorted(engines)}")
    engine = engines[name](model_path, threads)
    _LOGGER.debug("intent engine %s loaded %s (%d threads)", name, model_path, threads)
    return engine
