"""Prototypical-network training for the few-shot head.

Each episode samples a handful of intents, builds each one's prototype from a
few support utterances and classifies query utterances by cosine to those
prototypes. Support and query come from different families (paraphrase
groups) where an intent has several, so the head learns to match a new
phrasing of an idea, not a copy of it; sampling classes per episode is what
makes the space generalise to intents it never trained on.
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

_LOGGER = logging.getLogger(__name__)

Encode = Callable[[list[str]], dict[str, torch.Tensor]]


@dataclass
class EpisodeConfig:
    episodes: int = 300
    way: int = 12
    """Intents per episode."""
    shot: int = 5
    """Support utterances per intent (the prototype)."""
    query: int = 5
    lr: float = 0.01
    weight_decay: float = 0.0
    warmup: int = 50
    eval_every: int = 100
    validation_intents: int = 4
    """Intents kept out of the episodes and used only to choose the checkpoint: the
    head is for intents it never saw, so it is chosen on intents it never saw."""
    seed: int = 1234

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Item:
    text: str
    label: str
    family: str


def _by_label(items: Sequence[Item]) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {}
    for item in items:
        out.setdefault(item.label, {}).setdefault(item.family, []).append(item.text)
    return out


def _draw(families: dict[str, list[str]], n_support: int, n_query: int,
          rng: random.Random) -> tuple[list[str], list[str]]:
    names = list(families)
    rng.shuffle(names)
    if len(names) >= 2:
        cut = max(1, len(names) // 2)
        support_pool = [t for f in names[:cut] for t in families[f]]
        query_pool = [t for f in names[cut:] for t in families[f]]
    else:
        pool = families[names[0]][:]
        rng.shuffle(pool)
        support_pool, query_pool = pool[: len(pool) // 2 or 1], pool[len(pool) // 2 or 1:] or pool
    pick = lambda pool, n: [rng.choice(pool) for _ in range(n)] if len(pool) < n else rng.sample(pool, n)  # noqa: E731
    return pick(support_pool, n_support), pick(query_pool, n_query)


def centroids(model: nn.Module, encode: Encode, items: Sequence[Item], labels: list[str],
              batch_size: int = 256) -> np.ndarray:
    """Unit mean embedding per label (zero rows for labels without items)."""
    vectors = embed(model, encode, [i.text for i in items], batch_size)
    out = np.zeros((len(labels), vectors.shape[1]), dtype=np.float32)
    index = {label: n for n, label in enumerate(labels)}
    for vector, item in zip(vectors, items):
        out[index[item.label]] += vector
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


@torch.no_grad()
def embed(model: nn.Module, encode: Encode, texts: list[str], batch_size: int = 256) -> np.ndarray:
    model.eval()
    chunks = [model(**encode(texts[s:s + batch_size])).numpy() for s in range(0, len(texts), batch_size)]
    return np.concatenate(chunks).astype(np.float32)


def nearest_centroid_accuracy(model: nn.Module, encode: Encode, train: Sequence[Item],
                              dev: Sequence[Item], labels: list[str], only: Sequence[str] | None = None) -> float:
    """Macro-averaged per-label accuracy of nearest-centroid on dev (centroids from train over all
    labels), averaged over the labels in `only` (default all)."""
    cents = centroids(model, encode, train, labels)
    pred = (embed(model, encode, [i.text for i in dev]) @ cents.T).argmax(1)
    hits: dict[str, list[bool]] = {}
    for p, item in zip(pred, dev):
        hits.setdefault(item.label, []).append(labels[p] == item.label)
    keep = [label for label in hits if only is None or label in only]
    return float(np.mean([np.mean(hits[label]) for label in keep]))


def train(model: nn.Module, encode: Encode, train_items: Sequence[Item], dev_items: Sequence[Item],
          labels: list[str], config: EpisodeConfig, clean_train: Sequence[Item] | None = None) -> dict:
    """Train in place on episodes over all intents but a few validation ones; keep the checkpoint
    (the untrained one included) with the best dev nearest-centroid accuracy on those.

    clean_train: the un-augmented training items the dev centroids are built from (default train_items).
    """
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    pools = _by_label(train_items)
    candidates = sorted(label for label in pools if label != "other")
    validation = sorted(rng.sample(candidates, min(config.validation_intents, max(0, len(candidates) - 2))))
    classes = sorted(label for label in pools if label not in validation)
    clean = clean_train or train_items
    score = lambda: nearest_centroid_accuracy(model, encode, clean, dev_items, labels,  # noqa: E731
                                              only=validation or None)
    way = min(config.way, len(classes))
    log_scale = nn.Parameter(torch.tensor(math.log(10.0)))
    params = list(model.parameters()) + [log_scale]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    total = max(1, config.episodes)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / config.warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total))))
    # The untrained state (plain IDF) competes too: training must beat it on dev to be kept.
    acc = score()
    best = {"acc": acc, "episode": 0, "state": copy.deepcopy(model.state_dict())}
    history, losses = [{"episode": 0, "dev_accuracy": round(acc, 4)}], []
    for episode in range(1, config.episodes + 1):
        model.train()
        chosen = rng.sample(classes, way)
        support, query = [], []
        for label in chosen:
            s, q = _draw(pools[label], config.shot, config.query, rng)
            support += s
            query += q
        vectors = model(**encode(support + query))
        protos = nn.functional.normalize(vectors[: len(support)].view(way, config.shot, -1).mean(1), dim=-1)
        logits = log_scale.exp().clamp(max=50.0) * vectors[len(support):] @ protos.T
        target = torch.arange(way).repeat_interleave(config.query)
        loss = nn.functional.cross_entropy(logits, target)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if episode % config.eval_every == 0 or episode == total:
            acc = score()
            history.append({"episode": episode, "loss": round(float(np.mean(losses)), 4), "dev_accuracy": round(acc, 4)})
            _LOGGER.info("episode %d: loss %.4f, dev nearest-centroid accuracy %.4f", episode, np.mean(losses), acc)
            losses = []
            if acc > best["acc"]:
                best = {"acc": acc, "episode": episode, "state": copy.deepcopy(model.state_dict())}
    model.load_state_dict(best["state"])
    model.eval()
    return {"validation_intents": validation, "best_dev_accuracy": round(best["acc"], 4), "best_episode": best["episode"],
            "scale": round(float(log_scale.detach().exp()), 3), "history": history}
