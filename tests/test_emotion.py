"""Prosody features and the mood estimate, on espeak speech at controlled pitch, rate and loudness;
the script's reaction to mood (brief lines, a callback offer, an apology and the end)."""

import numpy as np
import pytest

from edge.audio.line import LineSettings, phone_line
from edge.audio.prosody import EMPTY, measure
from edge.nlu.emotion import MoodCues, MoodTracker
from edge.tts.espeak import EspeakSettings, speak
from tests.fakes import NOW, dialogue

BASE = "你好，请问是哪位，有什么事情吗"
TEXT = "我知道了，那你继续说吧，我听着呢"


def voice(text, **settings):
    pcm = speak(text, EspeakSettings(voice="cmn+f4", **settings))
    return measure(phone_line(pcm, LineSettings(), np.random.default_rng(0)), text)


def test_prosody_follows_pitch_rate_loudness_and_survives_the_phone_line():
    low, high = voice(TEXT, pitch=30), voice(TEXT, pitch=70)
    assert 100 < low.f0_hz < high.f0_hz < 260
    slow, fast = voice(TEXT, rate_wpm=130), voice(TEXT, rate_wpm=230)
    assert 2.0 < slow.rate_sps < fast.rate_sps and fast.rate_sps / slow.rate_sps > 1.5
    quiet, loud = voice(TEXT, volume=60), voice(TEXT, volume=160)
    assert loud.energy_db - quiet.energy_db > 5
    flat, lively = voice(TEXT, pitch_range=10), voice(TEXT, pitch_range=90)
    assert lively.f0_range_st > flat.f0_range_st + 2
    assert 0 <= low.pause_ratio < 0.5 and low.voiced_ratio > 0.5
    assert measure(np.zeros(8000, np.int16)) == EMPTY


@pytest.mark.parametrize("setting, values", [("pitch", (40, 60, 80)), ("rate_wpm", (150, 205, 260)),
                                             ("volume", (60, 120, 180))])
def test_the_arousal_estimate_rises_with_pitch_rate_and_loudness(setting, values):
    levels = []
    for value in values:
        tracker = MoodTracker()
        tracker.hear(BASE, voice(BASE))  # the caller's baseline: their first utterance
        levels.append(tracker.hear(TEXT, voice(TEXT, **{setting: value})).arousal)
    assert levels[0] < levels[1] < levels[2], levels


def test_voice_alone_makes_a_caller_impatient_never_angry():
    tracker = MoodTracker()
    tracker.hear(BASE, voice(BASE))
    assert tracker.hear(TEXT, voice(TEXT)).label == "neutral"
    agitated = tracker.hear(TEXT, voice(TEXT, rate_wpm=280, pitch=80, volume=180))
    assert agitated.label == "impatient" and agitated.arousal > 1.0


def test_cue_words_with_negation_and_the_voice():
    cues = MoodCues.load()
    assert cues.find("不感兴趣")["positive"] == [] and cues.find("挺感兴趣的")["positive"] == ["感兴趣"]
    tracker = MoodTracker()
    assert tracker.hear("你好，请问什么事", None).label == "neutral"
    assert tracker.hear("你们烦不烦啊，怎么又打来", None).label == "angry"
    assert tracker.hear("快点说重点", None).label == "impatient"
    assert tracker.hear("听起来不错，太好了", None).label == "positive"
    calm = MoodTracker()
    calm.hear(BASE, voice(BASE))
    said_calmly = calm.hear("你们烦不烦啊", voice("你们烦不烦啊", pitch=25, rate_wpm=120, volume=50))
    assert said_calmly.label in ("impatient", "angry") and said_calmly.cues == ("angry:烦不烦",)


def test_the_script_reacts_to_mood():
    bot = dialogue()
    reply = bot.hear("喂，什么事", now=NOW, mood="neutral")
    assert reply.node == "discovery"
    reply = bot.hear("你快点说", now=NOW, mood="impatient")  # moves nothing on: offer a callback, once
    assert reply.node == "ask_callback" and bot.state.brief and bot.state.moods == ["neutral", "impatient"]
    assert reply.text.endswith("那我改天再打给您，您看什么时候方便？")  # the brief line
    angry = dialogue()
    reply = angry.hear("你们烦死了", now=NOW, mood="angry")
    assert reply.node == "close_upset" and reply.ended and angry.state.outcome == "upset"
    dnc = dialogue()
    reply = dnc.hear("别再打了 骚扰电话", now=NOW, mood="angry")  # do-not-call still wins
    assert reply.node == "close_dnc" and dnc.state.dnc


def test_angry_and_impatient_cues_survive_asr_homophones_but_not_by_accident():
    from edge.nlu.emotion import default_cues

    cues = default_cues()
    assert "气死" in cues.find("你们这是什么服务器死我了")["angry"]  # heard 器死 for 气死
    assert "去死" in cues.find("你们这是什么服务去死我了")["angry"]  # 气 heard as 去: still angry
    assert cues.find("你们这是什么服务系死我了")["angry"] == ["死我了"]  # 气 heard as 系: the rest still tells
    assert cues.find("骚绕电话")["angry"] == ["骚扰"]
    assert cues.find("说了不要再打了")["angry"] == ["说了不要"]  # exact matches as before
    assert cues.find("今天几号")["positive"] == []  # 几号 sounds like the Cantonese 几好, but positive cues match exactly
    assert cues.find("快递到了吗")["impatient"] == []  # 快啲 is Cantonese: matched by its characters only
    assert cues.find("我不器死")["angry"] == []  # a negated cue stays negated when it only sounds alike
