"""Where a model runs: one config value (`device`) turned into what each runtime needs.

Every model backend (the intent model here; ASR, TTS and VAD on sherpa-onnx)
asks this module instead of naming providers itself, so one word in the
config moves the whole model set to a GPU:

| device     | onnxruntime providers                      | OpenVINO | sherpa-onnx |
|------------|--------------------------------------------|----------|-------------|
| "cpu"      | CPU                                        | CPU      | cpu         |
| "cuda"     | CUDA, CPU                                  | (error)  | cuda        |
| "tensorrt" | TensorRT, CUDA, CPU                        | (error)  | trt         |
| "gpu"      | CUDA, CPU (NVIDIA) / OpenVINO's GPU plugin | GPU      | cuda        |
| "auto"     | the best of the above that is present      | GPU/CPU  | cuda/cpu    |

A device that is not there (no GPU, a CPU-only wheel, no driver) is never a
crash: the model runs on the CPU and ONE warning per backend and device says
why and what to install. The provider actually used is logged at INFO.

Example:
    >>> providers, used = ort_providers("cuda", model="intent")  # on a box without a GPU
    >>> used
    'cpu'
"""

from __future__ import annotations

import importlib.metadata
import logging
import threading
from typing import Any, Final

from edge.errors import ConfigError

__all__ = ["DEVICES", "check_device", "fallback_warning", "openvino_device", "ort_providers", "sherpa_provider",
           "used_ort_device"]

_LOGGER = logging.getLogger(__name__)

DEVICES: Final = ("cpu", "cuda", "tensorrt", "gpu", "auto")
"""Values a `device` config key takes."""

_ORT: Final = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
               "tensorrt": "TensorrtExecutionProvider"}
_ORT_CHAINS: Final = {"cpu": ("cpu",), "cuda": ("cuda", "cpu"), "gpu": ("cuda", "cpu"),
                      "tensorrt": ("tensorrt", "cuda", "cpu"), "auto": ("cuda", "cpu")}
_INSTALL_HINT: Final = {
    "onnxruntime": "install onnxruntime-gpu (same version as onnxruntime) and the NVIDIA driver + CUDA/cuDNN "
                   "libraries it names, or set device = \"cpu\"",
    "openvino": "install the Intel GPU compute runtime (Debian: intel-opencl-icd) so OpenVINO sees \"GPU\", "
                "or set device = \"cpu\"",
    "sherpa-onnx": "install a CUDA build of sherpa-onnx (its version carries '+cuda'), or set device = \"cpu\"",
}

_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def check_device(device: str, key: str, engine: str | None = None) -> None:
    """Validate a config value; `key` names it in the error ("nlu.device").

    Raises:
        ConfigError: not one of DEVICES, or a CUDA-only device asked of OpenVINO.
    """
    if device not in DEVICES:
        raise ConfigError(f"{key} must be one of {DEVICES}, got {device!r}")
    if engine == "openvino" and device in ("cuda", "tensorrt"):
        raise ConfigError(f"{key} = {device!r} is an onnxruntime (NVIDIA) device; with engine \"openvino\" use "
                          "\"gpu\" (Intel GPU), \"cpu\" or \"auto\"")


def fallback_warning(backend: str, requested: str, model: str, why: str, runs_on: str = "the CPU") -> None:
    """Warn once per process per (backend, requested device) that a model runs elsewhere (the CPU)."""
    with _warned_lock:
        first = (backend, requested) not in _warned
        _warned.add((backend, requested))
    hint = _INSTALL_HINT.get(backend, 'set device = "cpu" to silence this')
    message = (f"{model}: device {requested!r} is not available to {backend} ({why}); "
               f"running on {runs_on}. To use it: {hint}")
    if first:
        _LOGGER.warning("%s", message, extra={"event": "device_fallback", "backend": backend, "requested": requested})
    else:
        _LOGGER.debug("%s", message)


def _ort_available() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def ort_providers(device: str, *, model: str, available: list[str] | None = None) -> tuple[list[Any], str]:
    """onnxruntime providers for `device`, keeping only those this onnxruntime build has.

    Args:
        device: one of DEVICES.
        model: the model's name, for the log and the warning.
        available: the build's providers (default: onnxruntime.get_available_providers()).

    Returns:
        (providers for InferenceSession, the device that will run: "cpu", "cuda" or "tensorrt").
    """
    check_device(device, "device")
    available = _ort_available() if available is None else available
    chain = [name for name in _ORT_CHAINS[device] if _ORT[name] in available]
    if "cpu" not in chain:
        chain.append("cpu")
    used = chain[0]
    if device not in ("cpu", "auto") and used == "cpu":
        fallback_warning("onnxruntime", device, model,
                         f"this onnxruntime offers {', '.join(p.replace('ExecutionProvider', '') for p in available)}")
    elif device == "tensorrt" and used != "tensorrt":
        fallback_warning("onnxruntime", device, model, "no TensorRT provider", runs_on="CUDA")
    return [_ORT[name] for name in chain], used


def used_ort_device(session_providers: list[str]) -> str:
    """The device an onnxruntime session really got (its first provider)."""
    first = session_providers[0] if session_providers else "CPUExecutionProvider"
    return {v: k for k, v in _ORT.items()}.get(first, first)


def openvino_device(device: str, *, model: str, available: list[str] | None = None) -> str:
    """The OpenVINO device name ("CPU" or "GPU") for `device`.

    Args:
        device: "cpu", "gpu" or "auto" ("cuda"/"tensorrt" are refused by check_device).
        model: the model's name, for the log and the warning.
        available: OpenVINO's devices (default: openvino.Core().available_devices).
    """
    check_device(device, "device", engine="openvino")
    if device == "cpu":
        return "CPU"
    if available is None:
        import openvino as ov

        available = list(ov.Core().available_devices)
    gpus = [name for name in available if name.split(".")[0] == "GPU"]
    if gpus:
        return "GPU"
    if device == "gpu":
        fallback_warning("openvino", device, model, f"OpenVINO sees only {', '.join(available) or 'no devices'}")
    return "CPU"


def sherpa_provider(device: str, *, model: str, version: str | None = None) -> str:
    """The `provider=` string for sherpa-onnx ("cpu", "cuda" or "trt").

    sherpa-onnx bundles its own onnxruntime; its GPU builds carry "+cuda" in the
    version (the PyPI wheel is CPU-only), so that is what is checked.
    """
    check_device(device, "device")
    if device == "cpu":
        return "cpu"
    if version is None:
        try:
            version = importlib.metadata.version("sherpa-onnx")
        except importlib.metadata.PackageNotFoundError:
            version = ""
    if "cuda" in version:
        return "trt" if device == "tensorrt" else "cuda"
    if device != "auto":
        fallback_warning("sherpa-onnx", device, model, f"sherpa-onnx {version or '(not installed)'} is a CPU build")
    return "cpu"
