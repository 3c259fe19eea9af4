"""export/asr end to end on a tiny corpus (slow: synthesis, a short training run, export, scoring)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edge.asr.text import normalize
from edge.bundle import sha256_file
from edge.errors import CorpusError

pytest.importorskip("torch")
pytest.importorskip("kaldi_native_fbank")

ROOT = Path(__file__).resolve().parents[1]


def test_fbank_matches_what_sherpa_feeds_the_model():
    from export.asr.features import fbank

    pcm = (np.sin(np.arange(16000) / 16000 * 2 * np.pi * 440) * 8000).astype(np.int16)
    feats = fbank(pcm)
    assert feats.shape == (100, 80)  # snip_edges false: one frame per 10 ms
    assert np.argmax(feats[50]) < 20  # a 440 Hz tone lights a low mel bin


def test_phone_line_is_band_limited():
    from export.asr.augment import LineSettings, apply

    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(16000) * 3000).astype(np.int16)
    line = apply(noise, LineSettings(phone=True, snr_db=None, pad_ms=(0, 0)), rng)
    spectrum = np.abs(np.fft.rfft(line.astype(np.float32)))
    assert spectrum[4500:7500].mean() < 0.05 * spectrum[500:3000].mean()


def test_heldout_voices_never_train():
    from export.asr import voices

    assert not set(voices.TEST_VARIANTS) & set(voices.TRAIN_VARIANTS)
    assert not set(voices.TEST_RATES) & set(voices.TRAIN_RATES)
    assert not set(voices.TEST_PITCHES) & set(voices.TRAIN_PITCHES)


def test_more_voices_are_real_espeak_variants_never_used_by_the_held_out_test():
    """build data --more-voices: half its items draw a speaker from MORE_VARIANTS, the rest from the first
    eleven; none is a held-out voice, and espeak-ng has each one (an unknown variant would fall back silently
    to the default voice)."""
    import random

    from edge.tts.espeak import known_variants
    from export.asr import voices

    assert not set(voices.MORE_VARIANTS) & (set(voices.TEST_VARIANTS) | set(voices.TRAIN_VARIANTS))
    assert [v for v in voices.MORE_VARIANTS if v not in known_variants()] == []
    rng = random.Random(3)
    drawn = [voices.train_settings("cmn", rng, more_voices=True).voice.split("+")[-1] for _ in range(400)]
    more = sum(v in voices.MORE_VARIANTS for v in drawn)
    assert 150 < more < 250 and more + sum(v in voices.TRAIN_VARIANTS or v == "cmn" for v in drawn) == 400
    assert all(voices.train_settings("yue", rng).voice.split("+")[-1] not in voices.MORE_VARIANTS
               for _ in range(200))


def test_split_keeps_heldout_texts_out_of_training():
    from export.asr.texts import Utterance, split

    utterances = [Utterance(f"文本{i % 7}", "cmn", f"fam-{i % 13}") for i in range(60)]
    parts = split(utterances, test_fraction=0.3)
    assert parts.test and not {u.text for u in parts.train} & {u.text for u in parts.test}


def test_asr_holds_out_exactly_the_intent_models_test_sentences():
    """The NLU is measured on ASR transcripts of its test set: the ASR must never have heard those."""
    from edge.nlu.labelled import read_corpus
    from export.asr import texts
    from export.asr.build import CORPUS_DIR, held_out_groups
    from export.corpus import split_by_family

    utterances = texts.load_corpus(CORPUS_DIR) + texts.load_lines()
    parts = texts.split(utterances, held_groups=held_out_groups(CORPUS_DIR, utterances, 1234))
    nlu_test = {e.text for e in split_by_family(read_corpus([CORPUS_DIR]), seed=1234).test}
    trained = {u.text for u in parts.train}
    assert not nlu_test & trained
    assert {u.text for u in parts.test if not u.group.startswith("line-")} <= nlu_test
    assert any(u.group.startswith("line-") for u in parts.test)


@pytest.mark.slow
def test_tiny_export_end_to_end(tmp_path):
    from edge import asr
    from edge.config import AsrConfig
    from export.asr.build import main

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = ["transcript,intent_label,dialect,family"]
    for i, text in enumerate(["多少钱", "你们这个多少钱", "我在忙", "现在不方便", "有没有试用", "能对接钉钉吗",
                              "几多钱", "我而家好忙", "唔该", "发资料给我"]):
        dialect = "cantonese" if i in (6, 7, 8) else "mandarin"
        rows.append(f"{text},x,{dialect},fam-{i:03d}")
    (corpus / "a.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    work, out = tmp_path / "work", tmp_path / "bundle" / "asr"
    main(["data", "--work", str(work), "--corpus", str(corpus), "--concatenations", "20"])
    main(["train", "--work", str(work), "--budget-min", "0.3"])
    main(["export", "--work", str(work), "--out", str(out), "--limit", "2"])
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["kind"] == "asr" and set(manifest["files"]) == {"model.int8.onnx", "tokens.txt", "lexicon.tsv",
                                                                    "lexicon_yue.tsv", "lm.json", "lm_yue.json",
                                                                    "lm_cmn.json"}
    assert manifest["rescoring"]["lexicons"] == {"yue": "lexicon_yue.tsv"}
    assert "heldout_int8" in manifest["metrics"] and manifest["build"]["train"]["steps"] > 0
    assert (out.parent / "vad" / "manifest.json").is_file()
    recognizer = asr.open(AsrConfig(model=out))
    assert recognizer.info["kind"] == "zipformer_ctc" and recognizer.info["rescoring"]


def test_update_rescoring_adds_the_cantonese_table_to_an_older_bundle(tmp_path):
    """A bundle exported before the Cantonese table gets it, a retuned bonus and new held-out figures, and
    still verifies (every file's sha256 in the manifest)."""
    from edge.asr.modeldir import inspect
    from edge.asr.rescore import Rescorer
    from export.asr.build import CORPUS_DIR, asr_split
    from export.asr.bundle import update_rescoring

    bundle = tmp_path / "asr"
    shutil.copytree(ROOT / "edge/models/default/asr", bundle)
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    for name in ("lexicon_yue.tsv", "lm_yue.json", "lm_cmn.json"):
        (bundle / name).unlink(missing_ok=True)
        manifest["files"].pop(name, None)
    manifest["rescoring"] = {"files": ["lexicon.tsv", "lm.json"], "settings": {"keep_bonus": 3.0}}
    (bundle / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert Rescorer.from_bundle(inspect(bundle)).languages == ("cmn",)
    heldout = tmp_path / "heldout.json"
    heldout.write_text(json.dumps({
        "tuning": [{"text": "多少钱", "lang": "cmn", "group": "a"}, {"text": "几多钱", "lang": "yue", "group": "b"}],
        "test": [{"text": "我在忙", "lang": "cmn", "group": "c"}, {"text": "听日得闲", "lang": "yue", "group": "d"}]},
        ensure_ascii=False), encoding="utf-8")
    train = [u.__dict__ for u in asr_split(CORPUS_DIR, 1234)[1].train]
    with pytest.raises(ValueError, match="not counted from these training texts"):
        update_rescoring(bundle, tmp_path / "work", train[:-1], heldout=heldout)
    update_rescoring(bundle, tmp_path / "work", train, heldout=heldout)
    model = inspect(bundle)  # verifies the sha256 of every file
    assert Rescorer.from_bundle(model).languages == ("cmn", "yue")
    updated = model.manifest
    assert updated["rescoring"]["lexicons"] == {"yue": "lexicon_yue.tsv"}
    assert updated["rescoring"]["lms"] == {"yue": "lm_yue.json", "cmn": "lm_cmn.json"}
    assert updated["metrics"]["heldout_int8"]["all"]["sentences"] == 4  # 2 texts x clean/phone
    assert updated["rescoring"]["settings"]["keep_bonus"] == updated["metrics"]["rescoring_tuning"]["keep_bonus"]


def test_text_only_lines_never_overlap_a_held_out_text(tmp_path, monkeypatch):
    from export.asr import lexicon, texts

    extra = tmp_path / "lm_texts_yue.txt"
    extra.write_text("# comment\n听日见\n听日见啦 唔该\n后日下昼得闲\n得闲\n\n", encoding="utf-8")
    monkeypatch.setitem(texts.LM_TEXT_FILES, "yue", extra)
    kept, dropped = texts.lm_texts("yue", ["听日见", "得"])
    # equal to a held-out text, or containing one of 3+ characters: dropped; a 1-character one does not count
    assert kept == ["后日下昼得闲", "得闲"] and dropped == 2
    assert texts.lm_texts("xx", []) == ([], 0)
    files = lexicon.write_language_lms(tmp_path, [{"text": "几多钱", "lang": "yue"}, {"text": "多少钱", "lang": "cmn"}],
                                       ["听日见"])
    counts = json.loads(files["lm_yue.json"].read_text(encoding="utf-8"))["counts"]
    assert "下昼" in counts[1] and "几多" in counts[1] and "多少" not in counts[1] and "日见" not in counts[1]


def test_shipped_text_only_lines_are_clean_and_spelled_as_the_corpus():
    """What the n-grams count must look like what the model writes: Chinese characters, Latin letters (CRM,
    APP: the model has them) and single spaces; no digits (the model writes 三点, never 3点) and no punctuation
    (normalize would drop it and join the words around it); no line twice; Cantonese spelled as the intent
    corpus spells it (俾 not 畀, 咁 not 噉: the other spelling in the n-gram pulled the rescoring away from
    the corpus's)."""
    import re

    from export.asr import texts

    for language, path in texts.LM_TEXT_FILES.items():
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
        assert len(lines) == len(set(lines)), f"{path.name}: repeated lines"
        word = r"[A-Za-z\u3400-\u9fff\U00020000-\U0002ffff]+"
        bad = [line for line in lines if not re.fullmatch(f"{word}( {word})*", line)]
        assert not bad, f"{path.name}: {bad[:5]}"
        if language == "yue":
            assert not [line for line in lines if "畀" in line or "噉" in line]


def test_text_only_lines_spoken_in_training_stay_clear_of_the_held_out_texts():
    """`build data --speak-lm-texts`: the shipped lines become training utterances of their language, less
    any that overlap a held-out text, so the held-out CER stays held out."""
    from export.asr.build import CORPUS_DIR, asr_split, lm_utterances
    from edge.asr.text import normalize
    from export.asr.texts import LM_TEXT_FILES

    _, parts = asr_split(CORPUS_DIR, 1234)
    spoken = lm_utterances([u.text for u in parts.test])
    held = [normalize(u.text) for u in parts.test]
    assert {u.lang for u in spoken} == set(LM_TEXT_FILES)
    long_held = [h for h in held if len(h) >= 3]
    assert not [u.text for u in spoken if u.text in held or any(h in u.text for h in long_held)]
    assert len({u.group for u in spoken}) == len(spoken)


def test_text_only_lines_spoken_in_training_stay_clear_of_the_evaluation_only_texts_too():
    from edge.asr.text import normalize
    from export.asr.build import CORPUS_DIR, asr_split, held_out_texts, lm_utterances
    from export.asr.texts import load_extra_heldout

    _, parts = asr_split(CORPUS_DIR, 1234)
    evaluation_only = [normalize(u.text) for u in load_extra_heldout([])[0]]
    held = held_out_texts(parts)
    assert set(evaluation_only) <= {normalize(t) for t in held}
    spoken = lm_utterances(held)
    assert not [u.text for u in spoken for e in evaluation_only if len(e) >= 3 and e in u.text]
    assert "我收线喇拜拜" in evaluation_only  # one that a text-only line contains (dropped from session 12's set)
    assert len(spoken) < len(lm_utterances([u.text for u in parts.test]))


def test_dictionary_runs_stay_in_the_vocabulary_and_clear_of_the_held_out_texts():
    """`build data --dictionary-runs N`: random runs of dictionary words, only in characters the model has
    (no new output symbols), half per voice, none containing a held-out text; the other items keep their
    seeds, so the rest of the training set renders exactly as without them."""
    from export.asr import dataset, texts

    vocab = list("统计回放包月价格多少钱我们的是不有没") + list("公司系统数据")
    words = texts.dictionary_words(vocab)
    assert "价格" in words and "数据" in words and all(set(w) <= set(vocab) and 2 <= len(w) <= 4 for w in words)
    runs = texts.dictionary_runs(vocab, ["系统数据", "价格"], 200, seed=3)
    assert len(runs) == 200 and {u.lang for u in runs} == {"cmn", "yue"}
    assert all(set(u.text) <= set(vocab) for u in runs)
    assert not [u.text for u in runs if "系统数据" in u.text]
    assert "价格" in "".join(u.text for u in runs)  # a 2-character held-out text is too short to count
    assert texts.dictionary_runs(vocab, [], 200, seed=3) != texts.dictionary_runs(vocab, [], 200, seed=4)
    train = [texts.Utterance("我们的价格", "cmn", "g1"), texts.Utterance("有没有数据", "cmn", "g2")]
    plain = dataset.plan(train, repeats=2, concatenations=3, seed=5)
    with_runs = dataset.plan(train, repeats=2, concatenations=3, seed=5, once=runs[:10])
    assert with_runs[:len(plain)] == plain and [i.text for i in with_runs[len(plain):]] == [u.text for u in runs[:10]]


def test_a_resampled_plan_keeps_a_random_share_and_hears_each_english_text_more_often():
    """`build data --sample-items N --latin-repeats K`: N planned items drawn at random (none invented), and
    K more renderings, each with its own seed, of every Mandarin text with English words; the same seed
    gives the same items."""
    from export.asr import dataset, texts

    spoken = [texts.Utterance("我们的CRM", "cmn", "g1"), texts.Utterance("有没有数据", "cmn", "g2"),
              texts.Utterance("发个PDF嚟", "yue", "g3"), texts.Utterance("价格多少", "cmn", "g4")]
    items = dataset.plan(spoken, repeats=3, concatenations=5, seed=5)
    out = dataset.resampled(items, spoken, 6, 2, seed=9)
    english = [i for i in out if i not in items]
    assert len(out) == 8 and len([i for i in out if i in items]) == 6
    assert [(i.text, i.lang) for i in english] == [("我们的CRM", "cmn")] * 2 and len({i.seed for i in english}) == 2
    assert out == dataset.resampled(items, spoken, 6, 2, seed=9) != dataset.resampled(items, spoken, 6, 2, seed=10)
    assert len(dataset.resampled(items, spoken, 100, 0, seed=9)) == len(items)  # a share larger than the plan: all


def test_widened_vocabulary_keeps_the_trained_ids_and_adds_common_characters_the_runs_carry():
    from export.asr import texts

    common = texts.common_characters()
    assert len(common) == 3755 and common[0] == "啊" and "补" in common and "嘅" not in common
    vocab = ["我", "价", "格", "嘅"]
    wider = texts.widened_vocabulary(vocab)
    assert wider[:4] == vocab and len(set(wider)) == len(wider)
    assert "补" in wider and set(wider[4:]) <= set(common)
    words = texts.dictionary_words(wider)
    assert set("".join(words)) >= set(wider[4:])  # every added character is in some word the runs can say


def test_a_widened_head_first_writes_what_it_wrote_before():
    import torch

    from export.asr.train import widen_head

    torch.manual_seed(0)
    state = {"head.weight": torch.randn(3, 4), "head.bias": torch.tensor([0.5, 1.0, 2.0]), "other": torch.ones(1)}
    vocab = ["再", "我", "在", "奇"]  # 在 sounds like 再 (the first of that sound); 奇 like nothing trained
    wide = widen_head(state, vocab, {"再": "tsai", "我": "wo", "在": "tsai", "奇": "tchi"}, handicap=2.0)
    assert wide["head.weight"].shape == (5, 4) and torch.equal(wide["head.weight"][:3], state["head.weight"])
    assert torch.equal(wide["head.weight"][3], state["head.weight"][1]) and wide["head.bias"][3] == -1.0
    assert not wide["head.weight"][4].any() and wide["head.bias"][4] == 0.5
    assert wide["other"] is state["other"]
    x = torch.randn(50, 4)
    sound_alike = widen_head(state, vocab[:3], {"再": "tsai", "在": "tsai"})
    before = (x @ state["head.weight"].T + state["head.bias"]).argmax(1)
    after = (x @ sound_alike["head.weight"].T + sound_alike["head.bias"]).argmax(1)
    assert torch.equal(before, after)  # a sound-alike copy never wins at first


def test_evaluation_only_texts_never_lie_inside_a_trainable_text(tmp_path):
    """heldout_extra.tsv: a text equal to, or inside, anything the recipe may speak in training is dropped;
    Traditional characters become Simplified, except those the training texts use themselves."""
    from export.asr import texts

    extra = tmp_path / "extra.tsv"
    extra.write_text("# comment\nyue\tx1\t我哋有二十幾個做銷售嘅\nyue\tx1\t你搵邊個呀\ncmn\tx2\t听日见\n"
                     "cmn\tx3\t明天下午我有空\n", encoding="utf-8")
    kept, dropped = texts.load_extra_heldout(["你好 听日见啦", "搵人", "明天下午我有空"], extra)
    assert dropped == 2  # 听日见 lies inside a known text; 明天下午我有空 equals one
    assert [(u.text, u.lang, u.group) for u in kept] == [("我哋有二十几个做销售嘅", "yue", "x1"),
                                                          ("你搵边个呀", "yue", "x1")]  # 搵 is known: kept
    extra.write_text("yue\tx1\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="extra.tsv:1"):
        texts.load_extra_heldout([], extra)


def test_the_shipped_evaluation_only_texts_are_held_out_and_split_by_group():
    from export.asr import texts
    from export.asr.build import CORPUS_DIR
    from export.asr.bundle import extra_heldout

    tuning, test = extra_heldout(CORPUS_DIR, 1234)
    known = {normalize(t) for t in texts.trainable_texts(CORPUS_DIR)}
    assert sum(t["lang"] == "yue" for t in tuning) >= 100 and sum(t["lang"] == "yue" for t in test) >= 100
    assert not {t["group"] for t in tuning} & {t["group"] for t in test}
    for item in tuning + test:
        key = normalize(item["text"])
        assert not any(key in k for k in known), item


def _exported_tiny_model(work: Path):
    """A small random CtcModel exported the way bundles are (fp32 ONNX, then dynamic INT8)."""
    import torch

    from export.asr.bundle import export_onnx
    from export.asr.model import CtcModel, ModelConfig

    torch.manual_seed(0)
    config = ModelConfig(vocab_size=12, d_model=32, heads=2, layers=2, conv_kernel=5, subsampling_channels=8)
    model = CtcModel(config)
    model.set_cmvn(torch.randn(80), torch.rand(80) + 0.5)
    with torch.no_grad():  # as after training: no two weights equal (the ONNX export would share those)
        for weight in model.parameters():
            weight.add_(torch.randn_like(weight) * 0.05)
    work.mkdir()
    torch.save(model.state_dict(), work / "model.pt")
    (work / "train.json").write_text(json.dumps({"model": config.to_dict()}), encoding="utf-8")
    _, int8 = export_onnx(work)
    return model, int8


def test_a_checkpoint_recovered_from_the_int8_model_is_the_exported_one_within_a_quantization_step(tmp_path):
    import torch

    from export.asr.model import CtcModel
    from export.asr.recover import recover_checkpoint

    model, int8 = _exported_tiny_model(tmp_path / "work")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    shutil.copy(int8, bundle / "model.int8.onnx")
    state, config = recover_checkpoint(bundle)  # no manifest: the config comes from the shapes
    assert (config.d_model, config.layers, config.vocab_size, config.conv_kernel) == (32, 2, 12, 5)
    original = model.state_dict()
    assert set(state) == set(original)
    for name, weight in original.items():
        tolerance = float(weight.abs().max()) / 127 if name.endswith(".weight") and weight.dim() == 2 else 1e-6
        assert torch.allclose(state[name], weight, atol=tolerance), name
    recovered = CtcModel(config)
    recovered.load_state_dict(state)
    x, x_lens = torch.randn(1, 120, 80) * 3, torch.tensor([120])
    with torch.no_grad():
        want, got = model.eval()(x, x_lens)[0], recovered.eval()(x, x_lens)[0]
    assert float((want - got).abs().max()) < 0.5 and float((want - got).abs().mean()) < 0.05


def test_recovery_refuses_a_folder_without_a_model_or_with_someone_elses(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from export.asr.recover import recover_checkpoint

    with pytest.raises(FileNotFoundError, match="model.int8.onnx"):
        recover_checkpoint(tmp_path)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(tmp_path / "model.int8.onnx"))
    with pytest.raises((ValueError, KeyError)):
        recover_checkpoint(tmp_path)


def test_continuing_from_a_bundle_keeps_its_characters_ids(tmp_path):
    from export.asr.build import _vocab_of, step_data

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "tokens.txt").write_text("<blk> 0\n好 1\n嘅 2\n", encoding="utf-8")
    assert _vocab_of(bundle) == ["好", "嘅"]
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        _vocab_of(tmp_path / "model.pt")  # a checkpoint without its vocab.json beside it
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.csv").write_text("transcript,intent_label,dialect,family\n多少钱,x,mandarin,f1\n好的好的,x,mandarin,f2\n"
                                  "我在忙,x,mandarin,f3\n", encoding="utf-8")
    record = step_data(tmp_path / "work", corpus, seed=1, concatenations=0, max_items=2, base_vocab=_vocab_of(bundle))
    vocab = json.loads((tmp_path / "work" / "vocab.json").read_text(encoding="utf-8"))
    assert vocab[:2] == ["好", "嘅"] and len(set(vocab)) == len(vocab) and "钱" in vocab
    assert record["characters_kept"] == 2


def _five_text_corpus(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    rows = "".join(f"{t},x,mandarin,f{i}\n" for i, t in enumerate(["多少钱", "好的好的", "我在忙", "发个资料", "明天再说"]))
    (corpus / "a.csv").write_text("transcript,intent_label,dialect,family\n" + rows, encoding="utf-8")
    return corpus


def test_a_render_seed_gives_new_renderings_of_the_same_split(tmp_path):
    from export.asr.build import step_data

    corpus = _five_text_corpus(tmp_path)
    for name, render_seed in (("same", None), ("new", 99)):
        step_data(tmp_path / name, corpus, seed=1, concatenations=0, max_items=2, render_seed=render_seed)
    read = lambda name, file: (tmp_path / name / file).read_text(encoding="utf-8")  # noqa: E731
    assert read("same", "split.json") == read("new", "split.json")
    assert json.loads(read("new", "data.json"))["render_seed"] == 99
    assert json.loads(read("same", "data.json"))["render_seed"] == 1
    same, new = np.load(tmp_path / "same" / "data.npz"), np.load(tmp_path / "new" / "data.npz")
    assert not (same["frames"].shape == new["frames"].shape and np.allclose(same["frames"], new["frames"]))


def test_more_voices_change_the_renderings_not_the_texts(tmp_path):
    from export.asr.build import step_data

    corpus = _five_text_corpus(tmp_path)
    for name, more in (("base", False), ("more", True)):
        step_data(tmp_path / name, corpus, seed=1, concatenations=0, max_items=4, render_seed=7, more_voices=more)
    base, more = np.load(tmp_path / "base" / "data.npz"), np.load(tmp_path / "more" / "data.npz")
    assert json.loads((tmp_path / "more" / "data.json").read_text(encoding="utf-8"))["more_voices"] is True
    assert np.array_equal(base["labels"], more["labels"])
    assert not (base["frames"].shape == more["frames"].shape and np.allclose(base["frames"], more["frames"]))


def test_an_export_without_the_silero_wheel_still_ends_well(tmp_path, monkeypatch, caplog):
    import importlib.util

    from export.asr import build

    monkeypatch.setattr("export.asr.bundle.write_bundle", lambda work, out, **_: {"kind": "asr"})
    monkeypatch.setattr("export.asr.bundle.extra_heldout", lambda corpus, seed: [])
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "silero_vad" else real_find_spec(name, *a))
    with caplog.at_level("WARNING", logger="export.asr"):
        assert build.step_export(tmp_path / "work", tmp_path / "out" / "asr", tmp_path, 1, None) == {"kind": "asr"}
    assert "silero-vad" in caplog.text and not (tmp_path / "out" / "vad").exists()


def _tiny_heldout(tmp_path: Path) -> Path:
    heldout = tmp_path / "heldout.json"
    heldout.write_text(json.dumps({
        "tuning": [{"text": "多少钱", "lang": "cmn", "group": "a"}, {"text": "几多钱", "lang": "yue", "group": "b"}],
        "test": [{"text": "我在忙", "lang": "cmn", "group": "c"}, {"text": "听日得闲", "lang": "yue", "group": "d"}]},
        ensure_ascii=False), encoding="utf-8")
    return heldout


def test_update_graphs_adds_verified_graphs_where_they_beat_the_greedy_search(tmp_path, monkeypatch):
    from edge.asr.modeldir import inspect
    from export.asr import bundle as asr_bundle
    from export.asr import heldout as asr_heldout

    real_score = asr_heldout.score

    def graphs_doing(better: bool):
        def score(recognizer, samples, rescorer=None, language_given=True):
            result = real_score(recognizer, samples, rescorer, language_given)
            if recognizer.info["language_graphs"]:  # stands in for texts the graphs hear better (or worse)
                result["cer"]["all"]["cer"] += -0.01 if better else 0.01
            return result
        return score

    monkeypatch.setattr(asr_heldout, "score", graphs_doing(better=True))
    monkeypatch.setattr(asr_bundle, "GRAPH_SCALE_GRID", (0.3,))
    bundle = tmp_path / "asr"
    shutil.copytree(ROOT / "edge/models/default/asr", bundle, ignore=shutil.ignore_patterns("graph_*.fst"))
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("decoding", None)
    manifest["files"] = {k: v for k, v in manifest["files"].items() if not k.startswith("graph_")}
    (bundle / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    words = tmp_path / "dict.txt"  # a small word list stands in for jieba's, for speed
    words.write_text("试用 500 v\n可以 900 c\n价格 300 n\n", encoding="utf-8")
    asr_bundle.update_graphs(bundle, tmp_path / "work", heldout=_tiny_heldout(tmp_path), dictionary=words)
    model = inspect(bundle)  # verifies the sha256 of every file, and checks the graphs
    assert sorted(model.graphs) == ["cmn", "yue"]
    assert model.manifest["decoding"]["lm_scale"] == 0.3 == model.manifest["metrics"]["graph_tuning"]["lm_scale"]
    assert model.manifest["metrics"]["heldout_int8_graphs"]["cmn/clean"]["sentences"] == 1
    general = model.manifest["decoding"]["general_ngrams"]
    assert list(general) == ["cmn"] and general["cmn"]["weight"] == asr_bundle.GENERAL_NGRAMS["cmn"]["weight"]
    assert general["cmn"]["sha256"] == sha256_file(words)
    keep = model.manifest["rescoring"]["settings"]["language_keep_bonus"]
    assert sorted(keep) == ["cmn", "yue"] and set(keep.values()) <= set(asr_bundle.SEARCHED_KEEP_GRID)
    assert keep == model.manifest["metrics"]["graph_tuning"]["language_keep_bonus"]

    monkeypatch.setattr(asr_heldout, "score", graphs_doing(better=False))  # the greedy search is kept
    asr_bundle.update_graphs(bundle, tmp_path / "work", heldout=_tiny_heldout(tmp_path), general={})
    model = inspect(bundle)
    assert model.graphs == {} and "decoding" not in model.manifest and not list(bundle.glob("graph_*"))
    assert "language_keep_bonus" not in model.manifest["rescoring"]["settings"]  # it was for searched text


def test_decoder_rtf_takes_samples_in_turn_from_every_language_and_condition():
    """The benchmark's decoder RTF once timed the first 200 held-out samples, all Mandarin: the Cantonese
    graph went untimed."""
    from export.asr.heldout import Sample, _in_turn

    audio = np.zeros(1600, np.int16)
    samples = [Sample(f"m{i}", "cmn", condition, audio) for i in range(5) for condition in ("clean", "phone")]
    samples += [Sample("y0", "yue", "clean", audio)]
    chosen = _in_turn(samples, 4)
    assert {(s.lang, s.condition) for s in chosen} == {("cmn", "clean"), ("cmn", "phone"), ("yue", "clean")}
    assert len(chosen) == 4 and len(_in_turn(samples, 100)) == len(samples)


def test_decoder_rtf_under_the_language_graphs_is_measured():
    from edge.config import DEFAULT_ASR_DIR
    from edge.tts.espeak import EspeakSettings, speak
    from export.asr.heldout import Sample, decoder_rtf

    samples = [Sample("可以试用吗", "cmn", "clean", speak("可以试用吗", EspeakSettings("cmn+m6", 168, 54, 60))),
               Sample("可唔可以试用", "yue", "clean", speak("可唔可以试用", EspeakSettings("yue+m7", 168, 54, 60)))]
    rtf = decoder_rtf(DEFAULT_ASR_DIR, samples, language_graphs=True, rounds=1)
    assert 0 < rtf < 1


def test_a_blended_continuation_writes_weights_between_its_start_and_its_training(tmp_path):
    """`build train --init START --blend W`: the model written is W x trained + (1 - W) x START, so W = 0 gives
    START back and W = 1 the plain continuation; a weight outside [0, 1] or a start of another shape is refused."""
    import torch

    from export.asr.model import CtcModel, ModelConfig
    from export.asr.train import TrainConfig, blended, train

    rng = np.random.default_rng(0)
    lens = np.array([60, 80, 70, 90])
    np.savez(tmp_path / "data.npz", frames=rng.normal(size=(lens.sum(), 80)).astype(np.float16), frame_lens=lens,
             labels=rng.integers(1, 5, 12).astype(np.int32), label_lens=np.array([3, 3, 3, 3]),
             langs=np.array(["cmn"] * 4))
    config = ModelConfig(vocab_size=5, d_model=16, heads=2, layers=1, subsampling_channels=4)
    start = {k: v.clone() for k, v in CtcModel(config).state_dict().items()}
    torch.save(start, tmp_path / "start.pt")
    written = {}
    for weight in (0.0, 1.0):
        out = tmp_path / str(weight)
        out.mkdir()
        train(tmp_path / "data.npz", 5, out, TrainConfig(budget_s=3, max_frames=200, peak_lr=1e-2, warmup_steps=1,
                                                         specaug_after=99, init=str(tmp_path / "start.pt"),
                                                         threads=1, blend=weight), config)
        written[weight] = torch.load(out / "model.pt")
    name = "head.weight"
    assert torch.equal(written[0.0][name], start[name]) and not torch.equal(written[1.0][name], start[name])
    assert torch.allclose(blended(start, written[1.0], 0.5)[name], (start[name] + written[1.0][name]) / 2)
    with pytest.raises(ValueError, match="outside"):
        blended(start, written[1.0], 1.5)
    with pytest.raises(ValueError, match="differ"):
        blended({name: start[name]}, written[1.0], 0.5)
    with pytest.raises(ValueError, match="outside"):  # before any training, not after the budget
        TrainConfig(init=str(tmp_path / "start.pt"), blend=-0.1)
    with pytest.raises(ValueError, match="needs a start"):
        TrainConfig(blend=0.5)
