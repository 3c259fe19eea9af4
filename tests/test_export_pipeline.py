"""The whole export pipeline on a small subset (about a minute on 2 cores)."""

import csv
import json
import random

import numpy as np
import pytest

pytest.importorskip("torch")

from edge.bundle import Bundle
from edge.nlu import IntentModel
from edge.nlu.engines import open_engine
from edge.nlu.labelled import read_corpus
from export.corpus import augment, split_by_family
from export.pipeline import ExportOptions, run
from tests.conftest import CORPUS_DIR

PER_LABEL = 16


def _write_seed_csv(path, examples):
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["transcript", "intent_label"])
        for e in examples:
            writer.writerow([e.text, "|".join(e.labels)])


@pytest.fixture(scope="module")
def user_split(tmp_path_factory):
    """A user's own data in the seed's two-column format: train.csv + test.csv."""
    split = split_by_family(read_corpus([CORPUS_DIR]), dev=0.0, test=0.2, seed=7)
    rng = random.Random(7)

    def take(examples, n):
        by_label = {}
        for e in examples:
            by_label.setdefault(e.labels, []).append(e)
        return [x for group in sorted(by_label) for x in rng.sample(by_label[group], min(n, len(by_label[group])))]

    root = tmp_path_factory.mktemp("user")
    train, test = take(split.train, PER_LABEL), take(split.test, 8)
    _write_seed_csv(root / "train.csv", train)
    _write_seed_csv(root / "test.csv", test)
    return root


@pytest.fixture(scope="module")
def exported(user_split, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "intent"
    manifest = run(ExportOptions(corpus=[str(user_split / "train.csv")], test=str(user_split / "test.csv"),
                                 out=str(out), teacher_epochs=2, student_epochs=15, synthetic_compounds=80,
                                 progress=False))
    return out, manifest


def test_manifest_records_every_stage(exported):
    out, manifest = exported
    for stage in ("ngram_svm_baseline", "teacher_bert", "teacher_ensemble", "student_fp32",
                  "student_int8_onnxruntime", "student_int8_openvino"):
        assert 0.0 <= manifest["metrics"][stage]["macro_f1"] <= 1.0
    assert manifest["build"]["corpus_sha256"] and manifest["build"]["options"]["seed"] == 1234
    assert manifest["build"]["quantization"]["onnxruntime"]["chosen"] in ("dynamic", "static")
    bundle = Bundle.open(out, kind="intent")  # every file hashed and present
    assert {"tokenizer.json", "labels.json", "student.int8.onnx", "openvino/student.int8.xml",
            "openvino/student.int8.bin", "student.onnx", "teacher.onnx"} <= set(bundle.manifest["files"])


def test_int8_agrees_with_fp32_student(exported, user_split):
    out, manifest = exported
    encoder = IntentModel.load(out).encoder
    texts = [e.text for e in read_corpus([user_split / "test.csv"])]
    feeds = encoder.encode(texts)
    assert "pinyin_ids" in feeds  # the default export has the pinyin channel
    threshold = manifest["decision"]["threshold"]
    cut = np.log(threshold / (1 - threshold))
    fp32 = open_engine("onnxruntime", out / "student.onnx").run(feeds)["logits"] >= cut
    for engine, name in (("onnxruntime", "student.int8.onnx"), ("openvino", "openvino/student.int8.xml")):
        int8 = open_engine(engine, out / name).run(feeds)["logits"] >= cut
        agreement = np.mean(np.all(int8 == fp32, axis=1))
        assert agreement >= 0.95, (engine, agreement)


def test_bundle_round_trips_through_runtime(exported):
    out, manifest = exported
    for engine in ("onnxruntime", "openvino"):
        model = IntentModel.load(out, engine=engine)
        assert model.labels == manifest["labels"]
        assert model.threshold == manifest["decision"]["threshold"]
        result = model.predict(["你们这个软件一年多少钱"])[0]
        assert result.label in model.labels


def test_student_learns_something(exported):
    """Far above chance (1/23) even on this small subset and few epochs."""
    _, manifest = exported
    accuracy = manifest["metrics"]["student_int8_onnxruntime"]["accuracy"]
    assert accuracy > 0.3, accuracy


def test_test_labels_must_be_seen(tmp_path, user_split):
    from edge.errors import CorpusError
    from export.corpus import load_split

    odd = tmp_path / "odd.csv"
    odd.write_text("transcript,intent_label\n这个东西不错,never_seen\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="never seen in training"):
        load_split([str(user_split / "train.csv")], str(odd))


def test_split_by_family_never_leaks():
    split = split_by_family(read_corpus([CORPUS_DIR]))
    families = [{e.family for e in part} for part in (split.train, split.dev, split.test)]
    assert not families[0] & families[1] and not families[0] & families[2] and not families[1] & families[2]
    labels = lambda part: {l for e in part for l in e.labels}
    assert labels(split.test) == labels(split.train)


def test_train_extra_joins_training_only(tmp_path):
    from edge.errors import CorpusError
    from export.corpus import add_train_extra, load_split

    split, labels = load_split([CORPUS_DIR])
    test_row = split.test[0]
    extra = tmp_path / "extra.csv"
    extra.write_text("transcript,intent_label,dialect,family\n"
                     "呢个几多钱一年,ask_price,cantonese,x-1\n"
                     f"{test_row.text},{test_row.labels[0]},mandarin,x-2\n", encoding="utf-8")
    merged, counts = add_train_extra(split, [str(extra)], labels)
    assert counts == {"rows": 2, "kept": 1, "dropped_as_corpus_rows": 1}  # the test row must not be trained on
    assert [e.text for e in merged.train[len(split.train):]] == ["呢个几多钱一年"]
    assert merged.dev == split.dev and merged.test == split.test
    extra.write_text("transcript,intent_label\n呢个几多钱一年,made_up\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="made_up"):
        add_train_extra(split, [str(extra)], labels)


def test_augment_makes_compounds_and_noise():
    rng = random.Random(0)
    items = [("多少钱", ("ask_price",)), ("你是谁", ("who_are_you",)), ("嗯哼", ("other",))]
    out = augment(items, ["ask_price", "who_are_you", "other"], rng, copies=2, compounds=5)
    assert len(out) == 6 + 5
    assert all(len(l) == 2 and "other" not in l for _, l in out[6:])


def test_init_teacher_from_local_checkpoint(tmp_path, user_split):
    """--init with a tiny BERT checkpoint the test writes (no hub involved)."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    ckpt = tmp_path / "tiny-bert"
    ckpt.mkdir()
    chars = sorted({ch for e in read_corpus([user_split / "train.csv"]) for ch in e.text})
    (ckpt / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]) + "\n",
                                    encoding="utf-8")
    BertTokenizerFast(vocab_file=str(ckpt / "vocab.txt")).save_pretrained(ckpt)
    config = BertConfig(vocab_size=5 + len(chars), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertForSequenceClassification(config).save_pretrained(ckpt)
    manifest = run(ExportOptions(corpus=[str(user_split / "train.csv")], test=str(user_split / "test.csv"),
                                 out=str(tmp_path / "out"), init=str(ckpt), teacher_epochs=1, student_epochs=1,
                                 synthetic_compounds=0, max_per_label=6, slim=True, progress=False))
    assert manifest["build"]["teacher"]["init"] == str(ckpt)
    assert "student.onnx" not in manifest["files"]  # --slim keeps only runtime files
    assert IntentModel.load(tmp_path / "out").predict(["多少钱"])[0].label in manifest["labels"]


def test_init_without_checkpoint_is_clear(tmp_path, user_split):
    from edge.errors import BundleError

    with pytest.raises(BundleError, match="no config.json"):
        run(ExportOptions(corpus=[str(user_split / "train.csv")], out=str(tmp_path / "o"), init=str(tmp_path),
                          teacher_epochs=1, student_epochs=1, max_per_label=4, progress=False))
