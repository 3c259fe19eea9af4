"""Does the mood estimate move the right way, and how often is it right? On synthesized speech.

1. Direction: one sentence with neutral words, spoken by espeak-ng at a
   range of pitch, speaking rate, loudness and pitch range, each scored
   against the same voice's baseline (two plain sentences first, as in a
   call): the arousal must rise with pitch, rate and loudness.
2. Accuracy on a held-out synthetic set: utterances acted out with espeak
   settings per mood (angry: angry words, higher, louder, faster; impatient:
   impatient words a little faster, or plain words 1.6x or 1.35x faster;
   positive: positive words, a little higher, livelier; neutral: plain words
   at the speaker's own settings, or varied +-10% rate, +-6 pitch, +-15%
   loudness), through a phone line. Voices and sentences
   of the held-out set never occur in the development set the thresholds were
   looked at on.

This is synthetic-to-synthetic: espeak's pitch and rate knobs are not real
emotional speech, and the labels are the recipe that made each utterance.

    python benchmarks/emotion.py

Writes benchmarks/results/emotion.json and emotion.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, write  # noqa: E402
from edge.audio.line import LineSettings, phone_line  # noqa: E402
from edge.audio.prosody import measure  # noqa: E402
from edge.nlu.emotion import MOODS, MoodTracker  # noqa: E402
from edge.tts.espeak import EspeakSettings, speak  # noqa: E402

BASELINE = ("你好，请问是哪位，有什么事情吗", "我们公司在城东，做五金生意")
PROBE = "我知道了，那你继续说吧，我听着呢"
SWEEPS = {"pitch": (30, 40, 50, 60, 70, 80), "rate_wpm": (140, 170, 200, 230, 260),
          "volume": (50, 80, 110, 140, 170), "pitch_range": (10, 30, 50, 70, 90)}
SPLITS = {
    "dev": {
        "voices": (("cmn+f1", 165, 58), ("cmn+m2", 170, 40), ("yue+f2", 160, 55)),
        "neutral": ("我们一般周一开会", "这个我知道一点", "我在办公室，你说", "我们的产品卖到外地", "你接着说吧",
                    "这个月事情比较多"),
        "positive": ("太好了，这个不错", "听起来挺好的", "好啊，可以试试"),
        "impatient": ("快点说重点", "我很忙，长话短说", "简单点讲"),
        "angry": ("你们烦不烦，别再打了", "神经病，又打来", "烦死了，不要再打"),
    },
    "test": {
        "voices": (("cmn+f4", 168, 54), ("cmn+m7", 175, 45), ("yue+m7", 168, 46), ("yue+f4", 170, 60)),
        "neutral": ("你说的这个系统我听说过", "我们的客户主要在华南", "现在是我在负责这块", "我们有自己的销售团队",
                    "那你继续讲", "我们去年换了办公室"),
        "positive": ("这个功能很好，我挺感兴趣", "不错不错，谢谢你", "好啊，正好我们需要"),
        "impatient": ("你到底想说什么，赶紧的", "说重点，我没时间", "有话快说"),
        "angry": ("说了不要还打，有病吧", "怎么又打来了，搞什么", "莫名其妙，讨厌"),
    },
}


def recipe(mood: str, base: tuple[str, int, int], variant: str = "", rng: np.random.Generator | None = None
           ) -> EspeakSettings:
    """How an actor would play `mood` with espeak's knobs, from the speaker's own settings.

    Variants: "voice" (plain words, clearly impatient voice: 1.6x rate), "subtle" (plain words,
    mildly impatient voice: 1.35x rate), "jitter" (neutral, the speaker's own voice varied by
    +-10% rate, +-6 pitch, +-15% loudness, as one person's sentences vary)."""
    voice, rate, pitch = base
    if mood == "angry":
        return EspeakSettings(voice, round(rate * 1.3), min(100, pitch + 20), 80, 180)
    if mood == "impatient":
        if variant == "voice":
            return EspeakSettings(voice, round(rate * 1.6), min(100, pitch + 10), 60, 130)
        if variant == "subtle":
            return EspeakSettings(voice, round(rate * 1.35), min(100, pitch + 5), 50, 110)
        return EspeakSettings(voice, round(rate * 1.25), pitch + 5, 50, 115)
    if mood == "positive":
        return EspeakSettings(voice, rate, min(100, pitch + 6), 75, 105)
    if variant == "jitter" and rng is not None:
        return EspeakSettings(voice, round(rate * rng.uniform(0.9, 1.1)), int(pitch + rng.integers(-6, 7)), 50,
                              int(100 * rng.uniform(0.85, 1.15)))
    return EspeakSettings(voice, rate, pitch, 50, 100)


def heard(text: str, settings: EspeakSettings, rng: np.random.Generator):
    return measure(phone_line(speak(text, settings), LineSettings(), rng), text)


def tracker_for(base: tuple[str, int, int], rng: np.random.Generator) -> MoodTracker:
    tracker = MoodTracker()
    for text in BASELINE:
        tracker.hear(text, heard(text, recipe("neutral", base), rng))
    return tracker


def direction(rng: np.random.Generator) -> dict:
    out = {}
    for voice in (("cmn+f4", 168, 54), ("yue+m7", 168, 46)):
        for knob, values in SWEEPS.items():
            row = []
            for value in values:
                tracker = tracker_for(voice, rng)
                settings = EspeakSettings(voice[0], voice[1], voice[2], 50, 100)
                settings = EspeakSettings(**{**settings.__dict__, knob: value})
                mood = tracker.hear(PROBE, heard(PROBE, settings, rng))
                row.append({"value": value, "arousal": round(float(mood.arousal), 3), "label": mood.label})
            levels = [r["arousal"] for r in row]
            steps = zip(levels, levels[1:], strict=False)
            rising = bool(all(b >= a - 0.05 for a, b in steps) and levels[-1] - levels[0] > 0.2)
            out[f"{voice[0]} {knob}"] = {"points": row, "rises": rising,
                                        "spread": round(levels[-1] - levels[0], 3)}
    return out


def accuracy(split: str, rng: np.random.Generator) -> dict:
    data = SPLITS[split]
    items = []
    for base in data["voices"]:
        for mood in MOODS:
            for text in data[mood]:
                items.append((base, mood, text, ""))
        for text in data["neutral"]:  # plain words: only the voice can tell
            items += [(base, "impatient", text, "voice"), (base, "impatient", text, "subtle"),
                      (base, "neutral", text, "jitter")]
    confusion = {m: {n: 0 for n in MOODS} for m in MOODS}
    rows = []
    for base, mood, text, variant in items:
        tracker = tracker_for(base, rng)
        guess = tracker.hear(text, heard(text, recipe(mood, base, variant, rng), rng))
        confusion[mood][guess.label] += 1
        rows.append({"voice": base[0], "truth": mood, "variant": variant or "words and voice", "text": text,
                     "guess": guess.label, "arousal": round(guess.arousal, 3)})
    correct = sum(r["truth"] == r["guess"] for r in rows)
    per_class = {}
    for mood in MOODS:
        tp = confusion[mood][mood]
        predicted = sum(confusion[m][mood] for m in MOODS)
        actual = sum(confusion[mood].values())
        per_class[mood] = {"precision": round(tp / predicted, 3) if predicted else None,
                           "recall": round(tp / actual, 3) if actual else None, "n": actual}
    subsets = {}
    names = {"words and voice": "words and voice", "voice": "plain words, clearly impatient voice",
             "subtle": "plain words, mildly impatient voice", "jitter": "plain words, neutral voice varied"}
    for key, name in names.items():
        chosen = [r for r in rows if r["variant"] == key]
        subsets[name] = {"n": len(chosen), "accuracy": round(sum(r["truth"] == r["guess"] for r in chosen)
                                                              / max(1, len(chosen)), 3)}
    false_angry = sum(1 for r in rows if r["guess"] == "angry" and r["truth"] != "angry")
    return {"n": len(rows), "accuracy": round(correct / len(rows), 3), "per_class": per_class,
            "confusion": confusion, "subsets": subsets, "false_angry": false_angry, "items": rows}


def markdown(data: dict) -> str:
    m = data["machine"]
    lines = ["# Mood estimate on synthesized speech", "",
             f"`{m['command']}` on {m['cpu']} ({m['cores']} cores). espeak-ng voices through a phone line "
             "(8 kHz, mu-law, -55 dBFS noise); each utterance scored against the same voice's baseline (two plain "
             "sentences first, as in a call).", "",
             "## Direction: arousal as one knob turns (neutral words)", "",
             "| voice, knob | values -> arousal (label) | rises |", "|---|---|---|"]
    for name, row in data["direction"].items():
        points = ", ".join(f"{p['value']}: {p['arousal']:+.2f} ({p['label'][:3]})" for p in row["points"])
        lines.append(f"| {name} | {points} | {'yes' if row['rises'] else 'no (flat)'} |")
    for split in ("dev", "test"):
        result = data[split]
        title = "held-out voices and sentences" if split == "test" else "development set (thresholds looked at here)"
        lines += ["", f"## Accuracy, {title}", "",
                  f"{result['n']} utterances, accuracy **{result['accuracy']:.1%}**; " +
                  "; ".join(f"{k}: {v['accuracy']:.1%} of {v['n']}" for k, v in result["subsets"].items()) +
                  f"; non-angry utterances called angry: {result['false_angry']}.", "",
                  "| truth \\ estimate | " + " | ".join(MOODS) + " | recall |", "|---|" + "---|" * (len(MOODS) + 1)]
        for mood in MOODS:
            cells = " | ".join(str(result["confusion"][mood][n]) for n in MOODS)
            lines.append(f"| {mood} | {cells} | {result['per_class'][mood]['recall']} |")
    lines += ["", "## What this does not show", "",
              "- Where the words carry a cue word, the cue decides: the `words and voice` rows are right because "
              "those sentences were written with words from the cue list. What the voice adds shows in the "
              "plain-words rows: a clearly faster, higher voice is caught, a mildly impatient one about half the "
              "time, and ordinary variation of one speaker is not mistaken for impatience.",
              "- Pitch range hardly moves the estimate (espeak's range knob changes the measured range little).",
              "- Real callers: espeak's pitch, rate and loudness knobs stand in for emotion; real anger and "
              "impatience also change voice quality, wording and timing in ways not measured here.",
              "- Quiet anger, sarcasm and resignation sound calm and are missed by design; the voice alone never "
              "makes a caller angry (an angry verdict ends the call), so angry needs angry words.",
              "- The first utterance of a call has no baseline: only its words count.",
              "- Cue words are a fixed list (edge/data/emotion.yaml); the Cantonese voices read Mandarin sentences "
              "here."]
    return "\n".join(lines) + "\n"


def main() -> None:
    rng = np.random.default_rng(7)
    data = {"machine": machine(), "direction": direction(rng), "dev": accuracy("dev", rng),
            "test": accuracy("test", rng)}
    text = markdown(data)
    print(text)
    write("emotion", data, text)


if __name__ == "__main__":
    main()
