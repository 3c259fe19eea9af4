"""The recognizer interface, model-directory checks and the sherpa-onnx plumbing (with a fake model)."""

import numpy as np
import pytest

from edge import asr
from edge.asr.modeldir import REQUIRED_METADATA
from edge.config import AsrConfig
from edge.errors import AudioFormatError, ConfigError, ModelDirError
from edge.tts.espeak import EspeakSettings, speak

pytest.importorskip("onnx")
from tests.helpers.fake_models import fake_ctc_dir  # noqa: E402


def _call(*texts: str, gap_s: float = 1.0) -> np.ndarray:
    silence = np.zeros(int(16000 * gap_s), np.int16)
    parts = [silence]
    for text in texts:
        parts += [speak(text, EspeakSettings("cmn")), silence]
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def fake_dir(tmp_path_factory):
    return fake_ctc_dir(tmp_path_factory.mktemp("fake") / "ctc")


def test_fake_ctc_is_detected_and_segmented_by_vad(fake_dir):
    model = asr.inspect(fake_dir)
    assert (model.backend, model.kind, model.streaming) == ("sherpa-onnx", "zipformer_ctc", False)
    recognizer = asr.open(AsrConfig(model=fake_dir))
    finals = asr.transcribe(recognizer, _call("你好，请问您是王总吗", "我们的系统可以对接企业微信"), chunk_ms=100)
    assert len(finals) == 2  # two turns, cut by the silence between them
    first, second = finals
    assert first.is_final and set(first.text) == {"嗯"}
    assert 0.3 < first.start_s < first.end_s < second.start_s < second.end_s  # start_s includes the pre-roll
    assert len(first.timestamps) == len(first.tokens) == len(first.text)
    assert all(first.start_s <= t <= first.end_s for t in first.timestamps)
    assert recognizer.info == {"backend": "sherpa-onnx", "kind": "zipformer_ctc", "model": str(fake_dir),
                               "streaming": False, "rescoring": False, "language_graphs": []}


def test_partials_come_before_the_final(fake_dir):
    recognizer = asr.open(AsrConfig(model=fake_dir))
    stream = recognizer.stream()
    pcm = _call("我们的系统可以对接企业微信")
    seen = []
    for start in range(0, len(pcm), 1600):
        stream.accept(pcm[start:start + 1600])
        recognizer.decode([stream])
        seen += stream.results()
    stream.finish()
    while not stream.done:
        recognizer.decode([stream])
        seen += stream.results()
    kinds = [r.is_final for r in seen]
    assert kinds[-1] is True and kinds.count(True) == 1 and kinds.count(False) >= 2
    with pytest.raises(RuntimeError, match="after finish"):
        stream.accept(pcm[:10])


def test_many_streams_decode_together(fake_dir):
    recognizer = asr.open(AsrConfig(model=fake_dir, max_batch=4))
    pcm = _call("您好", "再见")
    streams = [recognizer.stream() for _ in range(10)]
    for stream in streams:
        stream.accept(pcm)
        stream.finish()
    while not all(s.done for s in streams):
        recognizer.decode(streams)
    texts = [[r.text for r in s.results() if r.is_final] for s in streams]
    assert all(t == texts[0] and len(t) == 2 for t in texts)


def test_streams_take_only_int16(fake_dir):
    stream = asr.open(AsrConfig(model=fake_dir)).stream()
    with pytest.raises(AudioFormatError, match="int16"):
        stream.accept(np.zeros(100, np.float32))


def test_missing_files_are_named(tmp_path, fake_dir):
    with pytest.raises(ModelDirError, match="speech model directory not found"):
        asr.open(AsrConfig(model=tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelDirError, match="no .onnx model file"):
        asr.inspect(empty)
    no_tokens = fake_ctc_dir(tmp_path / "nt")
    (no_tokens / "tokens.txt").unlink()
    with pytest.raises(ModelDirError, match="missing tokens.txt"):
        asr.inspect(no_tokens)
    bad_tokens = fake_ctc_dir(tmp_path / "bt", tokens="<blk> 0\nhello\n")
    with pytest.raises(ModelDirError, match=r"tokens.txt:2: expected 'symbol id'"):
        asr.inspect(bad_tokens)
    transducer = tmp_path / "tr"
    transducer.mkdir()
    (transducer / "tokens.txt").write_text("<blk> 0\n")
    (transducer / "encoder.onnx").write_bytes((fake_dir / "model.onnx").read_bytes())
    (transducer / "joiner.onnx").write_bytes((fake_dir / "model.onnx").read_bytes())
    with pytest.raises(ModelDirError, match=r"missing decoder\*\.onnx"):
        asr.inspect(transducer)


def test_missing_metadata_is_an_error_not_a_crash(tmp_path):
    partial = fake_ctc_dir(tmp_path / "nemo", "nemo_ctc", {"vocab_size": "3"})
    with pytest.raises(ModelDirError, match="metadata key.*subsampling_factor.*nemo_ctc"):
        asr.open(AsrConfig(model=partial))
    online = fake_ctc_dir(tmp_path / "online", metadata={"T": "39", "decode_chunk_len": "32"})
    with pytest.raises(ModelDirError, match="encoder_dims.*online_zipformer2_ctc"):
        asr.inspect(online)
    paraformer = fake_ctc_dir(tmp_path / "para", metadata={"lfr_window_size": "7"})
    with pytest.raises(ModelDirError, match="vocab_size.*lfr_window_shift"):
        asr.inspect(paraformer)
    assert set(REQUIRED_METADATA["sense_voice"]) >= {"lang_yue", "with_itn"}


def test_complete_nemo_ctc_loads(tmp_path):
    model = fake_ctc_dir(tmp_path / "nemo", "nemo_ctc", {"vocab_size": "3", "subsampling_factor": "4"})
    recognizer = asr.open(AsrConfig(model=model))
    assert recognizer.info["kind"] == "nemo_ctc"
    asr.transcribe(recognizer, _call("您好"))  # runs through sherpa-onnx without aborting


def test_unknown_onnx_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["a"], ["b"])], "g",
                              [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])])
    folder = tmp_path / "odd"
    folder.mkdir()
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(folder / "model.onnx"))
    (folder / "tokens.txt").write_text("<blk> 0\n")
    with pytest.raises(ModelDirError, match="cannot tell which sherpa-onnx model"):
        asr.inspect(folder)
    (folder / "model.onnx").write_bytes(b"not onnx")
    with pytest.raises(ModelDirError, match="not a loadable ONNX model"):
        asr.inspect(folder)


def test_backend_mismatch_is_a_config_error(fake_dir):
    with pytest.raises(ConfigError, match="is a sherpa-onnx model"):
        asr.open(AsrConfig(model=fake_dir, backend="vosk"))


def test_vad_detectors_are_reused(fake_dir):
    recognizer = asr.open(AsrConfig(model=fake_dir))
    asr.transcribe(recognizer, _call("您好"))
    assert len(recognizer._vad_pool) == 1
    stream = recognizer.stream()
    assert recognizer._vad_pool == []
    stream.finish()
    recognizer.decode([stream])
    assert stream.done and len(recognizer._vad_pool) == 1


def test_streaming_zipformer2_ctc_partials_and_endpoints(tmp_path):
    from tests.helpers.fake_models import fake_online_ctc_dir

    folder = fake_online_ctc_dir(tmp_path / "online")
    assert asr.inspect(folder).streaming
    recognizer = asr.open(AsrConfig(model=folder))
    assert recognizer.info["streaming"] is True
    pcm = _call("你好，请问您是王总吗", "我们的系统可以对接企业微信")
    streams = [recognizer.stream() for _ in range(3)]
    seen: list[list] = [[] for _ in streams]
    for start in range(0, len(pcm), 1600):
        for stream in streams:
            stream.accept(pcm[start:start + 1600])
        recognizer.decode(streams)
        for bucket, stream in zip(seen, streams):
            bucket += stream.results()
    for stream in streams:
        stream.finish()
    recognizer.decode(streams)
    for bucket, stream in zip(seen, streams):
        bucket += stream.results()
        assert stream.done
    finals = [r for r in seen[0] if r.is_final]
    assert len(finals) == 2 and any(not r.is_final for r in seen[0])
    assert finals[0].end_s <= finals[1].start_s + 1e-6 and finals[1].start_s < finals[1].timestamps[0]
    assert [r.text for r in seen[1] if r.is_final] == [r.text for r in finals]


def test_streaming_model_missing_a_state_key_is_refused(tmp_path):
    from tests.helpers.fake_models import ONLINE_METADATA, fake_online_ctc_dir

    meta = {k: v for k, v in ONLINE_METADATA.items() if k != "left_context_len"}
    with pytest.raises(ModelDirError, match="left_context_len"):
        asr.open(AsrConfig(model=fake_online_ctc_dir(tmp_path / "o", metadata=meta)))
