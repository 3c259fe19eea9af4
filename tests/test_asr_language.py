"""The caller's language for the ASR's homophone rescoring: per-language sound tables, guessed or set."""

import asyncio
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edge.asr.language import CallLanguage, guess, looks_cantonese
from edge.asr.rescore import Rescorer, RescoreSettings
from edge.calls.events import Utterance
from edge.calls.listen import AsrStage
from edge.calls.runtime import Heard
from edge.config import AsrConfig
from edge.errors import BundleError, ConfigError
from tests.test_rescore import _lm

ROOT = Path(__file__).resolve().parents[1]
# Mandarin: 日 ri, 一 yi, 昼 zhou, 周 zhou; Cantonese: 日/一 jat, 昼/周 zau.
CMN = {"日": "ʐi", "一": "ji", "昼": "tsou", "周": "tsou", "听": "thiŋ", "下": "ɕia"}
YUE = {"日": "jat", "一": "jat", "昼": "zau", "周": "zau", "听": "thɛŋ", "下": "ha"}


def _rescorer(keep=1.0):
    lm = _lm(["听日下昼", "听日下昼三点", "一周", "下周"])
    return Rescorer(CMN, lm, RescoreSettings(keep_bonus=keep), {"yue": YUE})


def test_the_cantonese_table_is_used_only_for_cantonese():
    rescorer = _rescorer()
    assert rescorer("听一下周", "yue") == "听日下昼"  # 一/日 and 周/昼 sound alike in Cantonese
    assert rescorer("听一下周", "cmn").startswith("听一下")  # in Mandarin 一 cannot stand for 日
    assert rescorer.languages == ("cmn", "yue")


def test_without_a_language_each_text_is_guessed_from_its_cantonese_forms():
    rescorer = _rescorer()
    assert rescorer("听一下周") == rescorer("听一下周", "cmn")
    assert guess("系啊听日得闲") == "yue" and guess("我们有三十个销售") == "cmn"
    assert not looks_cantonese("我们的系统能对接吗")  # 系 alone is Mandarin too (系统)


def test_a_language_the_bundle_has_no_table_for_falls_back_to_mandarin():
    assert _rescorer()("听一下周", "xx") == _rescorer()("听一下周", "cmn")


def test_call_language_follows_the_share_of_cantonese_utterances():
    auto = CallLanguage()
    assert auto.code is None  # nothing heard: each text guesses for itself
    auto.observe("喂咩事")
    auto.observe("大概三十个人")
    auto.observe("得啊约个时间")
    assert auto.code == "yue"  # one Cantonese form in three utterances
    late = CallLanguage()
    late.observe("喂系你讲")
    assert late.code is None  # one plain utterance does not make a call Mandarin ...
    late.observe("我哋间公司有五十几个销售")
    assert late.code == "yue"  # ... so the next one's 哋 is heard, and counts
    plain = CallLanguage()
    plain.observe("你好")
    plain.observe("五十个人")
    assert plain.code == "cmn"
    mandarin = CallLanguage()
    for text in ("你好请讲", "五十个人左右", "听起来还可以约个时间吧", "后天上午十点", "对"):
        mandarin.observe(text)
    mandarin.observe("这个要搵我们老板")  # one misheard character (问 -> 搵)
    assert mandarin.code == "cmn"


def test_a_configured_language_is_kept_whatever_is_heard():
    fixed = CallLanguage("cmn")
    fixed.observe("系啊听日得闲")
    assert fixed.code == "cmn"
    with pytest.raises(ValueError):
        CallLanguage("fr")
    with pytest.raises(ConfigError):
        AsrConfig(language="fr").validate()


class _Recording:
    """A runtime whose recognizer returns scripted texts and records the language it was told."""

    def __init__(self, texts, setting="auto"):
        self.texts = list(texts)
        self.languages = []
        self.config = SimpleNamespace(asr=AsrConfig(language=setting))

    async def recognize(self, pcm, language=None):
        self.languages.append(language)
        text = self.texts.pop(0)
        return Heard(*text) if isinstance(text, tuple) else Heard(text)


def _hear_all(runtime, count):
    async def main():
        stage, seen = AsrStage(runtime), []
        stage.sink = lambda event, upstream: seen.append(event)
        for i in range(count):
            await stage.process(Utterance(np.zeros(1600, np.int16), i, i + 1))
        return [t.text for t in seen]

    return asyncio.run(main())


def test_the_asr_stage_tells_the_recognizer_the_language_the_call_has_shown():
    runtime = _Recording(["喂咩事", "大概三十个人", "听一下周三点"])
    assert _hear_all(runtime, 3) == ["喂咩事", "大概三十个人", "听一下周三点"]
    assert runtime.languages == [None, "yue", "yue"]
    # the call's language comes from what the acoustic model heard, not the rescored text
    rewritten = _Recording(["喂系你讲", "五十个人", ("我底间公司", "我哋间公司"), "好"])
    _hear_all(rewritten, 4)
    assert rewritten.languages == [None, None, "cmn", "yue"]
    fixed = _Recording(["喂咩事", "好"], setting="cmn")
    _hear_all(fixed, 2)
    assert fixed.languages == ["cmn", "cmn"]


def test_the_builtin_bundle_carries_a_cantonese_table(tmp_path):
    from edge.asr.modeldir import inspect

    model = inspect(ROOT / "edge/models/default/asr")
    rescorer = Rescorer.from_bundle(model)
    assert rescorer.languages == ("cmn", "yue")
    assert model.manifest["rescoring"]["lexicons"] == {"yue": "lexicon_yue.tsv"}


def test_a_manifest_naming_a_table_outside_the_bundle_is_refused(tmp_path):
    from edge.asr.modeldir import inspect

    folder = tmp_path / "asr"
    shutil.copytree(ROOT / "edge/models/default/asr", folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["rescoring"]["lexicons"] = {"yue": "../../etc/passwd"}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(BundleError, match="lexicon"):
        Rescorer.from_bundle(inspect(folder))


def test_a_mandarin_call_never_keeps_a_cantonese_only_character():
    lexicon = {"搵": "wən", "问": "wən", "要": "jau", "我": "wo"}
    lm = _lm(["要搵我", "要搵我", "我要问"])  # the n-gram alone would keep 搵
    rescorer = Rescorer(lexicon, lm, RescoreSettings(keep_bonus=1.0))
    assert rescorer("要搵我") == "要搵我"  # no language: the text itself looks Cantonese
    assert rescorer("要搵我", "yue") == "要搵我"
    assert rescorer("要搵我", "cmn") == "要问我"  # the call is known to be Mandarin
    assert rescorer("要问我") == "要搵我"  # the shared n-gram alone would even put 搵 in ...
    assert rescorer("要问我", "cmn") == "要问我"  # ... but not in a Mandarin call


def test_a_cantonese_call_mixes_in_the_cantonese_n_gram():
    lm_all = _lm(["下周三开会"] * 6 + ["听日下昼三点"])  # Mandarin texts dominate the shared n-gram
    lm_yue = _lm(["听日下昼三点", "下昼三点得闲"])
    table = {"周": "zau", "昼": "zau", "下": "ha", "三": "saam"}
    shared_only = Rescorer(CMN, lm_all, RescoreSettings(keep_bonus=1.0), {"yue": table}, {"yue": lm_yue})
    mixed = Rescorer(CMN, lm_all, RescoreSettings(keep_bonus=1.0, language_lm_weight=0.75), {"yue": table},
                     {"yue": lm_yue})
    assert shared_only("下周三", "yue") == "下周三"
    assert mixed("下周三", "yue") == "下昼三"
    assert mixed("下周三", "cmn") == "下周三"  # a Mandarin call never uses the Cantonese n-gram
    per_language = Rescorer(CMN, lm_all, RescoreSettings(keep_bonus=1.0, language_lm_weight={"yue": 0.75}),
                            {"yue": table}, {"yue": lm_yue})
    assert per_language("下周三", "yue") == "下昼三"
    other = Rescorer(CMN, lm_all, RescoreSettings(keep_bonus=1.0, language_lm_weight={"cmn": 0.75}),
                     {"yue": table}, {"yue": lm_yue})
    assert other("下周三", "yue") == "下周三"  # a weight for another language leaves Cantonese calls alone


def test_an_utterance_without_cantonese_forms_is_guessed_by_the_n_grams_when_the_bundle_says_so():
    lm_all = _lm(["我们下周三开会", "一下", "后一下"] * 4 + ["后日下昼三点"])
    lm_yue = _lm(["后日下昼三点", "后日见", "后日先", "见下"])
    table = {"周": "zau", "昼": "zau", "下": "ha", "一": "jat", "日": "jat"}

    def rescorer(margin):
        settings = RescoreSettings(keep_bonus=1.0, language_lm_weight=0.75, guess_margin=margin)
        return Rescorer(CMN, lm_all, settings, {"yue": table}, {"yue": lm_yue})

    assert rescorer(None).guess("后日见") == "cmn"  # no written Cantonese form: Mandarin
    assert rescorer(0.0).guess("后日见") == "yue"  # the Cantonese n-gram likes it far better
    assert rescorer(0.0).guess("我们下周三开会") == "cmn"
    assert rescorer(0.0).guess("系啊") == "yue"  # a written form still decides first
    assert rescorer(50.0).guess("后日见") == "cmn"  # a margin it does not clear
    # the guess picks the sound table: only Cantonese hears 一 as 日
    assert rescorer(0.0)("后一见") == "后日见" and rescorer(None)("后一见") == "后一见"


def test_a_mandarin_guess_mixes_in_the_mandarin_n_gram():
    lm_all = _lm(["下周三开会", "下昼三点", "下昼三点"])  # the shared n-gram has the Cantonese texts too
    lm_cmn = _lm(["下周三开会"] * 8)
    rescorer = Rescorer(CMN, lm_all, RescoreSettings(keep_bonus=0.0, language_lm_weight={"cmn": 0.9}),
                        {}, {"cmn": lm_cmn})
    text = "下周三点"  # no Cantonese form: guessed Mandarin, for want of evidence
    assert rescorer.guess(text) == "cmn"
    assert rescorer(text, "cmn") == "下周三点"  # a call known to be Mandarin: its own n-gram keeps 下周
    assert rescorer(text) == "下周三点"  # a guess: its own n-gram too
    assert rescorer(text, "yue") == "下昼三点"  # a Cantonese call: the shared n-gram (no Cantonese one here)
