"""GPU memory budget of the model set: weights + activations at batch 1 and 32, from the ONNX graphs.

For each model: the bytes of its weights (initializers, external data included)
and its activations, computed from ONNX shape inference with the symbolic
dimensions bound (batch = 1 or 32; token inputs = --text-len; 80-bin feature
inputs = --audio-s seconds of 10 ms frames). Two activation figures:
"peak live" walks the graph in order and frees each tensor after its last
consumer (what a memory planner approaches), "no reuse" adds every tensor (an
upper bound). Tensors whose shape inference could not resolve are counted as
unknown (coverage is printed). The CUDA runtime's own context (cuBLAS/cuDNN
handles, kernels) is not a property of the models: it is shown as a separate,
assumed line (--cuda-context-mib), never mixed with the computed figures.

When this onnxruntime has the CUDAExecutionProvider and nvidia-smi runs, the
script also loads each model on the GPU and reports the process's measured
GPU memory after loading and after batch 1 and 32 runs.

Run:
    python benchmarks/vram.py                                  # the configured intent bundle + silero VAD
    python benchmarks/vram.py --model asr=path/to/model.int8.onnx --model tts=voice.onnx
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import machine, write  # noqa: E402

BATCHES = (1, 32)
BATCH_NAMES = {"batch", "n", "b", "batch_size", "num_streams"}
DTYPE_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}
"""onnx.TensorProto element type -> bytes (float, uint8, int8, uint16, int16, int32, int64, bool, fp16, double,
uint32, uint64, bf16)."""


@dataclass
class Estimate:
    name: str
    path: str
    file_mib: float
    weights_mib: float
    activations_mib: dict[str, float] = field(default_factory=dict)
    """batch -> peak live activations (MiB)."""
    activations_no_reuse_mib: dict[str, float] = field(default_factory=dict)
    coverage: dict[str, float] = field(default_factory=dict)
    """batch -> share of intermediate tensors whose shape was resolved."""
    source: dict[str, str] = field(default_factory=dict)
    """batch -> "observed" (shapes from a CPU run with every tensor exposed) or "shape inference"."""
    measured_mib: dict[str, float] = field(default_factory=dict)
    """GPU memory of this process after load / batch 1 / batch 32 (CUDA only)."""


def _mib(n: float) -> float:
    return round(n / 2**20, 2)


def _graphs(graph):
    """A graph and every subgraph inside it (If/Loop branches hold weights too, e.g. silero VAD)."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.g.node:
                yield from _graphs(attribute.g)
            for sub in attribute.graphs:
                yield from _graphs(sub)


def weights_bytes(model) -> int:
    """Bytes of every initializer and Constant tensor, subgraphs and external data included."""
    from onnx import numpy_helper

    total = 0
    for graph in _graphs(model.graph):
        tensors = list(graph.initializer) + [a.t for n in graph.node if n.op_type == "Constant"
                                             for a in n.attribute if a.name == "value"]
        for init in tensors:
            if init.data_location == 1:  # EXTERNAL
                total += next((int(e.value) for e in init.external_data if e.key == "length"), 0)
            else:
                total += numpy_helper.to_array(init).nbytes
    return total


def observed_sizes(path: Path, batch: int, text_len: int, audio_frames: int) -> dict[str, int] | None:
    """Every top-level tensor's bytes, observed by running the model once on the CPU with all of them exposed
    as outputs (exact shapes where shape inference gives up); None when the model will not run on fake input."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    names = [o for node in model.graph.node for o in node.output if o]
    declared = {o.name for o in model.graph.output}
    for name in names:
        if name not in declared:
            model.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        outputs = [o.name for o in session.get_outputs()]
        feeds = _feeds(session, batch, text_len, audio_frames)
        values = session.run(outputs, feeds)
    except Exception:
        return None
    sizes = {name: int(np.asarray(v).nbytes) for name, v in zip(outputs, values, strict=True)}
    sizes.update({name: int(v.nbytes) for name, v in feeds.items()})
    return sizes


def _bind(model, batch: int, text_len: int, audio_frames: int):
    """A copy of the model with every symbolic input dimension made concrete."""
    import onnx

    bound = onnx.ModelProto()
    bound.CopyFrom(model)
    for value in bound.graph.input:
        tensor = value.type.tensor_type
        dims = tensor.shape.dim
        for index, dim in enumerate(dims):
            if dim.dim_value:
                continue
            name = (dim.dim_param or "").lower()
            if index == 0 and (name in BATCH_NAMES or len(dims) > 1 or not name):
                dim.dim_value = batch
            elif tensor.elem_type in (6, 7):  # token ids / lengths
                dim.dim_value = text_len
            elif len(dims) == 3 and dims[2].dim_value in (80, 64, 40):  # feature frames
                dim.dim_value = audio_frames
            else:
                dim.dim_value = text_len
    return bound


def _tensor_bytes(value) -> int | None:
    tensor = value.type.tensor_type
    if not tensor.HasField("shape") or tensor.elem_type not in DTYPE_BYTES:
        return None
    count = 1
    for dim in tensor.shape.dim:
        if not dim.dim_value:
            return None
        count *= dim.dim_value
    return count * DTYPE_BYTES[tensor.elem_type]


def activations(model, batch: int, text_len: int, audio_frames: int,
                observed: dict[str, int] | None = None) -> tuple[int, int, float]:
    """(peak live bytes, no-reuse bytes, shape coverage) of the intermediate and output tensors."""
    import onnx

    bound = _bind(model, batch, text_len, audio_frames)
    try:
        inferred = onnx.shape_inference.infer_shapes(bound, data_prop=True)
    except Exception:  # contrib ops or invalid shapes: fall back to what the file declares
        inferred = bound
    if observed is not None:
        sizes: dict[str, int | None] = dict(observed)
    else:
        sizes = {v.name: _tensor_bytes(v) for v in [*inferred.graph.value_info, *inferred.graph.output,
                                                     *inferred.graph.input]}
    initializers = {i.name for i in model.graph.initializer}
    last_use: dict[str, int] = {}
    for index, node in enumerate(inferred.graph.node):
        for name in node.input:
            last_use[name] = index
    outputs = {o.name for o in inferred.graph.output}
    live = peak = total = 0
    known = unknown = 0
    alive: dict[str, int] = {}
    for value in inferred.graph.input:
        if value.name not in initializers and sizes.get(value.name):
            alive[value.name] = sizes[value.name]
            live += sizes[value.name]
            total += sizes[value.name]
    peak = live
    for index, node in enumerate(inferred.graph.node):
        for name in node.output:
            if not name:
                continue
            size = sizes.get(name)
            if size is None:
                unknown += 1
                continue
            known += 1
            total += size
            alive[name] = size
            live += size
        peak = max(peak, live)
        for name in list(alive):
            if last_use.get(name, -1) <= index and name not in outputs:
                live -= alive.pop(name)
    coverage = known / (known + unknown) if known + unknown else 1.0
    return peak, total, coverage


def estimate(name: str, path: Path, text_len: int, audio_frames: int) -> Estimate:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + ".data"))
    result = Estimate(name, str(path), _mib(size), _mib(weights_bytes(model)))
    for batch in BATCHES:
        observed = observed_sizes(path, batch, text_len, audio_frames)
        result.source[str(batch)] = "observed" if observed is not None else "shape inference"
        peak, total, coverage = activations(model, batch, text_len, audio_frames, observed)
        result.activations_mib[str(batch)] = _mib(peak)
        result.activations_no_reuse_mib[str(batch)] = _mib(total)
        result.coverage[str(batch)] = round(coverage, 3)
    return result


def _gpu_used_mib() -> float | None:
    """This process's GPU memory from nvidia-smi, MiB."""
    if shutil.which("nvidia-smi") is None:
        return None
    out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, timeout=20)
    for line in out.stdout.splitlines():
        pid, _, used = line.partition(",")
        if pid.strip() == str(os.getpid()):
            return float(used)
    return 0.0


def _feeds(session, batch: int, text_len: int, audio_frames: int) -> dict[str, np.ndarray]:
    feeds = {}
    for value in session.get_inputs():
        shape = []
        if value.name == "sr" and not value.shape:  # silero VAD's sample rate input
            feeds[value.name] = np.array(16000, dtype=np.int64)
            continue
        first_free = next((i for i, d in enumerate(value.shape) if not (isinstance(d, int) and d > 0)), None)
        for index, dim in enumerate(value.shape):
            if isinstance(dim, int) and dim > 0:
                shape.append(dim)
            elif index == first_free:
                shape.append(batch)
            elif value.type == "tensor(float)" and len(value.shape) == 2:  # raw samples (VAD windows)
                shape.append(512)
            elif "int" in value.type or index == len(value.shape) - 1 and len(value.shape) == 2:
                shape.append(text_len)
            else:
                shape.append(audio_frames)
        if "int64" in value.type or "int32" in value.type:
            dtype = np.int64 if "int64" in value.type else np.int32
            high = audio_frames if len(shape) == 1 else 2  # lengths vs ids (1 = a real token, never padding)
            feeds[value.name] = np.full(shape, high if len(shape) == 1 else 1, dtype=dtype)
        elif "float16" in value.type:
            feeds[value.name] = np.random.default_rng(0).standard_normal(shape).astype(np.float16)
        else:
            feeds[value.name] = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return feeds


def measure_cuda(estimates: list[Estimate], text_len: int, audio_frames: int) -> dict:
    """Load every model on the GPU in this one process; record the process's GPU memory as it grows."""
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers() or _gpu_used_mib() is None:
        return {"available": False, "why": "no CUDAExecutionProvider in this onnxruntime, or no nvidia-smi"}
    baseline = _gpu_used_mib()
    sessions = []
    steps = {"before": baseline}
    for item in estimates:
        providers = [("CUDAExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"}), "CPUExecutionProvider"]
        session = ort.InferenceSession(item.path, providers=providers)
        sessions.append(session)
        item.measured_mib["load"] = _gpu_used_mib()
        for batch in BATCHES:
            try:
                session.run(None, _feeds(session, batch, text_len, audio_frames))
            except Exception as exc:  # a model whose inputs we cannot fake: report, keep going
                item.measured_mib[f"error_b{batch}"] = str(exc)[:200]
            time.sleep(0.2)
            item.measured_mib[str(batch)] = _gpu_used_mib()
        steps[item.name] = item.measured_mib[str(BATCHES[-1])]
    return {"available": True, "process_mib": steps, "total_mib": _gpu_used_mib(),
            "providers": sessions[0].get_providers() if sessions else []}


def default_models() -> list[tuple[str, Path]]:
    from edge import config

    models = []
    bundle = config.load(os.environ.get("SALESBOT_CONFIG")).nlu.intent_bundle
    manifest = bundle / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        onnx_file = data.get("models", {}).get("onnxruntime")
        if onnx_file:
            models.append(("intent", bundle / onnx_file))
    spec = importlib.util.find_spec("silero_vad")  # find, don't import (its import needs torch)
    if spec and spec.submodule_search_locations:
        vad = Path(next(iter(spec.submodule_search_locations))) / "data" / "silero_vad.onnx"
        if vad.is_file():
            models.append(("vad (silero)", vad))
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="An ONNX model to include (repeatable); default: the configured intent bundle + VAD.")
    parser.add_argument("--no-defaults", action="store_true", help="Only the --model files.")
    parser.add_argument("--text-len", type=int, default=64, help="Tokens per utterance (the intent max_length).")
    parser.add_argument("--audio-s", type=float, default=10.0, help="Seconds of audio per ASR decode.")
    parser.add_argument("--cuda-context-mib", type=float, default=400.0,
                        help="Assumed CUDA context + cuBLAS/cuDNN per process (not a model figure).")
    parser.add_argument("--out", type=Path, default=None, help="Results folder (default: benchmarks/results).")
    args = parser.parse_args()
    models = [] if args.no_defaults else default_models()
    for item in args.model:
        name, sep, path = item.partition("=")
        if not sep:
            parser.error(f"--model takes NAME=PATH, got {item!r}")
        models.append((name, Path(path)))
    missing = [str(p) for _, p in models if not p.is_file()]
    if missing or not models:
        parser.error(f"no model files: {', '.join(missing) or 'none found'}")
    audio_frames = round(args.audio_s * 100)
    estimates = [estimate(name, path, args.text_len, audio_frames) for name, path in models]
    measured = measure_cuda(estimates, args.text_len, audio_frames)
    rows = ["| model | file MiB | weights MiB | act. b=1 (peak / no reuse) | act. b=32 (peak / no reuse) "
            "| shapes known |", "|---|---|---|---|---|---|"]
    for e in estimates:
        rows.append(f"| {e.name} | {e.file_mib} | {e.weights_mib} | {e.activations_mib['1']} / "
                    f"{e.activations_no_reuse_mib['1']} | {e.activations_mib['32']} / "
                    f"{e.activations_no_reuse_mib['32']} | {min(e.coverage.values()):.0%} |")
    weights = sum(e.weights_mib for e in estimates)
    totals = {b: round(weights + sum(e.activations_mib[str(b)] for e in estimates), 1) for b in BATCHES}
    upper = {b: round(weights + sum(e.activations_no_reuse_mib[str(b)] for e in estimates), 1) for b in BATCHES}
    lines = ["# GPU memory budget of the model set", "", *rows, "",
             f"Models (weights + peak live activations): **{totals[1]} MiB at batch 1, {totals[32]} MiB at batch 32** "
             f"(no buffer reuse: {upper[1]} / {upper[32]} MiB).",
             f"Plus the CUDA runtime per process, assumed {args.cuda_context_mib:.0f} MiB (context, cuBLAS/cuDNN): "
             f"about {totals[32] + args.cuda_context_mib:.0f} MiB in all at batch 32.", ""]
    if measured["available"]:
        lines.append(f"Measured on this GPU (process total after all models and runs): {measured['total_mib']} MiB.")
    else:
        lines.append(f"Not measured on a GPU: {measured['why']}.")
    lines += ["", f"Machine: {machine()['cpu']}; text length {args.text_len} tokens, audio {args.audio_s} s."]
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    data = {"machine": machine(), "text_len": args.text_len, "audio_s": args.audio_s,
            "models": [asdict(e) for e in estimates], "total_mib": totals, "no_reuse_total_mib": upper,
            "cuda_context_mib_assumed": args.cuda_context_mib, "measured": measured}
    write("vram", data, markdown, **({"out": args.out} if args.out else {}))


if __name__ == "__main__":
    main()
