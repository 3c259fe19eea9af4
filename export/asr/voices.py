"""Synthesis and line settings for training, and disjoint ones for held-out tests.

Held-out audio uses voice variants, rates and pitches that never occur in
training, so the test measures generalisation to unheard speakers as far as
espeak-ng can provide them.
"""

from __future__ import annotations

import random
from typing import Final

from edge.tts.espeak import EspeakSettings
from export.asr.augment import LineSettings

TRAIN_VARIANTS: Final = ("", "m1", "m2", "m3", "m4", "m5", "m8", "f1", "f2", "f3", "f5")
TRAIN_RATES: Final = (115, 130, 145, 160, 175, 190, 205, 225)
TRAIN_PITCHES: Final = (25, 33, 41, 50, 58, 66, 74)
TRAIN_RANGES: Final = (30, 50, 70, 90)

MORE_VARIANTS: Final = (
    "Alex", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene", "Gene2", "Henrique", "Hugo", "Mario",
    "Michael", "Mike", "Nguyen", "Storm", "Tweaky", "aunty", "belinda", "boris", "croak", "ed", "fast", "grandma",
    "grandpa", "iven3", "iven4", "john", "linda", "max", "michel", "miguel", "norbert", "pablo", "paul", "quincy",
    "robert", "robosoft8", "sandro", "steph", "steph2", "steph3", "victor")
"""More speakers for a continuation (build data --more-voices): the espeak-ng variants beyond the first
eleven that stage 6 still understood (greedy CER <= 15% over the phone line, 60 Mandarin tuning sentences,
session 19); the rest (robots, whispers, variants it heard at 18-100%) are too far from a caller. Not "rob":
libespeak-ng segfaults on it at pitch 25 with range 90, a training setting (我认识你吗). The others rendered
37,644 items, and 300 training texts each at that setting, without a fault. Lower pitches with a range of 90
or more fault on many variants, m7 and m8 too; no training setting goes there, and the runtime keeps range 50."""

TEST_VARIANTS: Final = ("m6", "m7", "f4")
TEST_RATES: Final = (138, 168, 198)
TEST_PITCHES: Final = (37, 54, 70)
TEST_RANGE: Final = 60


def _voice(lang: str, variant: str) -> str:
    return f"{lang}+{variant}" if variant else lang


def train_settings(lang: str, rng: random.Random, more_voices: bool = False) -> EspeakSettings:
    """Args:
        more_voices: half the time, a speaker of MORE_VARIANTS instead.
    """
    variants = MORE_VARIANTS if more_voices and rng.random() < 0.5 else TRAIN_VARIANTS
    return EspeakSettings(voice=_voice(lang, rng.choice(variants)), rate_wpm=rng.choice(TRAIN_RATES),
                          pitch=rng.choice(TRAIN_PITCHES), pitch_range=rng.choice(TRAIN_RANGES))


def test_settings(lang: str, index: int) -> EspeakSettings:
    """Deterministic held-out settings, cycling through the held-out grid."""
    return EspeakSettings(voice=_voice(lang, TEST_VARIANTS[index % 3]), rate_wpm=TEST_RATES[(index // 3) % 3],
                          pitch=TEST_PITCHES[(index // 9) % 3], pitch_range=TEST_RANGE)


def train_line(rng: random.Random) -> LineSettings:
    """Half clean (light noise or none), half phone line at SNR 8-30 dB."""
    pad = (rng.randrange(20, 400), rng.randrange(20, 400))
    gain = rng.uniform(-14.0, 6.0)
    if rng.random() < 0.5:
        snr = None if rng.random() < 0.5 else rng.uniform(25, 45)
        return LineSettings(phone=False, snr_db=snr, noise=rng.choice(("white", "pink")), gain_db=gain, pad_ms=pad)
    return LineSettings(phone=True, snr_db=rng.uniform(8, 30), noise=rng.choice(("white", "pink", "brown")),
                        gain_db=gain, pad_ms=pad)


CLEAN_TEST: Final = LineSettings(phone=False, snr_db=None, gain_db=0.0, pad_ms=(200, 200))
PHONE_TEST: Final = LineSettings(phone=True, snr_db=15.0, noise="pink", gain_db=-6.0, pad_ms=(200, 200))
