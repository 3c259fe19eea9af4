"""Inference engines behind one call: run(feeds) -> {output name: array}.

onnxruntime and OpenVINO are both first-class; config picks one, and `device`
(edge.accel: cpu, cuda, tensorrt, gpu, auto) where it runs. A device that is
missing falls back to the CPU with one warning. Sessions are created once per
process and shared by every call.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from edge import accel
from edge.errors import BundleError

_LOGGER = logging.getLogger(__name__)


class Engine(Protocol):
    name: str

    device: str
    """Where it really runs: "cpu", "cuda", "tensorrt" (onnxruntime) or "gpu" (OpenVINO)."""

    outputs: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...


class OnnxRuntimeEngine:
    name = "onnxruntime"

    def __init__(self, model_path: Path, threads: int = 1, device: str = "cpu", model: str = "model"):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers, wanted = accel.ort_providers(device, model=model)
        try:
            self._session = ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            if wanted == "cpu":
                raise BundleError(f"{model_path}: onnxruntime cannot load the model ({exc}); "
                                  "re-export the bundle") from None
            accel.fallback_warning("onnxruntime", device, model, f"creating the {wanted} session failed: {exc}")
            self._session = self._cpu_session(ort, model_path, options)
        self.device = accel.used_ort_device(self._session.get_providers())
        if self.device != wanted and wanted != "cpu":  # the build lists the provider but its libraries did not load
            accel.fallback_warning("onnxruntime", device, model, f"the {wanted} provider did not load",
                                   runs_on="the CPU" if self.device == "cpu" else self.device)
        _LOGGER.info("%s runs on onnxruntime %s", model, self._session.get_providers()[0],
                     extra={"event": "model_device", "model": model, "engine": self.name, "device": self.device})
        self.inputs = [i.name for i in self._session.get_inputs()]
        self.outputs = [o.name for o in self._session.get_outputs()]

    @staticmethod
    def _cpu_session(ort, model_path: Path, options):
        try:
            return ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise BundleError(f"{model_path}: onnxruntime cannot load the model ({exc}); re-export the bundle") from None

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self._session.run(None, {name: feeds[name] for name in self.inputs})
        return dict(zip(self.outputs, values))


class OpenVinoEngine:
    name = "openvino"

    def __init__(self, model_path: Path, threads: int = 1, device: str = "cpu", model: str = "model"):
        import openvino as ov

        core = ov.Core()
        target = accel.openvino_device(device, model=model, available=list(core.available_devices))
        try:
            self._compiled = core.compile_model(str(model_path), target, self._config(target, threads))
        except Exception as exc:
            if target == "CPU":
                raise BundleError(f"{model_path}: OpenVINO cannot load the model ({exc}); "
                                  "re-export the bundle") from None
            accel.fallback_warning("openvino", device, model, f"compiling for {target} failed: {exc}")
            target = "CPU"
            try:
                self._compiled = core.compile_model(str(model_path), target, self._config(target, threads))
            except Exception as exc2:
                raise BundleError(f"{model_path}: OpenVINO cannot load the model ({exc2}); "
                                  "re-export the bundle") from None
        self.device = target.lower()
        _LOGGER.info("%s runs on OpenVINO %s", model, target,
                     extra={"event": "model_device", "model": model, "engine": self.name, "device": self.device})
        self.inputs = [p.get_any_name() for p in self._compiled.inputs]
        self.outputs = [p.get_any_name() for p in self._compiled.outputs]
        self._request = self._compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request is not re-entrant

    @staticmethod
    def _config(target: str, threads: int) -> dict:
        if target != "CPU":
            return {"PERFORMANCE_HINT": "LATENCY"}
        return {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                # the CPU plugin defaults to bf16 on some chips; the model was measured in f32/int8
                "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            result = self._request.infer({name: feeds[name] for name in self.inputs})
            return {name: np.array(result[port]) for name, port in zip(self.outputs, self._compiled.outputs)}


def open_engine(name: str, model_path: Path, threads: int = 1, device: str = "cpu", model: str = "intent") -> Engine:
    """Load `model_path` on engine `name` ("onnxruntime"/"openvino") and `device` (edge.accel.DEVICES).

    Raises:
        BundleError: unknown engine, or the model does not load even on the CPU.
        ConfigError: an unknown device, or a CUDA device asked of OpenVINO.
    """
    engines = {"onnxruntime": OnnxRuntimeEngine, "openvino": OpenVinoEngine}
    if name not in engines:
        raise BundleError(f"unknown engine {name!r}; choose one of {sorted(engines)}")
    engine = engines[name](model_path, threads, device, model)
    _LOGGER.debug("%s engine %s loaded %s (%d threads, %s)", model, name, model_path, threads, engine.device)
    return engine
