"""Train the CTC model on the rendered set within a wall-clock budget.

What made this converge on 2 CPU cores (../shared/FINDINGS.md): pre-LN
blocks, short-to-long batches in the first epoch (SortaGrad), Adam with
warm-up then cosine decay, SpecAugment only after the model has started to
align. The learning-rate schedule runs on elapsed time over the budget, so
the run ends on time even when the box is shared.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from export.asr.model import CtcModel, ModelConfig, subsampled_lengths

_LOGGER = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    budget_s: float = 35 * 60
    """Wall-clock training time in seconds; the cosine schedule ends there."""
    max_frames: int = 3000
    """Feature frames (10 ms) per batch, padding included."""
    peak_lr: float = 1.5e-3
    warmup_steps: int = 400
    specaug_after: int = 1500
    """Step from which SpecAugment masks are applied."""
    init: str | None = None
    """Checkpoint (model.pt) to continue from, e.g. to give a bootstrap run more time; None starts fresh."""
    threads: int = 2
    """Torch threads. Two on the idle 2-core box: an hour reached 14.6% held-out CER against 17.6% on one
    thread (benchmarks/results/asr_cpu_rebuild.md). Pass 1 on a *shared* box: there 1 thread ran 10x
    faster than 2 (measured: 3,500 vs 340 frames/s while other jobs ran), as every op waits for the
    slower core."""
    device: str = "cpu"
    """"cpu", or "cuda" where a GPU is lent (same recipe, bigger batches fit)."""
    seed: int = 1234
    blend: float = 1.0
    """With ``init``: the weights written are ``blend`` x the trained ones + (1 - blend) x ``init``'s. A short
    continuation on a new mix forgets some of what ``init`` knew; stepping part of the way back keeps most of
    the gain (session 16 chose 0.85 on the tuning texts)."""

    def __post_init__(self) -> None:  # refused at once, not after the training budget is spent
        if not 0.0 <= self.blend <= 1.0:
            raise ValueError(f"blend weight {self.blend} is outside [0, 1]")
        if self.blend != 1.0 and not self.init:
            raise ValueError("a blend needs a start to blend with (init)")


class Data:
    def __init__(self, path: Path) -> None:
        npz = np.load(path)
        self.frames = npz["frames"]
        self.frame_lens = npz["frame_lens"]
        self.labels = npz["labels"]
        self.label_lens = npz["label_lens"]
        self.frame_offsets = np.concatenate([[0], np.cumsum(self.frame_lens)])
        self.label_offsets = np.concatenate([[0], np.cumsum(self.label_lens)])

    def __len__(self) -> int:
        return len(self.frame_lens)

    def batches(self, max_frames: int, rng: random.Random) -> list[list[int]]:
        order = sorted(range(len(self)), key=lambda i: (self.frame_lens[i], rng.random()))
        out, current, longest = [], [], 0
        for i in order:
            longest_next = max(longest, int(self.frame_lens[i]))
            if current and longest_next * (len(current) + 1) > max_frames:
                out.append(current)
                current, longest_next = [], int(self.frame_lens[i])
            current.append(i)
            longest = longest_next
        if current:
            out.append(current)
        return out

    def collate(self, batch: list[int]) -> tuple[torch.Tensor, ...]:
        lens = self.frame_lens[batch]
        x = np.zeros((len(batch), int(lens.max()), self.frames.shape[1]), np.float32)
        ys = []
        for row, i in enumerate(batch):
            x[row, :lens[row]] = self.frames[self.frame_offsets[i]:self.frame_offsets[i + 1]]
            ys.append(self.labels[self.label_offsets[i]:self.label_offsets[i + 1]])
        return (torch.from_numpy(x), torch.from_numpy(lens), torch.from_numpy(np.concatenate(ys)).long(),
                torch.from_numpy(self.label_lens[batch]))


def spec_augment(x: torch.Tensor, lens: torch.Tensor, rng: random.Random) -> torch.Tensor:
    x = x.clone()
    for row in range(x.shape[0]):
        for _ in range(2):
            width = rng.randrange(0, 16)
            start = rng.randrange(0, x.shape[2] - width)
            x[row, :, start:start + width] = 0.0
        length = int(lens[row])
        for _ in range(2):
            width = rng.randrange(0, max(1, int(length * 0.05)) + 1)
            start = rng.randrange(0, max(1, length - width))
            x[row, start:start + width, :] = 0.0
    return x


def train(data_path: Path, vocab_size: int, out_dir: Path, config: TrainConfig,
          model_config: ModelConfig | None = None) -> dict:
    """Train and write ``out_dir/model.pt`` and ``out_dir/train.json``; return the record."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    rng = random.Random(config.seed)
    data = Data(data_path)
    mcfg = model_config or ModelConfig(vocab_size=vocab_size)
    model = CtcModel(mcfg)
    start_state = torch.load(config.init, map_location="cpu") if config.init else None
    if start_state is not None:
        model.load_state_dict(start_state)  # CMVN comes with it
        _LOGGER.info("continuing from %s", config.init)
    else:
        sample = data.frames[:: max(1, len(data.frames) // 200000)].astype(np.float32)
        model.set_cmvn(torch.from_numpy(sample.mean(0)), torch.from_numpy(sample.std(0)))
    model.to(device)
    params = sum(p.numel() for p in model.parameters())
    _LOGGER.info("%d utterances, %.1f h, %.2fM parameters", len(data), data.frame_lens.sum() / 360000, params / 1e6)
    optim = torch.optim.Adam(model.parameters(), lr=config.peak_lr, betas=(0.9, 0.98), eps=1e-9)
    ctc = torch.nn.CTCLoss(blank=0, zero_infinity=True)
    start, step, epoch, losses = time.monotonic(), 0, 0, []
    history = []
    done = False
    while not done:
        batches = data.batches(config.max_frames, rng)
        if epoch > 0:
            rng.shuffle(batches)
        model.train()
        for batch in batches:
            elapsed = time.monotonic() - start
            if elapsed >= config.budget_s:
                done = True
                break
            progress = elapsed / config.budget_s
            lr = config.peak_lr * min((step + 1) / config.warmup_steps, 0.5 * (1 + math.cos(math.pi * progress)))
            for group in optim.param_groups:
                group["lr"] = lr
            x, x_lens, y, y_lens = data.collate(batch)
            if step >= config.specaug_after:
                x = spec_augment(x, x_lens, rng)  # on the host: cheap there, and no per-row GPU syncs
            x, x_lens, y, y_lens = (t.to(device, non_blocking=True) for t in (x, x_lens, y, y_lens))
            log_probs, out_lens = model(x, x_lens)
            loss = ctc(log_probs.transpose(0, 1), y, out_lens, y_lens)
            optim.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optim.step()
            losses.append(float(loss.detach()))
            step += 1
            if step % 100 == 0:
                mean = float(np.mean(losses[-100:]))
                history.append({"step": step, "epoch": epoch, "elapsed_s": round(elapsed), "loss": round(mean, 4),
                                "lr": lr})
                _LOGGER.info("step %d epoch %d %.0fs loss %.3f lr %.2e", step, epoch, elapsed, mean, lr)
            if step % 1000 == 0:
                _save(model, out_dir / "model.pt")
        epoch += 1
    if start_state is not None and config.blend != 1.0:
        model.load_state_dict(blended(start_state, model.state_dict(), config.blend))
    _save(model, out_dir / "model.pt")
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    record = {"model": mcfg.to_dict(), "train": asdict(config), "hardware": hardware, "parameters": params, "steps": step,
              "epochs_started": epoch, "train_seconds": round(time.monotonic() - start),
              "utterances": len(data), "hours": round(float(data.frame_lens.sum()) / 360000, 2),
              "final_loss": round(float(np.mean(losses[-100:])), 4) if losses else None, "history": history}
    (out_dir / "train.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


def widen_head(state: dict, vocab: list[str], sounds: dict[str, str], handicap: float = 2.0) -> dict:
    """A checkpoint whose output layer has the blank and the first characters of ``vocab`` -> one with all
    of ``vocab``. A new character starts as a copy of the commonest trained character of the same toneless
    sound (``sounds``: character -> syllable), ``handicap`` nats less likely, so the widened model first
    writes what it wrote before and training only has to tell the two apart; one with no such character
    starts with zero weights at the lowest trained bias."""
    weight, bias = state["head.weight"], state["head.bias"]
    trained = vocab[: weight.shape[0] - 1]
    source_of: dict[str, int] = {}
    for index, char in enumerate(trained, 1):  # vocab is ordered by frequency: the first of a sound wins
        if sounds.get(char):
            source_of.setdefault(sounds[char], index)
    rows, biases = [weight], [bias]
    for char in vocab[len(trained):]:
        source = source_of.get(sounds.get(char, ""))
        if source is None:
            rows.append(torch.zeros(1, weight.shape[1], dtype=weight.dtype))
            biases.append(bias.min().reshape(1))
        else:
            rows.append(weight[source:source + 1].clone())
            biases.append(bias[source:source + 1] - handicap)
    return {**state, "head.weight": torch.cat(rows), "head.bias": torch.cat(biases)}


def blended(start: dict, trained: dict, weight: float) -> dict:
    """``weight`` x ``trained`` + (1 - ``weight``) x ``start``, tensor by tensor; integer buffers are the trained ones."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"blend weight {weight} is outside [0, 1]")
    if start.keys() != trained.keys():
        raise ValueError("the start and the trained weights differ in their tensors")
    return {name: torch.lerp(start[name].to(value.device, value.dtype), value, weight)
            if value.is_floating_point() else value for name, value in trained.items()}


def _save(model: CtcModel, path: Path) -> None:
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)


__all__ = ["TrainConfig", "blended", "subsampled_lengths", "train", "widen_head"]
