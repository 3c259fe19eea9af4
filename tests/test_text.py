"""Text preparation: OpenCC, pinyin channel, and runtime/export parity."""

import numpy as np

from edge.config import DEFAULT_INTENT_DIR
from edge.nlu import IntentModel
from edge.nlu.text import CLS, SPECIAL_TOKENS, TextEncoder, normalize, pinyin_of, to_simplified
from export import tokenizer as tok


def test_traditional_to_simplified():
    assert to_simplified("價格幾多錢 係咪真嘅") == "价格几多钱 系咪真嘅"
    assert to_simplified("多少钱") == "多少钱"


def test_normalize_drops_punctuation_symbols_and_space():
    assert normalize("喂，你好！😀 OK ") == "喂你好ok"
    assert normalize("ＡＢＣ１２３") == "abc123"


def test_pinyin_is_toneless_and_aligned():
    assert pinyin_of("价格加个") == ["jia", "ge", "jia", "ge"]
    assert pinyin_of("在忙再忙") == ["zai", "mang", "zai", "mang"]
    assert pinyin_of("ok好") == ["o", "k", "hao"]


def test_encoder_gives_homophones_the_same_pinyin_ids():
    tokenizer = tok.build(["价格多少", "加个"])
    vocab = tok.build_pinyin_vocab(["价格多少", "加个"], tokenizer)
    encoder = TextEncoder(tokenizer, 16, t2s=True, pinyin_vocab=vocab)
    feeds = encoder.encode(["价格多少", "加个多少", "價格多少"])
    assert set(feeds) == {"input_ids", "attention_mask", "pinyin_ids"}
    assert feeds["pinyin_ids"][0].tolist() == feeds["pinyin_ids"][1].tolist()
    assert feeds["input_ids"][0].tolist() != feeds["input_ids"][1].tolist()
    assert feeds["input_ids"][0].tolist() == feeds["input_ids"][2].tolist()  # Traditional folded to Simplified
    assert feeds["pinyin_ids"][0][0] == vocab[CLS]


def test_encoder_pads_and_truncates():
    tokenizer = tok.build(["多少钱"])
    encoder = TextEncoder(tokenizer, 8, pinyin_vocab=tok.build_pinyin_vocab(["多少钱"], tokenizer))
    feeds = encoder.encode(["", "多少钱" * 10, "😀"])
    assert feeds["input_ids"].shape == (3, 8)
    assert feeds["attention_mask"][0].tolist() == [1] + [0] * 7
    assert feeds["attention_mask"][1].sum() == 8
    assert all(a.dtype == np.int64 for a in feeds.values())
    assert feeds["input_ids"][2][0] == SPECIAL_TOKENS.index(CLS)


def test_runtime_uses_what_the_bundle_declares():
    model = IntentModel.load(DEFAULT_INTENT_DIR)
    text_options = model.bundle.manifest["text"]
    assert model.encoder.t2s == text_options["t2s"]
    assert (model.encoder.pinyin_vocab is not None) == text_options["pinyin"]
    simplified, traditional = model.predict(["你们这个价格多少钱", "你們這個價格多少錢"])
    assert simplified.label == traditional.label
    assert abs(simplified.score - traditional.score) < 1e-6
