"""The silero VAD model file: shipped in edge/models/default/vad/, or from the silero-vad wheel."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from edge.bundle import Bundle
from edge.config import DEFAULT_BUNDLE_DIR
from edge.errors import ModelDirError

_LOGGER = logging.getLogger(__name__)
DEFAULT_VAD_DIR = DEFAULT_BUNDLE_DIR / "vad"


def silero_model_path() -> Path:
    """Path of silero_vad.onnx; raises ModelDirError saying how to get one."""
    if (DEFAULT_VAD_DIR / "manifest.json").is_file():
        return Bundle.open(DEFAULT_VAD_DIR, kind="vad", verify=False).path("silero_vad.onnx")
    spec = importlib.util.find_spec("silero_vad")  # never import it: its import needs torch
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "data" / "silero_vad.onnx"
        if path.is_file():
            _LOGGER.debug("VAD model from the silero-vad wheel: %s", path)
            return path
    raise ModelDirError(f"no silero VAD model: {DEFAULT_VAD_DIR} is missing and the silero-vad wheel is not "
                        "installed (pip install --no-deps silero-vad)")
