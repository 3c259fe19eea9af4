"""The caller's mood from how they sound and what they say: positive, neutral, impatient, angry.

Voice: each utterance's prosody (edge.audio.prosody) is compared with the
same caller's own baseline (their first utterances), so a high voice is not
mistaken for an excited one: pitch up, louder, faster and a wider pitch
range raise the *arousal*. Words: cue lists in edge/data/emotion.yaml
(烦死了, 说重点, 太好了 ...), a cue after a negation (不感兴趣) not counted.

Rules, conservative because an angry verdict ends the call:
- angry words -> angry, unless said clearly calmly (then impatient);
- impatient words -> impatient, or angry when the voice is very agitated;
- no cue words: a clearly agitated or much faster voice -> impatient (the
  voice alone never makes a caller angry);
- positive words -> positive; otherwise neutral.

What it does not cover: it was checked on synthesized speech only (espeak
at set pitch, rate and loudness), not on real emotional speech; sarcasm,
quiet anger and resignation sound calm and are missed; the first utterance
has no baseline, so only its words count; cue words are a fixed list.

Example:
    >>> tracker = MoodTracker()
    >>> tracker.hear("你好，请问什么事", measure(pcm1, "你好请问什么事")).label
    'neutral'
    >>> tracker.hear("你们烦不烦啊", measure(pcm2, "你们烦不烦啊")).label
    'angry'
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Final

import yaml

from edge.audio.prosody import Prosody
from edge.config import DATA_DIR
from edge.asr.language import looks_cantonese
from edge.errors import ConfigError
from edge.nlu.text import occurrences, pinyin_of, word_sounds

MOODS: Final = ("positive", "neutral", "impatient", "angry")
CUES_FILE: Final = DATA_DIR / "emotion.yaml"
_WEIGHTS: Final = {"pitch": 0.35, "energy": 0.30, "rate": 0.25, "range": 0.10}
"""Share of each voice feature in the arousal."""
_SCALES: Final = {"pitch": 3.0, "energy": 4.0, "rate": 0.25, "range": 3.0}
"""Change that counts as one unit: 3 semitones higher, 4 dB louder, 25% faster, 3 semitones wider."""
_SOUND_MATCHED: Final = ("angry", "impatient")
MIN_RATE_SYLLABLES: Final = 4
"""Fewer recognized characters than this and the speaking rate is left out."""


@dataclass(frozen=True)
class MoodCues:
    """Cue words per mood and the negations that cancel a cue right after them."""

    angry: tuple[str, ...]
    impatient: tuple[str, ...]
    positive: tuple[str, ...]
    negations: tuple[str, ...] = ("不", "没", "别", "唔", "冇")

    @classmethod
    def load(cls, path: str | Path = CUES_FILE) -> MoodCues:
        """Read a cue file; raises ConfigError naming the file and the missing list."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read mood cues {path}: {exc}") from None
        lists = {}
        for key in ("angry", "impatient", "positive", "negations"):
            value = data.get(key)
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ConfigError(f"{path}: `{key}` must be a list of words")
            lists[key] = tuple(sorted(value, key=len, reverse=True))
        return cls(**lists)

    def find(self, text: str) -> dict[str, list[str]]:
        """Cue words of each mood found in `text` (negated ones left out).

        An angry or impatient cue of two or more syllables also counts when it *sounds* the same (toneless
        Mandarin pinyin): the ASR hears the syllables and may pick other characters (气死 -> 器死 in
        服务器死我了). Not positive cues (几好 would match 几号) nor Cantonese ones (快啲 would match 快递).
        """
        found: dict[str, list[str]] = {"angry": [], "impatient": [], "positive": []}
        sounds: list[str] | None = None
        for mood in found:
            for cue in getattr(self, mood):
                starts = occurrences(list(text), list(cue))
                if not starts and mood in _SOUND_MATCHED and len(cue) >= 2 and not looks_cantonese(cue):
                    sounds = sounds if sounds is not None else pinyin_of(text)
                    starts = occurrences(sounds, list(word_sounds(cue)))
                if any(not (start > 0 and text[start - 1] in self.negations and cue[0] not in self.negations)
                       for start in starts):
                    found[mood].append(cue)
        return found



@lru_cache(maxsize=1)
def default_cues() -> MoodCues:
    return MoodCues.load()


@dataclass(frozen=True)
class MoodSettings:
    """Decision thresholds, in arousal units (see _SCALES)."""

    impatient_arousal: float = 1.0
    """A voice this agitated (with no cue words) is impatient."""
    impatient_rate: float = 0.5
    """Speaking this much faster than the caller's baseline (0.5 = 50%) is impatient; one caller's
    ordinary sentences vary by up to ~40% (measured on espeak voices)."""
    angry_arousal: float = 1.5
    """Impatient words said this agitatedly are angry."""
    calm_arousal: float = -0.5
    """Angry words said below this arousal count as impatient."""
    min_voice_s: float = 0.5
    """Utterances shorter than this (嗯, 好) say nothing about the voice."""
    baseline_utterances: int = 3
    """The first this many utterances (long enough) make the caller's baseline."""


@dataclass(frozen=True)
class Mood:
    """How one utterance sounded."""

    label: str
    """positive | neutral | impatient | angry."""
    arousal: float
    """Voice agitation against the caller's baseline: 0 as usual, 1 clearly raised."""
    cues: tuple[str, ...] = ()
    """Cue words heard, as "mood:word"."""
    voice: dict[str, float] = field(default_factory=dict)
    """Per feature change against the baseline (semitones, dB, rate ratio - 1)."""

    def to_dict(self) -> dict:
        return {"label": self.label, "arousal": round(self.arousal, 3), "cues": list(self.cues),
                "voice": {k: round(v, 3) for k, v in self.voice.items()}}


NEUTRAL: Final = Mood("neutral", 0.0)


def voice_change(prosody: Prosody, baseline: Prosody | None) -> dict[str, float]:
    """Pitch (semitones), loudness (dB), rate (ratio - 1) and range (semitones) against a baseline."""
    if baseline is None:
        return {}
    change = {}
    if prosody.f0_hz > 0 and baseline.f0_hz > 0:
        change["pitch"] = 12 * math.log2(prosody.f0_hz / baseline.f0_hz)
        change["range"] = prosody.f0_range_st - baseline.f0_range_st
    change["energy"] = prosody.energy_db - baseline.energy_db
    if prosody.rate_sps > 0 and baseline.rate_sps > 0:
        change["rate"] = prosody.rate_sps / baseline.rate_sps - 1.0
    return change


def arousal(change: dict[str, float]) -> float:
    """Weighted sum of the feature changes in units of _SCALES (features missing count 0)."""
    return sum(_WEIGHTS[k] * change[k] / _SCALES[k] for k in change)


def decide(cues: dict[str, list[str]], level: float, change: dict[str, float], settings: MoodSettings) -> str:
    """The mood label from cue words and voice (the rules in the module docstring)."""
    if cues["angry"]:
        return "angry" if level >= settings.calm_arousal else "impatient"
    if cues["impatient"]:
        return "angry" if level >= settings.angry_arousal else "impatient"
    agitated = level >= settings.impatient_arousal or change.get("rate", 0.0) >= settings.impatient_rate
    if cues["positive"]:
        return "positive"
    return "impatient" if agitated else "neutral"


class MoodTracker:
    """One caller's mood through a call (one per call; cheap)."""

    def __init__(self, cues: MoodCues | None = None, settings: MoodSettings | None = None) -> None:
        self.cues = cues or default_cues()
        self.settings = settings or MoodSettings()
        self._samples: list[Prosody] = []
        self.baseline: Prosody | None = None

    def hear(self, text: str, prosody: Prosody | None) -> Mood:
        """The mood of one utterance; long enough calm ones also refine the baseline."""
        found = self.cues.find(text or "")
        usable = prosody is not None and prosody.speech_s >= self.settings.min_voice_s
        change = voice_change(prosody, self.baseline) if usable else {}
        if sum(1 for ch in text or "" if "\u3400" <= ch <= "\u9fff") < MIN_RATE_SYLLABLES:
            change.pop("rate", None)  # a rate from two or three syllables is noise
        level = arousal(change)
        label = decide(found, level, change, self.settings)
        if usable and label in ("neutral", "positive") and len(self._samples) < self.settings.baseline_utterances:
            self._samples.append(prosody)
            self.baseline = _median(self._samples)
        cues = tuple(f"{mood}:{word}" for mood, words in found.items() for word in words)
        return Mood(label, level, cues, change)


def _median(samples: list[Prosody]) -> Prosody:
    def med(name: str) -> float:
        values = [getattr(p, name) for p in samples if getattr(p, name) > 0 or name == "energy_db"]
        return statistics.median(values) if values else 0.0

    return Prosody(f0_hz=med("f0_hz"), f0_range_st=med("f0_range_st"), energy_db=med("energy_db"),
                   rate_sps=med("rate_sps"), pause_ratio=med("pause_ratio"), speech_s=med("speech_s"),
                   voiced_ratio=med("voiced_ratio"))
