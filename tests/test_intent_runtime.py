"""The built-in bundle through both engines, as the appliance runs it."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from edge.config import DEFAULT_INTENT_DIR
from edge.errors import BundleError, InputError
from edge.nlu import IntentModel


@pytest.fixture(scope="module", params=["onnxruntime", "openvino"])
def model(request):
    return IntentModel.load(DEFAULT_INTENT_DIR, engine=request.param)


def test_clear_utterances(model):
    cases = {"你们这个软件多少钱": "ask_price", "别再给我打电话了": "complaint_do_not_call",
             "我现在在开会 晚点再打": "busy_call_later", "你是哪家公司的": "who_are_you"}
    results = model.predict(list(cases))
    assert [r.label for r in results] == list(cases.values())
    for r in results:
        assert 0.0 <= r.score <= 1.0 and set(r.scores) == set(model.labels) and r.labels[0] == r.label


def test_batch_equals_single(model):
    texts = ["多少钱", "能不能对接钉钉 还有价格怎么算", "", "今天天气真好啊", "喂"]
    batched = model.predict(texts)
    single = [model.predict([t])[0] for t in texts]
    for b, s in zip(batched, single):
        assert b.labels == s.labels
        # dynamic INT8 scales activations per batch, so padding and batch-mates move scores slightly
        assert np.allclose([b.scores[l] for l in model.labels], [s.scores[l] for l in model.labels], atol=5e-3)


def test_hostile_text_does_not_crash(model):
    texts = ["", "   ", "😀😀😀", "a" * 10_000, "多少钱" * 3000, "SELECT * FROM x; --", "\x00\x01\u202e",
             "hello how much is it", "價格幾多錢"]
    results = model.predict(texts)
    assert len(results) == len(texts)
    assert all(r.label in model.labels for r in results)


def test_predict_rejects_bare_string(model):
    with pytest.raises(InputError):
        model.predict("多少钱")
    assert model.predict([]) == []


def test_engines_agree():
    texts = ["你们这个多少钱一年", "我们已经用了钉钉了", "不需要谢谢", "加我微信发资料", "你说啥子哦 没听清"]
    ort = IntentModel.load(DEFAULT_INTENT_DIR, engine="onnxruntime").predict(texts)
    ov = IntentModel.load(DEFAULT_INTENT_DIR, engine="openvino").predict(texts)
    assert sum(a.label == b.label for a, b in zip(ort, ov)) >= len(texts) - 1


def test_runtime_never_imports_torch():
    code = ("import sys; from edge.nlu import IntentModel; m = IntentModel.load(); m.predict(['多少钱']);"
            "IntentModel.load(engine='openvino').predict(['多少钱']);"
            "bad = [n for n in ('torch', 'transformers', 'sklearn') if n in sys.modules]; print(bad); sys.exit(bool(bad))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_corrupt_model_file_is_refused(tmp_path):
    root = tmp_path / "intent"
    shutil.copytree(DEFAULT_INTENT_DIR, root)
    manifest = json.loads((root / "manifest.json").read_text())
    model_file = root / manifest["models"]["onnxruntime"]
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    with pytest.raises(BundleError, match="sha256 mismatch"):
        IntentModel.load(root)


def test_truncated_model_with_matching_manifest_is_refused(tmp_path):
    """A tampered manifest cannot make a broken ONNX file load: the engine refuses it."""
    from edge.bundle import sha256_file

    root = tmp_path / "intent"
    shutil.copytree(DEFAULT_INTENT_DIR, root)
    manifest = json.loads((root / "manifest.json").read_text())
    name = manifest["models"]["onnxruntime"]
    (root / name).write_bytes(b"\x08\x07garbage")
    manifest["files"][name]["sha256"] = sha256_file(root / name)
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="onnxruntime cannot load"):
        IntentModel.load(root)


def test_unknown_engine(tmp_path):
    with pytest.raises(BundleError, match="no model for engine"):
        IntentModel.load(DEFAULT_INTENT_DIR, engine="tensorrt")
