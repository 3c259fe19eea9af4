"""The few-shot head: a small utterance encoder whose cosine tells intents
apart, including intents it never saw.

Why not the classifier's pooled vector: the classifier is trained to separate
its own labels, so what tells an unseen intent apart (试用 vs 多少钱) is
squeezed out of it (benchmarks/fewshot.md: F1 0.18 at k=10). A dense head
trained contrastively has the same flaw (measured on dev, ask_trial held out,
k=10: 0.35 F1 alone, 0.24 mixed half-and-half with the bag below). What
carries an unseen intent is its own words, so the head is a TF-IDF-like bag of
characters and hashed character bigrams whose per-feature weights start at
IDF and are then trained on prototypical episodes (export/episodes.py), so
that n-grams which say little about intent weigh less; features it never saw
keep their IDF weight, and the checkpoint (the untrained IDF one included) is
chosen on intents kept out of training. It reads the classifier's feeds
(input_ids, attention_mask from the bundle's tokenizer), so a turn is encoded
once, and retrains in a few minutes on one thread, so a benchmark can retrain
it per held-out intent.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from export.models import _HASH_PRIME

OPSET_VERSION = 17

DIALECT_ALIASES: dict[str, str] = {
    "佢": "他", "唔": "不", "咗": "了", "冇": "没", "嘅": "的", "喺": "在", "哋": "们", "俾": "给", "畀": "给",
    "啲": "些", "嚟": "来", "搵": "找", "揾": "找", "睇": "看", "咁": "这", "噉": "这", "乜": "什", "咩": "么",
    "嘢": "西", "讲": "说", "勒": "这", "莫": "没", "咋": "怎", "啥": "什",
}
"""Cantonese and Sichuanese characters read as their Mandarin counterpart (佢 -> 他, 唔 -> 不, 勒个 -> 这个),
one character for one, after OpenCC's Traditional -> Simplified: a few-shot intent given Mandarin examples
then shares n-grams with a dialect caller's turn (他不在 / 佢唔喺度). Ambiguous ones (系: 系统) are left out.
Measured on dev (benchmarks/fewshot_dev.py with the built-in head rebuilt, 22 intents held out in turn):
mean F1 at k=5/10/20 0.471/0.533/0.561 -> 0.482/0.540/0.574."""


@dataclass
class EmbedderConfig:
    vocab_size: int
    ngram_buckets: int = 8192
    ngram_orders: tuple[int, ...] = (2,)
    """Characters + bigrams: on dev (4 held-out intents, k=10) trigrams cost 0.014 F1 on average."""
    aliases: dict[str, str] = field(default_factory=dict)
    """Character -> character read the same before the bag (DIALECT_ALIASES for the shipped head);
    pairs whose characters the tokenizer lacks are skipped."""

    def to_dict(self) -> dict:
        return asdict(self)


class LexicalBag(nn.Module):
    """IDF-weighted bag of characters and hashed character n-grams, L2-normalised:
    a TF-IDF vector over vocab_size + buckets * len(orders) dimensions, computed in the graph.

    Why: an intent the head never trained on is told apart mostly by its own words
    (试用, 免费), whose learned embeddings got no training signal; this channel keeps
    them (measured on dev: TF-IDF nearest-centroid beats the learned space alone on
    a held-out intent). A random low-dimensional projection of it lost too much
    (0.44 vs 0.81 F1 on dev at k=10), so it stays exact and sparse-in-dense.
    Weights: IDF from the training text (fit_idf) times a trained factor.
    """

    def __init__(self, vocab_size: int, buckets: int, orders: tuple[int, ...]):
        super().__init__()
        self.vocab_size, self.buckets, self.orders = vocab_size, buckets, orders
        self.size = vocab_size + buckets * len(orders)
        self.register_buffer("remap", torch.arange(vocab_size))
        """Token id -> the id it is read as (aliases); identity by default."""
        self.register_buffer("idf", torch.ones(self.size))
        self.log_weight = nn.Parameter(torch.zeros(self.size))
        """Trained on episodes; the feature weight is idf * exp(log_weight)."""

    def ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[batch, length, 1 + len(orders)]: the character id and its n-grams' bucket ids."""
        input_ids = self.remap[input_ids]
        out = [input_ids]
        hashed = torch.remainder(input_ids, self.buckets)
        shifted = input_ids
        for k in range(1, max(self.orders)):
            shifted = nn.functional.pad(shifted[:, :-1], (1, 0))
            hashed = torch.remainder(hashed * _HASH_PRIME + shifted, self.buckets)
            if k + 1 in self.orders:
                out.append(hashed + self.vocab_size + self.orders.index(k + 1) * self.buckets)
        return torch.stack(out, dim=-1)

    @torch.no_grad()
    def fit_idf(self, batches) -> None:
        """Smoothed IDF from (input_ids, attention_mask) batches; unseen ids get the rarest weight."""
        df = torch.zeros_like(self.idf)
        docs = 0
        for input_ids, attention_mask in batches:
            ids = self.ids(input_ids)
            keep = attention_mask.unsqueeze(-1).expand_as(ids).bool().clone()
            keep[:, 0] = False  # [CLS]
            for row in range(ids.shape[0]):
                df[torch.unique(ids[row][keep[row]])] += 1
            docs += ids.shape[0]
        self.idf.copy_(torch.log((1.0 + docs) / (1.0 + df)) + 1.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        ids = self.ids(input_ids)
        weights = self.idf * self.log_weight.exp()
        keep = attention_mask.to(self.idf.dtype) * (torch.arange(ids.shape[1]) > 0).to(self.idf.dtype)  # not [CLS]
        weight = weights[ids] * keep.unsqueeze(-1)
        flat = ids.reshape(ids.shape[0], -1)
        bag = torch.zeros(ids.shape[0], self.size, dtype=weight.dtype).scatter_add(1, flat, weight.reshape(flat.shape))
        return nn.functional.normalize(bag, dim=-1)


class FewShotEmbedder(nn.Module):
    """Characters + hashed n-grams -> weighted bag -> unit vector of size vocab_size + buckets * len(orders)."""

    def __init__(self, config: EmbedderConfig, token_to_id: Callable[[str], int | None] | None = None):
        """token_to_id (the bundle tokenizer's) turns config.aliases into the id remap; needed when there are aliases."""
        super().__init__()
        self.config = config
        self.bag = LexicalBag(config.vocab_size, config.ngram_buckets, tuple(config.ngram_orders))
        if config.aliases and token_to_id is None:
            raise ValueError("EmbedderConfig.aliases needs token_to_id (the bundle tokenizer's token_to_id)")
        self.aliases_used: dict[str, str] = {}
        for source, target in (config.aliases or {}).items():
            a, b = token_to_id(source), token_to_id(target)
            if a is not None and b is not None and a < config.vocab_size and b < config.vocab_size:
                self.bag.remap[a] = b
                self.aliases_used[source] = target

    @property
    def out_dim(self) -> int:
        return self.bag.size

    def fit_idf(self, batches) -> None:
        self.bag.fit_idf(batches)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                pinyin_ids: torch.Tensor | None = None) -> torch.Tensor:
        """pinyin_ids is accepted (the bundle's feeds) and unused."""
        return self.bag(input_ids, attention_mask)


def export_onnx(model: FewShotEmbedder, path: Path) -> Path:
    """Legacy exporter (one file); output "embedding" [batch, dim], unit rows."""
    model.eval()
    config = model.config
    ids = torch.randint(3, max(4, config.vocab_size), (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    args, inputs = (ids, mask), ["input_ids", "attention_mask"]
    axes = {name: {0: "batch", 1: "length"} for name in inputs} | {"embedding": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, args, str(path), input_names=inputs, output_names=["embedding"],
                          dynamic_axes=axes, opset_version=OPSET_VERSION, dynamo=False)
    return path
