"""Tiny hand-built ONNX models in sherpa-onnx's layouts, for loader and validation tests.

The "acoustic model" is one linear map on the fbank: loud frames emit token 1,
quiet frames the blank, so each stretch of speech decodes to one token. It
checks the plumbing (VAD segments, batching, timestamps), not recognition.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _graph(vocab: int, nemo: bool):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.zeros((80, vocab), np.float32)
    w[:, 1] = 1.0 / 80
    b = np.zeros(vocab, np.float32)
    b[0] = -10.0  # blank wins unless the mean log-mel is above -10 (speech; digital silence is -15.9)
    b[2:] = -50.0
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B"),
             numpy_helper.from_array(np.array([0], np.int64), "start"),
             numpy_helper.from_array(np.array([1 << 30], np.int64), "end"),
             numpy_helper.from_array(np.array([1], np.int64), "axis"),
             numpy_helper.from_array(np.array([4], np.int64), "step"),
             numpy_helper.from_array(np.array(3, np.int64), "three"),
             numpy_helper.from_array(np.array(4, np.int64), "four")]
    nodes = []
    if nemo:  # NeMo layout: audio_signal [N, 80, T], length [N] -> logprobs [N, T', V]
        inputs = [helper.make_tensor_value_info("audio_signal", TensorProto.FLOAT, ["N", 80, "T"]),
                  helper.make_tensor_value_info("length", TensorProto.INT64, ["N"])]
        nodes.append(helper.make_node("Transpose", ["audio_signal"], ["x"], perm=[0, 2, 1]))
        lens_in, outputs = "length", ["logprobs", "encoded_lengths"]
    else:
        inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "T", 80]),
                  helper.make_tensor_value_info("x_lens", TensorProto.INT64, ["N"])]
        lens_in, outputs = "x_lens", ["log_probs", "log_probs_len"]
    nodes += [helper.make_node("Slice", ["x", "start", "end", "axis", "step"], ["xs"]),
              helper.make_node("MatMul", ["xs", "W"], ["mm"]),
              helper.make_node("Add", ["mm", "B"], ["logits"]),
              helper.make_node("LogSoftmax", ["logits"], [outputs[0]], axis=-1),
              helper.make_node("Add", [lens_in, "three"], ["l3"]),
              helper.make_node("Div", ["l3", "four"], [outputs[1]])]
    graph = helper.make_graph(nodes, "fake_ctc", inputs, [
        helper.make_tensor_value_info(outputs[0], TensorProto.FLOAT, ["N", "T4", vocab]),
        helper.make_tensor_value_info(outputs[1], TensorProto.INT64, ["N"])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def fake_ctc_dir(out: Path, kind: str = "zipformer_ctc", metadata: dict[str, str] | None = None,
                 tokens: str = "<blk> 0\n嗯 1\n好 2\n") -> Path:
    """A model directory: model.onnx + tokens.txt; ``kind`` "zipformer_ctc" or "nemo_ctc"."""
    import onnx

    out.mkdir(parents=True, exist_ok=True)
    vocab = len(tokens.strip().splitlines())
    model = _graph(vocab, nemo=kind == "nemo_ctc")
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(out / "model.onnx"))
    (out / "tokens.txt").write_text(tokens, encoding="utf-8")
    return out


ONLINE_METADATA = {"model_type": "zipformer2", "encoder_dims": "8", "query_head_dims": "2", "value_head_dims": "2",
                   "num_heads": "2", "num_encoder_layers": "1", "cnn_module_kernels": "3", "left_context_len": "4",
                   "T": "39", "decode_chunk_len": "32"}


def fake_online_ctc_dir(out: Path, metadata: dict[str, str] | None = None,
                        tokens: str = "<blk> 0\n嗯 1\n好 2\n") -> Path:
    """A streaming zipformer2-CTC directory in sherpa-onnx's layout: x [N, 39, 80] plus the 8 state
    tensors one encoder layer implies; states pass through, the frames go through the linear map."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    vocab = len(tokens.strip().splitlines())
    w = np.zeros((80, vocab), np.float32)
    w[:, 1] = 1.0 / 80
    b = np.zeros(vocab, np.float32)
    b[0], b[2:] = -10.0, -50.0
    states = [("cached_key", [4, "N", 4]), ("cached_nonlin_attn", [1, "N", 4, 6]), ("cached_val1", [4, "N", 4]),
              ("cached_val2", [4, "N", 4]), ("cached_conv1", ["N", 8, 1]), ("cached_conv2", ["N", 8, 1]),
              ("embed_states", ["N", 128, 3, 19])]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 39, 80])]
    inputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in states]
    inputs.append(helper.make_tensor_value_info("processed_lens", TensorProto.INT64, ["N"]))
    names = [name for name, _ in states] + ["processed_lens"]
    nodes = [helper.make_node("Slice", ["x", "start", "end", "axis", "step"], ["xs"]),
             helper.make_node("MatMul", ["xs", "W"], ["mm"]),
             helper.make_node("Add", ["mm", "B"], ["logits"]),
             helper.make_node("LogSoftmax", ["logits"], ["log_probs"], axis=-1)]
    nodes += [helper.make_node("Identity", [name], [f"new_{name}"]) for name in names]
    outputs = [helper.make_tensor_value_info("log_probs", TensorProto.FLOAT, ["N", 8, vocab])]
    outputs += [helper.make_tensor_value_info(f"new_{name}", TensorProto.FLOAT, shape) for name, shape in states]
    outputs.append(helper.make_tensor_value_info("new_processed_lens", TensorProto.INT64, ["N"]))
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B"),
             numpy_helper.from_array(np.array([0], np.int64), "start"),
             numpy_helper.from_array(np.array([32], np.int64), "end"),
             numpy_helper.from_array(np.array([1], np.int64), "axis"),
             numpy_helper.from_array(np.array([4], np.int64), "step")]
    model = helper.make_model(helper.make_graph(nodes, "fake_online_ctc", inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    for key, value in (ONLINE_METADATA if metadata is None else metadata).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    out.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out / "model.onnx"))
    (out / "tokens.txt").write_text(tokens, encoding="utf-8")
    return out
