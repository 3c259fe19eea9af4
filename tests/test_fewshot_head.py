"""The few-shot head of the built-in bundle: loads, matches its manifest,
fails clearly when corrupt, is optional, and agrees with the export code."""

import json
import shutil

import numpy as np
import pytest

from edge.bundle import MANIFEST, sha256_file
from edge.config import DEFAULT_INTENT_DIR
from edge.errors import BundleError
from edge.nlu import FewShotIntentModel, FewShotStore, IntentModel
from edge.nlu.fewshot_head import MANIFEST_KEY

SENTENCES = ["你们这个多少钱", "能不能先试用一下", "我在开会 晚点再打", "聽日再打過嚟啦", "嗯"]


def _rewrite_manifest(root, change):
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    change(manifest)
    (root / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")


@pytest.fixture
def bundle_copy(tmp_path):
    root = tmp_path / "intent"
    shutil.copytree(DEFAULT_INTENT_DIR, root, ignore=shutil.ignore_patterns("openvino", "report"))
    _rewrite_manifest(root, lambda m: m.update(files={k: v for k, v in m["files"].items()
                                                       if not k.startswith(("openvino/", "report/"))}))
    return root


def test_head_loads_and_its_dim_matches_the_manifest():
    model = IntentModel.load(DEFAULT_INTENT_DIR)
    entry = model.bundle.manifest[MANIFEST_KEY]
    fewshot = FewShotIntentModel(model, FewShotStore(":memory:"))
    assert fewshot.head is not None and fewshot.head.dim == entry["dim"]
    vectors = fewshot.embed(SENTENCES)
    assert vectors.shape == (len(SENTENCES), entry["dim"])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert fewshot.head.centroids.shape == (len(model.labels), entry["dim"])
    assert entry["build"]["onnx_vs_torch_max_abs_diff"] < 1e-5
    assert entry["build"]["corpus"] == ["export/data/intents"] and entry["build"]["excluded_intents"] == []


def test_corrupt_head_file_is_refused_with_the_file_named(bundle_copy):
    head = bundle_copy / "fewshot_head.onnx"
    head.write_bytes(head.read_bytes()[:-100] + b"\0" * 100)
    with pytest.raises(BundleError, match="fewshot_head.onnx: sha256 mismatch"):
        IntentModel.load(bundle_copy)


def test_unloadable_head_with_matching_hash_is_a_bundle_error(bundle_copy):
    head = bundle_copy / "fewshot_head.onnx"
    head.write_bytes(b"not an onnx model")
    _rewrite_manifest(bundle_copy, lambda m: m["files"]["fewshot_head.onnx"].update(sha256=sha256_file(head)))
    model = IntentModel.load(bundle_copy)
    with pytest.raises(BundleError, match="fewshot_head.onnx: onnxruntime cannot load"):
        FewShotIntentModel(model, FewShotStore(":memory:"))


def test_head_dim_disagreeing_with_manifest_is_a_bundle_error(bundle_copy):
    _rewrite_manifest(bundle_copy, lambda m: m[MANIFEST_KEY].update(dim=m[MANIFEST_KEY]["dim"] + 1))
    with pytest.raises(BundleError, match="manifest says"):
        FewShotIntentModel(IntentModel.load(bundle_copy), FewShotStore(":memory:"))


def test_bundle_without_head_still_serves_few_shot_intents(bundle_copy):
    def drop(manifest):
        entry = manifest.pop(MANIFEST_KEY)
        for name in (entry["model"], entry["centroids"]):
            manifest["files"].pop(name)
    _rewrite_manifest(bundle_copy, drop)
    store = FewShotStore(":memory:")
    store.add("ask_invoice", ["能开发票吗", "发票怎么开", "可以开增值税专用发票吗", "你们开不开票", "能开普票吗"])
    fewshot = FewShotIntentModel(IntentModel.load(bundle_copy), store)
    assert fewshot.head is None  # the classifier's own embedding
    assert fewshot.embed(["能开票吗"]).shape[1] == IntentModel.load(bundle_copy).run(["能开票吗"])["embedding"].shape[1]
    assert fewshot.predict(["你们这个多少钱一年"])[0].label == "ask_price"


def test_runtime_embedding_matches_the_export_model(bundle_copy):
    """A head made by the export code, loaded by the runtime: same vectors as torch."""
    torch = pytest.importorskip("torch")
    from export.embedder import DIALECT_ALIASES, EmbedderConfig, FewShotEmbedder, export_onnx
    from export.fewshot_head import CENTROIDS_FILE, HEAD_FILE, _add_to_manifest
    from export.teacher import char_encoder

    model = IntentModel.load(bundle_copy)
    encode = char_encoder(model.encoder)
    embedder = FewShotEmbedder(EmbedderConfig(vocab_size=model.tokenizer.get_vocab_size(), aliases=DIALECT_ALIASES),
                               token_to_id=model.tokenizer.token_to_id)
    assert embedder.aliases_used["佢"] == "他"
    feeds = encode(SENTENCES)
    embedder.fit_idf([(feeds["input_ids"], feeds["attention_mask"])])
    with torch.no_grad():
        embedder.bag.log_weight.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
        expected = embedder(**encode(SENTENCES)).numpy()
    export_onnx(embedder, bundle_copy / HEAD_FILE)
    np.save(bundle_copy / CENTROIDS_FILE, np.zeros((len(model.labels), embedder.out_dim), dtype=np.float32))
    _add_to_manifest(bundle_copy, {"model": HEAD_FILE, "centroids": CENTROIDS_FILE, "output": "embedding",
                                   "dim": embedder.out_dim, "threshold_floor": 0.1, "build": {}})
    fewshot = FewShotIntentModel(IntentModel.load(bundle_copy), FewShotStore(":memory:"))
    assert np.abs(fewshot.embed(SENTENCES) - expected).max() < 1e-5


def test_shipped_head_reads_dialect_characters_as_mandarin():
    """佢唔喺度 (Cantonese) and 他不在度 are one bag in the head's space; the classifier still tells them apart."""
    model = IntentModel.load(DEFAULT_INTENT_DIR)
    fewshot = FewShotIntentModel(model, FewShotStore(":memory:"))
    cantonese, mandarin, other = fewshot.embed(["佢唔喺度", "他不在度", "你们多少钱"])
    assert float(cantonese @ mandarin) > 0.999
    assert float(cantonese @ other) < 0.5
    aliases = model.bundle.manifest[MANIFEST_KEY]["build"]["aliases_used"]
    assert aliases["佢"] == "他" and "系" not in aliases


def _cosine(fewshot, a, b):
    first, second = fewshot.embed([a, b])
    return float(first @ second)


def test_a_synonyms_head_reads_turns_through_the_lexicon(bundle_copy):
    """收费 and 价格 are one synonym group (edge/data/lexicon.yaml): one word for a "synonyms" head."""
    _rewrite_manifest(bundle_copy, lambda m: m[MANIFEST_KEY].update(text="plain"))
    plain = FewShotIntentModel(IntentModel.load(bundle_copy), FewShotStore(":memory:"))
    _rewrite_manifest(bundle_copy, lambda m: m[MANIFEST_KEY].update(text="synonyms"))
    synonyms = FewShotIntentModel(IntentModel.load(bundle_copy), FewShotStore(":memory:"))
    assert synonyms.head.text == "synonyms"
    assert _cosine(synonyms, "那个收费多少", "那个价格多少") > 0.999 > _cosine(plain, "那个收费多少", "那个价格多少")
    store = FewShotStore(":memory:")
    store.add("ask_cost", ["你们怎么收费", "收费标准是什么", "收费贵不贵"])
    fewshot = FewShotIntentModel(IntentModel.load(bundle_copy), store)
    assert np.allclose(fewshot.embed(["收费标准"]), synonyms.embed(["价格标准"]))  # same view for examples and turns


def test_an_unknown_text_view_is_a_bundle_error(bundle_copy):
    _rewrite_manifest(bundle_copy, lambda m: m[MANIFEST_KEY].update(text="pinyin"))
    with pytest.raises(BundleError, match="text 'pinyin' is not one of"):
        FewShotIntentModel(IntentModel.load(bundle_copy), FewShotStore(":memory:"))


def test_built_head_declares_its_text_view_and_lexicon(bundle_copy):
    pytest.importorskip("torch")
    from export import episodes
    from export.fewshot_head import build

    entry = build(bundle_copy, episode_config=episodes.EpisodeConfig(episodes=10, eval_every=10))
    assert entry["text"] == "synonyms" and len(entry["build"]["lexicon_sha256"]) == 64
    fewshot = FewShotIntentModel(IntentModel.load(bundle_copy), FewShotStore(":memory:"))
    assert _cosine(fewshot, "那个收费多少", "那个价格多少") > 0.999
    assert entry["build"]["onnx_vs_torch_max_abs_diff"] < 1e-5  # torch saw the same view as the runtime
