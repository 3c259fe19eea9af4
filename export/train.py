"""One training loop for every classifier export/ builds (teacher and student).

Multi-label: sigmoid outputs, binary cross-entropy on hard labels, plus, for
distillation, cross-entropy against the teacher's temperature-softened
probabilities. The checkpoint kept is the best on the dev split, never test.
"""

from __future__ import annotations

import copy
import logging
import math
import random
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from edge.nlu.intent import decide_labels
from edge.nlu.metrics import evaluate

_LOGGER = logging.getLogger(__name__)

Encoder = Callable[[list[str]], dict[str, torch.Tensor]]
"""Texts -> model keyword arguments (input_ids, attention_mask, maybe pinyin_ids)."""


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 2e-3
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    temperature: float = 2.0
    """Distillation temperature (soft targets are teacher logits / T)."""
    alpha: float = 0.7
    """Weight of the distillation loss against the hard-label loss."""
    seed: int = 1234

    def to_dict(self) -> dict:
        return asdict(self)


def multi_hot(label_sets: Sequence[Sequence[str]], labels: list[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    out = np.zeros((len(label_sets), len(labels)), dtype=np.float32)
    for row, label_set in enumerate(label_sets):
        for label in label_set:
            out[row, index[label]] = 1.0
    return out


@torch.no_grad()
def predict_logits(model: nn.Module, encode: Encoder, texts: list[str], batch_size: int = 256) -> np.ndarray:
    model.eval()
    chunks = []
    for start in range(0, len(texts), batch_size):
        chunks.append(model(**encode(texts[start:start + batch_size])).float().numpy())
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def decide_all(probs: np.ndarray, labels: list[str], threshold: float, other: str | None) -> list[list[str]]:
    return [decide_labels(row, labels, threshold, other) for row in probs]


def dev_macro_f1(probs: np.ndarray, gold: Sequence[Sequence[str]], labels: list[str], threshold: float,
                 other: str | None) -> float:
    return evaluate(gold, decide_all(probs, labels, threshold, other), other).macro_f1


def tune_threshold(probs: np.ndarray, gold: Sequence[Sequence[str]], labels: list[str],
                   other: str | None) -> tuple[float, float]:
    """Threshold with the best dev macro-F1 (ties: the one nearest 0.5)."""
    candidates = [round(0.2 + 0.05 * i, 2) for i in range(13)]
    scored = [(dev_macro_f1(probs, gold, labels, t, other), -abs(t - 0.5), t) for t in candidates]
    best = max(scored)
    return best[2], best[0]


def train(model: nn.Module, encode: Encoder, texts: list[str], targets: np.ndarray,
          dev_texts: list[str], dev_gold: Sequence[Sequence[str]], labels: list[str], other: str | None,
          config: TrainConfig, soft_logits: np.ndarray | None = None, desc: str = "train",
          progress: bool = True) -> dict:
    """Train in place; load the best dev checkpoint at the end. Returns history."""
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    steps_per_epoch = math.ceil(len(texts) / config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = max(1, int(total * config.warmup_ratio))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
    bce = nn.BCEWithLogitsLoss()
    targets_t = torch.from_numpy(targets)
    soft_t = torch.sigmoid(torch.from_numpy(soft_logits) / config.temperature) if soft_logits is not None else None
    # Short-to-long in the first epoch (SortaGrad) steadies from-scratch training.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    best = {"f1": -1.0, "epoch": -1, "state": None}
    history = []
    bar = tqdm(range(config.epochs), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        if epoch > 0:
            rng.shuffle(order)
        losses = []
        for start in range(0, len(order), config.batch_size):
            batch = order[start:start + config.batch_size]
            logits = model(**encode([texts[i] for i in batch]))
            loss = bce(logits, targets_t[batch])
            if soft_t is not None:
                soft_loss = nn.functional.binary_cross_entropy_with_logits(logits / config.temperature, soft_t[batch])
                loss = (1 - config.alpha) * loss + config.alpha * config.temperature ** 2 * soft_loss
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        probs = sigmoid(predict_logits(model, encode, dev_texts))
        f1 = dev_macro_f1(probs, dev_gold, labels, 0.5, other)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "dev_macro_f1": round(f1, 4)})
        bar.set_postfix(loss=f"{np.mean(losses):.4f}", dev_f1=f"{f1:.4f}")
        if f1 > best["f1"]:
            best = {"f1": f1, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
    model.load_state_dict(best["state"])
    model.eval()
    _LOGGER.info("%s: best dev macro-F1 %.4f at epoch %d", desc, best["f1"], best["epoch"])
    return {"best_dev_macro_f1": round(best["f1"], 4), "best_epoch": best["epoch"], "history": history}
