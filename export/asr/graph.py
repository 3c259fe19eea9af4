"""Per-language decoding graphs: the CTC search under the domain character n-gram, for sherpa-onnx.

sherpa-onnx's FST decoder (``ctc_graph``) searches the acoustic model's
frame posteriors through a graph whose input labels are token id + 1
(0 is epsilon, 1 the blank) and reads the text off the input labels. Greedy
search followed by the homophone rescorer (edge/asr/rescore.py) can only swap
a character for a same-sound one; a search under the n-gram also weighs the
model's second choices (能试钱吗 -> 能实现吗 needs both).

The graph is the CTC topology composed with the n-gram, built directly:
per n-gram context two states, "in the spike of its last character" (that
character repeats for free; another character may start at once) and
"after a blank" (any character may start, the last one again too). A
character's arc costs ``-scale * log P(char | context) - bonus``; seen
n-grams have arcs of their own, the rest backs off through epsilon arcs to
the shorter context, down to a single context with an arc for every token.
The n-gram is the rescorer's mix for that language (its own and the shared
one), so graph and rescorer agree; a language's graph may mix in a general
n-gram too (``General``: for Mandarin, export/asr/general_lm.py), which the
rescorer does not carry. The file is OpenFST's "vector" format of
"standard" (tropical float) arcs, written here with numpy: kaldifst writes
the same bytes, but its pybind11 module, loaded beside sherpa-onnx's,
crashed the interpreter now and then as it exited or collected garbage
(seen in 2 of 16 test collections). The runtime checks the file
(edge/asr/modeldir.check_graph) and hands it to sherpa-onnx.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edge.asr.charlm import CharLm
from edge.asr.modeldir import FST_MAGIC
from edge.asr.rescore import Rescorer

BLANK_LABEL = 1
"""Input label of the CTC blank (token 0)."""
EPSILON = 0
_ARC = np.dtype([("ilabel", "<i4"), ("olabel", "<i4"), ("weight", "<f4"), ("nextstate", "<i4")])
_EXPANDED_MUTABLE = 0x3
"""The header's property bits: an expanded, mutable FST; OpenFST works out the rest itself."""


@dataclass
class Graph:
    """A weighted FST in memory: costs are tropical weights (-log probabilities, lower is better)."""

    start: int = 0
    finals: list[float] = field(default_factory=list)
    arcs: list[list[tuple[int, int, float, int]]] = field(default_factory=list)
    """Per state: (input label, output label, cost, next state)."""

    def add_state(self, final: float = math.inf) -> int:
        self.finals.append(final)
        self.arcs.append([])
        return len(self.finals) - 1

    def add_arc(self, state: int, ilabel: int, cost: float, target: int, olabel: int = EPSILON) -> None:
        self.arcs[state].append((ilabel, olabel, cost, target))

    def write(self, path: Path) -> None:
        """OpenFST's binary "vector" file of "standard" arcs, each state's arcs sorted by input label."""
        parts = [struct.pack("<i", FST_MAGIC)]
        for text in (b"vector", b"standard"):
            parts.append(struct.pack("<i", len(text)) + text)
        total = sum(len(a) for a in self.arcs)
        parts.append(struct.pack("<iiQqqq", 2, 0, _EXPANDED_MUTABLE, self.start, len(self.finals), total))
        for final, arcs in zip(self.finals, self.arcs):
            parts.append(struct.pack("<fq", final, len(arcs)))
            if arcs:
                parts.append(np.array(sorted(arcs, key=lambda a: (a[0], a[1])), _ARC).tobytes())
        Path(path).write_bytes(b"".join(parts))


@dataclass(frozen=True)
class General:
    """A general n-gram mixed into one language's graph: P = (1 - weight) P_domain + weight P_general."""

    lm: CharLm
    weight: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.weight < 1.0:
            raise ValueError(f"a general n-gram's weight must lie in [0, 1), got {self.weight}")


def contexts(rescorer: Rescorer, language: str, vocab: set[str],
             general: General | None = None) -> dict[str, set[str]]:
    """n-gram context (``^`` starts a sentence) -> the characters (and ``$``) seen after it, over the
    n-grams mixed for ``language`` (and ``general``'s); every token is a one-character context. n-grams
    with a character the model cannot write (the text-only lines have a few: 横竖) are left out: no path
    could read them."""
    seen: dict[str, set[str]] = {}
    for lm in rescorer.ngrams(language) + ([general.lm] if general and general.weight > 0 else []):
        for n in range(1, lm.order):
            for gram in lm.counts[n]:
                context = gram[1:-1] if gram.startswith("^") else gram[:-1]
                if (gram[-1] in vocab or gram[-1] == "$") and all(char in vocab for char in context):
                    seen.setdefault(gram[:-1], set()).add(gram[-1])
    for char in sorted(vocab):  # sorted: a set's order, and so the states' numbering, changes with the hash seed
        seen.setdefault(char, set())
    return seen


def build(rescorer: Rescorer, vocab: list[str], language: str, scale: float, bonus: float,
          general: General | None = None) -> Graph:
    """The graph for calls in ``language``.

    Args:
        vocab: the model's tokens after the blank, in id order (token id = index + 1).
        scale: weight of the n-gram's log-probabilities against the acoustic ones.
        bonus: reward per character, against the n-gram's preference for short texts.
        general: a general n-gram to mix in (its words know no sentence start: it sees ``^`` as no history).
    """
    label = {char: index + 2 for index, char in enumerate(vocab)}
    seen = contexts(rescorer, language, set(vocab), general)
    cache: dict[tuple[str, str], float] = {}
    mixed = general is not None and general.weight > 0

    def logp(history: str, char: str) -> float:
        key = (history, char)
        if key not in cache:
            value = rescorer.logprob(history, char, language)
            if mixed:
                value = math.log((1 - general.weight) * math.exp(value)
                                 + general.weight * general.lm.prob(history.replace("^", ""), char))
            cache[key] = value
        return cache[key]

    fst = Graph()
    unigram = fst.add_state()  # the empty context, after a blank: an arc for every token
    ready = {h: fst.add_state() for h in seen}
    spike = {h: fst.add_state() for h in seen if h != "^"}
    fst.start = ready["^"]

    def emit(state: int, history: str, char: str) -> None:
        longer = (history + char)[-(rescorer.order - 1):]
        target = longer if seen.get(longer) else char
        fst.add_arc(state, label[char], -scale * logp(history, char) - bonus, spike[target], label[char])

    for history, chars in seen.items():
        back = -scale * math.log(_backoff(history, chars, logp))
        end = -scale * logp(history, "$")
        shorter = history[1:]
        fst.add_arc(ready[history], BLANK_LABEL, 0.0, ready[history])
        fst.add_arc(ready[history], EPSILON, back, ready[shorter] if shorter in ready else unigram)
        fst.finals[ready[history]] = end
        for char in chars - {"$"}:
            emit(ready[history], history, char)
        if history in spike:
            last = history[-1]
            fst.add_arc(spike[history], label[last], 0.0, spike[history])
            fst.add_arc(spike[history], BLANK_LABEL, 0.0, ready[history])
            # backing off keeps the last character while the context still ends with it; only the empty
            # context forgets it, where a doubled character costs its unigram, far more than the bonus
            fst.add_arc(spike[history], EPSILON, back, spike[shorter] if shorter in spike else unigram)
            fst.finals[spike[history]] = end
            for char in chars - {"$", last}:
                emit(spike[history], history, char)
    fst.add_arc(unigram, BLANK_LABEL, 0.0, unigram)
    for char in vocab:
        emit(unigram, "", char)
    fst.finals[unigram] = -scale * logp("", "$")
    return fst


def _backoff(history: str, chars: set[str], logp: Callable[[str, str], float]) -> float:
    """The share of the shorter context's probability left for characters unseen after ``history``."""
    ordered = sorted(chars)  # a set's order changes with the hash seed, and with it the float sum's last bit
    left = 1.0 - sum(math.exp(logp(history, c)) for c in ordered)
    left_shorter = 1.0 - sum(math.exp(logp(history[1:], c)) for c in ordered)
    return min(1.0, max(left, 1e-9) / max(left_shorter, 1e-9))


def write(rescorer: Rescorer, vocab: list[str], folder: Path, scale: float, bonus: float,
          general: dict[str, General] | None = None) -> dict[str, str]:
    """One graph per language the rescorer knows, as ``graph_<code>.fst`` in ``folder``: code -> file name.

    Args:
        general: language code -> the general n-gram mixed into that language's graph.
    """
    names = {}
    for language in rescorer.languages:
        name = f"graph_{language}.fst"
        build(rescorer, vocab, language, scale, bonus, (general or {}).get(language)).write(folder / name)
        names[language] = name
    return names
