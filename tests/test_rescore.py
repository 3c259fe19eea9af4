from edge.asr.rescore import Rescorer, RescoreSettings
from edge.asr.text import cer, edit_distance, normalize

LEXICON = {"在": "tsai", "再": "tsai", "忙": "maŋ", "我": "wo", "现": "ɕiɛn", "见": "ɕiɛn", "贵": "kuei",
           "跪": "kuei", "太": "thai", "了": "lə"}


def _lm(texts):
    from collections import Counter

    counts = [Counter(), Counter(), Counter()]
    for text in texts:
        chars = ["^", *text, "$"]
        for n in (1, 2, 3):
            for i in range(len(chars) - n + 1):
                if n == 1 and chars[i] == "^":
                    continue
                counts[n - 1]["".join(chars[i:i + n])] += 1
    return {"order": 3, "counts": [dict(c) for c in counts]}


def test_rescoring_fixes_homophones_the_domain_knows():
    lm = _lm(["我现在在忙", "我在忙", "现在在忙", "太贵了", "有点贵", "再见", "明天再打"])
    rescorer = Rescorer(LEXICON, lm)
    assert rescorer("我现再再忙") == "我现在在忙"
    assert rescorer("太跪了") == "太贵了"
    assert rescorer("在见") == "再见"


def test_keep_bonus_trusts_the_acoustic_model():
    lm = _lm(["我在忙"] * 3 + ["我再忙"])
    assert Rescorer(LEXICON, lm, RescoreSettings(keep_bonus=0.0))("我再忙") == "我在忙"
    assert Rescorer(LEXICON, lm, RescoreSettings(keep_bonus=20.0))("我再忙") == "我再忙"


def test_a_language_keep_bonus_replaces_the_default_for_that_language_only():
    """Text a language's graph searched is rescored with that language's bonus (tuned on such text)."""
    lm = _lm(["我在忙"] * 3 + ["我再忙"])
    trusting = RescoreSettings(keep_bonus=20.0, language_keep_bonus={"cmn": 0.0})
    assert Rescorer(LEXICON, lm, trusting)("我再忙", "cmn") == "我在忙"
    assert Rescorer(LEXICON, lm, trusting)("我再忙", "yue") == "我再忙"  # no bonus of its own: the default
    doubting = RescoreSettings(keep_bonus=0.0, language_keep_bonus={"cmn": 20.0})
    assert Rescorer(LEXICON, lm, doubting)("我再忙", "cmn") == "我再忙"
    assert Rescorer(LEXICON, lm, doubting)("我再忙") == "我再忙"  # guessed Mandarin: its bonus too


def test_unknown_characters_pass_through():
    rescorer = Rescorer(LEXICON, _lm(["我在忙"]))
    assert rescorer("CRM好用") == "CRM好用"
    assert rescorer("") == ""


def test_cer_definition():
    assert normalize("喂，你好！ api 呢？") == "喂你好API呢"
    assert edit_distance("我在忙", "我再忙") == 1
    assert cer(["我在忙", "你好"], ["我再忙", "你好啊"]) == 2 / 5
