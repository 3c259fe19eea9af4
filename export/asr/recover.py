"""A trainable checkpoint from a shipped bundle's INT8 ONNX model, for continuing its training.

The bundle keeps only model.int8.onnx; the float checkpoint it came from lives in a training run's work
folder and is gone once that folder is. Dynamic INT8 quantization keeps every MatMul weight as int8
with one scale and zero point per tensor, and all other weights in float, so the float model is
recovered up to half a quantization step per weight: a good start for more training, not a copy of the
original.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from export.asr.model import CtcModel, ModelConfig

MODEL_FILE = "model.int8.onnx"


def recover_checkpoint(bundle: Path) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """(state dict, model config) of the CtcModel that ``bundle``/model.int8.onnx was exported from."""
    import onnx
    from onnx import numpy_helper

    path = bundle / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{bundle} has no {MODEL_FILE} to recover a checkpoint from")
    graph = onnx.load(str(path)).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    state = {name: torch.from_numpy(array.copy()) for name, array in arrays.items()
             if not name.startswith("onnx::") and array.dtype == np.float32}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        quantized = node.input[1]
        stem = quantized.removesuffix("_quantized")
        weight = (arrays[quantized].astype(np.float32) - arrays[stem + "_zero_point"].astype(np.float32)) \
            * arrays[stem + "_scale"]
        layer = _bias_after(node, consumers, arrays).removesuffix(".bias")
        state[layer + ".weight"] = torch.from_numpy(weight.T.copy())
    config = _config(bundle, state)
    model = CtcModel(config)
    names = set(model.state_dict())
    if names - set(state):
        raise ValueError(f"{path} lacks weights for {sorted(names - set(state))[:5]}: not a model export.asr "
                         f"exported")
    model.load_state_dict({k: v for k, v in state.items() if k in names})
    return model.state_dict(), config


def _bias_after(node, consumers: dict[str, list], arrays: dict[str, np.ndarray]) -> str:
    """The name of the bias the quantized MatMul's output is added to (the Linear it came from)."""
    frontier, seen = list(node.output), set()
    while frontier:
        for after in consumers.get(frontier.pop(0), []):
            if id(after) in seen:
                continue
            seen.add(id(after))
            if after.op_type == "Add":
                bias = [name for name in after.input if name.endswith(".bias") and name in arrays]
                if bias:
                    return bias[0]
            if after.op_type in ("Cast", "Mul", "Add"):
                frontier.extend(after.output)
    raise ValueError(f"no bias follows the quantized MatMul {node.name}: not a model export.asr exported")


def _config(bundle: Path, state: dict[str, torch.Tensor]) -> ModelConfig:
    """The manifest's recorded model config where it has one; the shapes otherwise (heads then default)."""
    manifest = bundle / "manifest.json"
    if manifest.is_file():
        recorded = json.loads(manifest.read_text(encoding="utf-8")).get("build", {}).get("train", {}).get("model")
        if recorded:
            return ModelConfig(**recorded)
    if "final_norm.weight" not in state or "blocks.0.ff1.net.1.bias" not in state:
        raise ValueError(f"{bundle} has no manifest recording its model, and its weights do not show it")
    d_model = state["final_norm.weight"].shape[0]
    return ModelConfig(vocab_size=state["head.bias"].shape[0], num_bins=state["mean"].shape[0], d_model=d_model,
                       layers=len({k.split(".")[1] for k in state if k.startswith("blocks.")}),
                       ff_mult=state["blocks.0.ff1.net.1.bias"].shape[0] // d_model,
                       conv_kernel=state["blocks.0.conv.depthwise.weight"].shape[-1],
                       subsampling_channels=state["subsample.conv.0.bias"].shape[0])


def write_recovered(bundle: Path, out: Path) -> Path:
    """Recover ``bundle``'s checkpoint into ``out`` (a model.pt, for build train --init)."""
    state, _ = recover_checkpoint(bundle)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
    return out


__all__ = ["recover_checkpoint", "write_recovered"]
