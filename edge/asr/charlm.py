"""The domain character n-gram (``lm.json``): Witten-Bell interpolated probabilities.

The homophone rescorer (edge/asr/rescore.py) scores whole sentences with
it: one n-gram over all training texts, and for Cantonese calls one over
the Cantonese texts alone, mixed in. ``^`` marks the start of a sentence
and ``$`` its end.
"""

from __future__ import annotations

import math
from collections import defaultdict


class CharLm:
    """Example:
        >>> lm = CharLm(json.loads(Path("edge/models/default/asr/lm.json").read_text()))
        >>> lm.logprob("^我", "们") > lm.logprob("^我", "门")
        True
    """

    def __init__(self, lm: dict) -> None:
        self.order = int(lm["order"])
        self.counts = [dict(c) for c in lm["counts"]]
        self._total = sum(self.counts[0].values())
        self._vocab = len(self.counts[0]) + 1
        # context -> [times seen with a continuation, distinct continuations]
        history: list[dict[str, list[int]]] = [defaultdict(lambda: [0, 0]) for _ in range(self.order)]
        for n in range(1, self.order):
            for gram, count in self.counts[n].items():
                entry = history[n][gram[:-1]]
                entry[0] += count
                entry[1] += 1
        self._history = [dict(h) for h in history]
        self._cache: dict[str, float] = {}

    def prob(self, history: str, char: str) -> float:
        """P(char | history) under Witten-Bell interpolation (history: up to order-1 chars); characters
        the texts never had keep a small add-one chance."""
        p = (self.counts[0].get(char, 0) + 1) / (self._total + self._vocab)
        for n in range(1, min(len(history), self.order - 1) + 1):
            context = history[-n:]
            seen, distinct = self._history[n].get(context, (0, 0))
            if seen == 0:
                break
            p = (self.counts[n].get(context + char, 0) + distinct * p) / (seen + distinct)
        return p

    def logprob(self, history: str, char: str) -> float:
        key = history[-(self.order - 1):] + "\x00" + char
        cached = self._cache.get(key)
        if cached is None:
            cached = math.log(self.prob(history, char))
            if len(self._cache) < 200000:
                self._cache[key] = cached
        return cached
