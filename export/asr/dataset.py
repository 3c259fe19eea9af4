"""Synthesize, augment and featurize the training set; save it as one .npz.

Items: every training text spoken twice (random training settings), `yue`
readings of half the Mandarin texts, and concatenations of 2-3 texts of one
language (longer utterances, pauses between phrases). Half of all items go
through the phone-line augmentation. Work runs in a small process pool.
"""

from __future__ import annotations

import logging
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.asr.text import normalize
from export.asr.texts import Utterance, with_cantonese_readings

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    text: str
    lang: str
    seed: int
    more_voices: bool = False
    """Spoken by voices.MORE_VARIANTS half the time."""


def plan(train: list[Utterance], repeats: int = 2, concatenations: int = 6000, seed: int = 1234,
         yue_readings: float = 0.5, once: list[Utterance] = ()) -> list[Item]:
    """Items to render: each text ``repeats`` times, `yue` readings of a share of the Mandarin texts,
    ``concatenations`` multi-text items, and each of ``once`` once (after the rest, so adding them leaves
    the other items' seeds unchanged)."""
    rng = random.Random(seed)
    items = [Item(u.text, u.lang, rng.randrange(1 << 30)) for u in train for _ in range(repeats)]
    items += [Item(u.text, "yue", rng.randrange(1 << 30))
              for u in with_cantonese_readings(train, yue_readings, seed)[len(train):]]
    by_lang: dict[str, list[str]] = {}
    for item in items:
        by_lang.setdefault(item.lang, []).append(item.text)
    langs = sorted(by_lang)
    weights = [len(by_lang[lang]) for lang in langs]
    for _ in range(concatenations):
        lang = rng.choices(langs, weights)[0]
        parts = rng.sample(by_lang[lang], rng.choice((2, 2, 3)))
        items.append(Item("，".join(parts), lang, rng.randrange(1 << 30)))
    rng.shuffle(items)
    items += [Item(u.text, u.lang, rng.randrange(1 << 30)) for u in once]
    return items


def resampled(items: list[Item], spoken: list[Utterance], sample: int, latin_repeats: int, seed: int) -> list[Item]:
    """A shorter run's items: ``sample`` of ``items`` drawn at random, plus ``latin_repeats`` more renderings
    of every Mandarin text with Latin letters, shuffled together.

    Why: a continuation on the 2-core box hears about a day of speech in half an hour, so it cannot replay
    every item; and the model spells an English word only once it has heard it, while those texts are a
    few percent of the plan."""
    rng = random.Random(seed)
    out = rng.sample(items, min(sample, len(items)))
    latin = [u for u in spoken if u.lang == "cmn" and any("a" <= ch <= "z" for ch in u.text.lower())]
    out += [Item(u.text, u.lang, rng.randrange(1 << 30)) for u in latin for _ in range(latin_repeats)]
    rng.shuffle(out)
    return out


def vocabulary(texts: list[str]) -> list[str]:
    """Characters ordered by frequency (ties by code point); blank is added by the model."""
    counts: dict[str, int] = {}
    for text in texts:
        for ch in normalize(text):
            counts[ch] = counts.get(ch, 0) + 1
    return sorted(counts, key=lambda c: (-counts[c], c))


def _render(item: Item) -> np.ndarray:
    from edge.tts.espeak import speak
    from export.asr.augment import apply
    from export.asr.features import fbank
    from export.asr.voices import train_line, train_settings

    rng = random.Random(item.seed)
    pcm = speak(item.text, train_settings(item.lang, rng, item.more_voices))
    pcm = apply(pcm, train_line(rng), np.random.default_rng(item.seed))
    return fbank(pcm).astype(np.float16)


def build(items: list[Item], vocab: list[str], out: Path, workers: int = 2) -> Path:
    """Render every item and write features, lengths and targets to ``out`` (.npz)."""
    index = {ch: i + 1 for i, ch in enumerate(vocab)}  # 0 is the CTC blank
    with ProcessPoolExecutor(max_workers=workers) as pool:
        feats = list(pool.map(_render, items, chunksize=64))
    targets = [np.array([index[c] for c in normalize(i.text) if c in index], np.int32) for i in items]
    keep = [k for k, (f, t) in enumerate(zip(feats, targets)) if len(t) and len(f) // 4 > len(t) + 2]
    _LOGGER.info("%d of %d items kept (others too short for their text)", len(keep), len(items))
    frames = np.concatenate([feats[k] for k in keep])
    labels = np.concatenate([targets[k] for k in keep])
    np.savez(out, frames=frames, frame_lens=np.array([len(feats[k]) for k in keep], np.int64),
             labels=labels, label_lens=np.array([len(targets[k]) for k in keep], np.int64),
             langs=np.array([items[k].lang for k in keep]))
    return out
