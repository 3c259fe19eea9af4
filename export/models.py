"""The classifiers export/ trains: a BERT encoder over characters plus hashed
character n-gram embeddings (fastText-style) inside the graph.

Why the n-grams: on short callee turns a BERT trained from scratch on a few
thousand utterances loses to a character n-gram linear model; giving the
encoder hashed bigram/trigram embeddings, computed from the token ids inside
the ONNX graph, gives it the n-gram model's strength at no runtime cost (the
runtime still feeds only input_ids and attention_mask).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from transformers import BertConfig, BertModel

_HASH_PRIME = 1009
# Every step of the rolling hash is reduced modulo the bucket count, so values
# stay below 2**31: OpenVINO's CPU plugin runs int64 arithmetic in int32, and a
# hash that overflows there lands in other buckets than in onnxruntime/torch.


@dataclass
class HybridConfig:
    vocab_size: int
    num_labels: int
    hidden: int = 128
    layers: int = 2
    heads: int = 4
    intermediate: int = 256
    max_length: int = 64
    ngram_buckets: int = 16384
    ngram_orders: tuple[int, ...] = (2, 3)
    dropout: float = 0.1
    pinyin_vocab_size: int = 0
    """> 0 adds a toneless-pinyin channel (homophones share its embeddings)."""
    pinyin_buckets: int = 4096

    def to_dict(self) -> dict:
        return asdict(self)


TEACHER = dict(hidden=256, layers=3, heads=4, intermediate=512, ngram_buckets=8192)
STUDENT = dict(hidden=128, layers=2, heads=4, intermediate=256, ngram_buckets=16384)


class HashedNgrams(nn.Module):
    """Sum of embeddings of the character n-grams ending at each position."""

    def __init__(self, buckets: int, orders: tuple[int, ...], dim: int):
        super().__init__()
        self.buckets = buckets
        self.orders = orders
        self.table = nn.Embedding(buckets * len(orders), dim)
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = 0
        hashed = torch.remainder(input_ids, self.buckets)
        shifted = input_ids
        for k in range(1, max(self.orders)):
            shifted = nn.functional.pad(shifted[:, :-1], (1, 0))
            hashed = torch.remainder(hashed * _HASH_PRIME + shifted, self.buckets)
            order = k + 1
            if order in self.orders:
                offset = self.orders.index(order) * self.buckets
                out = out + self.table(hashed + offset)
        return out


class HybridClassifier(nn.Module):
    """BERT over characters + hashed n-grams; logits for multi-label sigmoid."""

    def __init__(self, config: HybridConfig):
        super().__init__()
        self.config = config
        self.chars = nn.Embedding(config.vocab_size, config.hidden, padding_idx=0)
        self.ngrams = HashedNgrams(config.ngram_buckets, config.ngram_orders, config.hidden)
        bert_config = BertConfig(
            vocab_size=8, hidden_size=config.hidden, num_hidden_layers=config.layers,
            num_attention_heads=config.heads, intermediate_size=config.intermediate,
            max_position_embeddings=config.max_length + 2, hidden_dropout_prob=config.dropout,
            attention_probs_dropout_prob=config.dropout, attn_implementation="eager",
        )
        self.bert = BertModel(bert_config, add_pooling_layer=False)
        if config.pinyin_vocab_size:
            self.pinyin = nn.Embedding(config.pinyin_vocab_size, config.hidden, padding_idx=0)
            self.pinyin_ngrams = HashedNgrams(config.pinyin_buckets, (2,), config.hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(2 * config.hidden, config.num_labels)

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              pinyin_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The utterance vector the head reads ([CLS] state + n-gram bag); few-shot intents use it too."""
        embeds = self.chars(input_ids) + self.ngrams(input_ids)
        if pinyin_ids is not None and self.config.pinyin_vocab_size:
            embeds = embeds + self.pinyin(pinyin_ids) + self.pinyin_ngrams(pinyin_ids)
        hidden = self.bert(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(embeds.dtype)
        bag = (embeds * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return torch.cat([hidden[:, 0], bag], dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                pinyin_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.dropout(self.embed(input_ids, attention_mask, pinyin_ids)))


class ExportedClassifier(nn.Module):
    """What goes into ONNX: logits and the utterance embedding."""

    def __init__(self, model: HybridClassifier):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, pinyin_ids=None):
        embedding = self.model.embed(input_ids, attention_mask, pinyin_ids)
        return self.model.head(embedding), embedding
