"""Tell what a speech model directory holds, and check it before any engine loads it.

sherpa-onnx kills the whole process (exit 255) when a metadata key it reads
is missing, and vosk aborts on a missing file; so every directory is checked
here first, and a problem becomes a ModelDirError naming the file or key.
"""

from __future__ import annotations

import functools
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from edge.bundle import MANIFEST, Bundle
from edge.errors import ModelDirError

_LOGGER = logging.getLogger(__name__)

_ZIPFORMER2: Final = ("encoder_dims", "query_head_dims", "value_head_dims", "num_heads", "num_encoder_layers",
                      "cnn_module_kernels", "left_context_len", "T", "decode_chunk_len")
REQUIRED_METADATA: Final = {
    "zipformer_ctc": (),
    "nemo_ctc": ("vocab_size", "subsampling_factor"),
    "paraformer": ("vocab_size", "lfr_window_size", "lfr_window_shift", "neg_mean", "inv_stddev"),
    "sense_voice": ("vocab_size", "lfr_window_size", "lfr_window_shift", "normalize_samples", "with_itn",
                    "without_itn", "lang_auto", "lang_zh", "lang_en", "lang_ja", "lang_ko", "lang_yue", "neg_mean",
                    "inv_stddev"),
    "online_zipformer2_ctc": _ZIPFORMER2,
    "online_paraformer": ("vocab_size", "lfr_window_size", "lfr_window_shift", "encoder_output_size",
                          "decoder_num_blocks", "decoder_kernel_size", "neg_mean", "inv_stddev"),
    "transducer": (),
    "online_transducer": ("model_type",),
}
"""Metadata sherpa-onnx reads without a default, per model kind (on the model or encoder file)."""
_DECODER_METADATA: Final = ("vocab_size", "context_size")
STREAMING_KINDS: Final = ("online_zipformer2_ctc", "online_paraformer", "online_transducer")
_VOSK_FILES: Final = ("am/final.mdl", "conf/model.conf")


@dataclass(frozen=True)
class ModelDir:
    """A checked model directory."""

    root: Path
    backend: str
    """"sherpa-onnx" or "vosk"."""
    kind: str
    """sherpa-onnx model kind (a key of REQUIRED_METADATA) or "vosk"."""
    files: dict[str, Path] = field(default_factory=dict)
    """Role ("model", "encoder", "decoder", "joiner", "tokens", ...) -> file."""
    manifest: dict | None = None
    """The bundle manifest, for built-in/exported bundles."""
    graphs: dict[str, Path] = field(default_factory=dict)
    """Language code -> decoding graph (a bundle's ``decoding`` section; export/asr/graph.py)."""

    @property
    def streaming(self) -> bool:
        return self.kind in STREAMING_KINDS


def inspect(root: str | Path, verify: bool = True) -> ModelDir:
    """Identify and check a model directory.

    Args:
        root: a bundle (manifest.json), a sherpa-onnx model directory or a vosk model directory.
        verify: check the sha256 of every file a bundle manifest lists.

    Raises:
        ModelDirError: not a directory, a required file or metadata key missing (named in the message),
            or a layout no backend understands.
        BundleError: a bundle whose manifest or checksums are wrong.
    """
    root = Path(root)
    if not root.is_dir():
        raise ModelDirError(f"speech model directory not found: {root} (install one with `salesbot models add`)")
    if (root / MANIFEST).is_file():
        return _from_bundle(root, verify)
    if any((root / name).exists() for name in ("am", "conf", "graph")):
        return _vosk(root)
    return _sherpa(root)


def _from_bundle(root: Path, verify: bool) -> ModelDir:
    bundle = Bundle.open(root, kind="asr", verify=verify)
    model = bundle.manifest.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("files"), dict):
        raise ModelDirError(f"{root}/{MANIFEST}: no 'model' section with 'files'; re-export the bundle")
    kind, backend = model.get("kind"), model.get("backend", "sherpa-onnx")
    if backend != "sherpa-onnx" or kind not in REQUIRED_METADATA:
        raise ModelDirError(f"{root}/{MANIFEST}: unsupported model {backend}/{kind}")
    files = {role: bundle.path(name) for role, name in model["files"].items()}
    _require_files(root, files)
    _check_sherpa(root, kind, files)
    graphs = _bundle_graphs(bundle, kind, files["tokens"])
    return ModelDir(root=root, backend=backend, kind=kind, files=files, manifest=bundle.manifest, graphs=graphs)


def _bundle_graphs(bundle: Bundle, kind: str, tokens: Path) -> dict[str, Path]:
    named = bundle.manifest.get("decoding", {}).get("graphs", {})
    if not named:
        return {}
    where = f"{bundle.root}/{MANIFEST}"
    if kind != "zipformer_ctc" or not isinstance(named, dict):
        raise ModelDirError(f"{where}: decoding graphs are only read for a zipformer_ctc model, as a "
                            "language -> file mapping; re-export the bundle")
    listed = bundle.manifest.get("files", {})
    graphs = {}
    for language, name in named.items():
        # only files the manifest lists (and so checks by sha256), inside the bundle
        if not isinstance(name, str) or name not in listed or Path(name).name != name:
            raise ModelDirError(f"{where}: decoding graph {language!r} -> {name!r} is not a file of the bundle")
        graphs[language] = bundle.path(name)
        _check_graph_once(str(graphs[language]), *_stamp(graphs[language]), _token_count(tokens))
    return graphs


@functools.lru_cache(maxsize=16)
def _check_graph_once(path: str, _mtime: int, _size: int, tokens: int) -> None:
    """check_graph, once per file version: each recognizer opened re-inspects its bundle."""
    check_graph(Path(path), tokens)


def _token_count(tokens: Path) -> int:
    return sum(1 for line in tokens.read_text(encoding="utf-8").splitlines() if line.strip())


FST_MAGIC: Final = 0x7EB2FDD6
"""First four bytes of an OpenFST binary file (export/asr/graph.py writes them too)."""


def check_graph(path: Path, tokens: int) -> None:
    """A CTC decoding graph sherpa-onnx can read: an OpenFST "vector" file of "standard" arcs, read to its
    last byte, whose input labels are tokens (id + 1) and whose arcs stay inside it. sherpa-onnx only logs a
    graph it cannot read and then decodes through nothing; this refuses it first.

    Raises:
        ModelDirError: naming the file and what is wrong.
    """
    data = path.read_bytes()
    try:
        magic, offset = struct.unpack_from("<i", data)[0], 4
        texts = []
        for _ in range(2):
            size = struct.unpack_from("<i", data, offset)[0]
            texts.append(data[offset + 4:offset + 4 + size])
            offset += 4 + size
        _version, flags, _props, start, states, _arcs = struct.unpack_from("<iiQqqq", data, offset)
        offset += 40
        if magic != FST_MAGIC or texts != [b"vector", b"standard"] or flags != 0 or not 0 <= start < states:
            raise ModelDirError(f"{path}: not an OpenFST vector graph of standard arcs with a start state")
        arcs_of = struct.Struct("<q").unpack_from
        starts, counts = [], []
        for _ in range(states):
            count = arcs_of(data, offset + 4)[0]
            if count < 0:
                raise struct.error("negative arc count")
            starts.append(offset + 12)
            counts.append(count)
            offset += 12 + 16 * count
    except struct.error:
        offset = len(data) + 1
    if offset > len(data):
        raise ModelDirError(f"{path}: truncated decoding graph; re-export the bundle")
    if offset != len(data):
        raise ModelDirError(f"{path}: {len(data) - offset} bytes after the graph's last state; re-export the bundle")
    counts_a = np.asarray(counts, np.int64)
    first = np.repeat(np.asarray(starts, np.int64) - 16 * (np.cumsum(counts_a) - counts_a), counts_a)
    arc_at = first + 16 * np.arange(len(first))
    raw = np.frombuffer(data, np.uint8)

    def int32_at(at: int) -> np.ndarray:  # arcs are not 4-byte aligned in the file
        return raw[(arc_at + at)[:, None] + np.arange(4)].copy().view("<i4").ravel()

    labels, targets = int32_at(0), int32_at(12)
    if len(labels) and (labels.min() < 0 or labels.max() > tokens or targets.min() < 0 or targets.max() >= states):
        raise ModelDirError(f"{path}: arcs with labels beyond the {tokens} tokens or states beyond the graph")


def _vosk(root: Path) -> ModelDir:
    missing = [name for name in _VOSK_FILES if not (root / name).is_file()]
    graph = root / "graph"
    if not ((graph / "HCLG.fst").is_file() or ((graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file())):
        missing.append("graph/HCLG.fst (or graph/HCLr.fst + graph/Gr.fst)")
    if missing:
        raise ModelDirError(f"{root}: vosk model is missing {', '.join(missing)}; unpack the complete model archive")
    return ModelDir(root=root, backend="vosk", kind="vosk", files={"model": root})


def _pick(root: Path, pattern: str) -> Path | None:
    """The file for a role; an INT8 variant wins when both are present."""
    candidates = sorted(root.glob(pattern))
    if not candidates:
        return None
    int8 = [p for p in candidates if ".int8." in p.name]
    chosen = (int8 or candidates)[0]
    if len(candidates) > 1:
        _LOGGER.debug("%s: several %s; using %s", root, pattern, chosen.name)
    return chosen


def _sherpa(root: Path) -> ModelDir:
    tokens = root / "tokens.txt"
    onnx = sorted(root.glob("*.onnx"))
    if not onnx:
        raise ModelDirError(f"{root}: no .onnx model file and no vosk layout (am/, conf/, graph/); "
                            "is this a speech model directory?")
    if not tokens.is_file():
        raise ModelDirError(f"{root}: missing tokens.txt (sherpa-onnx models need it beside the .onnx files)")
    encoder, decoder, joiner = (_pick(root, f"{role}*.onnx") for role in ("encoder", "decoder", "joiner"))
    files: dict[str, Path] = {"tokens": tokens}
    if encoder or decoder or joiner:
        for role, path in (("encoder", encoder), ("decoder", decoder)):
            if path is None:
                raise ModelDirError(f"{root}: missing {role}*.onnx (found {', '.join(p.name for p in onnx)})")
            files[role] = path
        meta = read_metadata(encoder)
        if joiner is not None:
            files["joiner"] = joiner
            kind = "online_transducer" if ("decode_chunk_len" in meta or "T" in meta) else "transducer"
        else:
            kind = "online_paraformer"
    else:
        model = _pick(root, "model*.onnx") or onnx[0]
        files["model"] = model
        kind = _single_file_kind(model, read_metadata(model))
    _check_sherpa(root, kind, files)
    return ModelDir(root=root, backend="sherpa-onnx", kind=kind, files=files)


def _single_file_kind(model: Path, meta: dict[str, str]) -> str:
    if "lang_zh" in meta or "with_itn" in meta:
        return "sense_voice"
    if "lfr_window_size" in meta:
        return "paraformer"
    if any(key in meta for key in ("decode_chunk_len", "T", "encoder_dims")):
        return "online_zipformer2_ctc"
    if any(key in meta for key in ("vocab_size", "subsampling_factor", "normalize_type", "is_giga_am")):
        return "nemo_ctc"
    inputs = read_input_names(model)
    if inputs[:2] == ["x", "x_lens"]:
        return "zipformer_ctc"
    raise ModelDirError(f"{model}: cannot tell which sherpa-onnx model this is (metadata keys: "
                        f"{sorted(meta) or 'none'}, inputs: {inputs}); supported: "
                        f"{', '.join(sorted(REQUIRED_METADATA))}")


def _require_files(root: Path, files: dict[str, Path]) -> None:
    for role, path in files.items():
        if not path.is_file():
            raise ModelDirError(f"{root}: missing {path.name} ({role}); reinstall the model")


def _check_sherpa(root: Path, kind: str, files: dict[str, Path]) -> None:
    main = files.get("model") or files["encoder"]
    meta = read_metadata(main)
    missing = [key for key in REQUIRED_METADATA[kind] if key not in meta]
    if kind == "online_transducer" and meta.get("model_type") == "zipformer2":
        missing += [key for key in _ZIPFORMER2 if key not in meta]
    if missing:
        raise ModelDirError(f"{main}: metadata key(s) {', '.join(missing)} missing, which sherpa-onnx needs for a "
                            f"{kind} model (it would abort the process); re-export the model with its metadata")
    if kind in ("transducer", "online_transducer"):
        decoder_meta = read_metadata(files["decoder"])
        missing = [key for key in _DECODER_METADATA if key not in decoder_meta]
        if missing:
            raise ModelDirError(f"{files['decoder']}: metadata key(s) {', '.join(missing)} missing "
                                "(sherpa-onnx needs them); re-export the model with its metadata")
    _check_tokens(files["tokens"])


def _check_tokens(path: Path) -> None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ModelDirError(f"{path}: not UTF-8 text") from None
    for number, line in enumerate(lines, 1):
        parts = line.rsplit(" ", 1) if line.strip() else []
        if len(parts) != 2 or not parts[1].isdigit():
            raise ModelDirError(f"{path}:{number}: expected 'symbol id', got {line!r}")
    if not lines:
        raise ModelDirError(f"{path}: empty token list")


def read_metadata(path: Path) -> dict[str, str]:
    """Custom metadata of an ONNX file (read with onnxruntime, never with sherpa-onnx)."""
    return dict(_describe(str(path), *_stamp(path))[0])


def read_input_names(path: Path) -> list[str]:
    return list(_describe(str(path), *_stamp(path))[1])


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=16)
def _describe(path: str, _mtime: int, _size: int) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelDirError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None
    meta = tuple(sorted(session.get_modelmeta().custom_metadata_map.items()))
    return meta, tuple(i.name for i in session.get_inputs())
