"""A small pre-LayerNorm conformer with a CTC head over characters.

conv2d x4 subsampling -> sinusoidal positions -> N conformer blocks ->
linear -> log-softmax. Global CMVN lives inside the model, so the exported
ONNX takes raw sherpa-onnx fbank: inputs ``x`` [N, T, 80] and ``x_lens`` [N],
outputs ``log_probs`` [N, T', V] and ``log_probs_len`` [N] (the layout of
sherpa-onnx's ``OfflineRecognizer.from_zipformer_ctc``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class ModelConfig:
    vocab_size: int
    """Output symbols including the blank (id 0)."""
    num_bins: int = 80
    d_model: int = 144
    heads: int = 4
    layers: int = 6
    ff_mult: int = 4
    conv_kernel: int = 15
    subsampling_channels: int = 64
    """Channels of the two stride-2 convolutions (their backward pass dominates a CPU step)."""
    dropout: float = 0.0
    """0: few steps fit the budget; SpecAugment and line augmentation regularise instead."""

    def to_dict(self) -> dict:
        return asdict(self)


def subsampled_lengths(lengths: torch.Tensor) -> torch.Tensor:
    return torch.div(torch.div(lengths - 1, 2, rounding_mode="floor") - 1, 2, rounding_mode="floor")


class Subsampling(nn.Module):
    def __init__(self, num_bins: int, channels: int, d_model: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, channels, 3, 2), nn.ReLU(), nn.Conv2d(channels, channels, 3, 2),
                                  nn.ReLU())
        freq = ((num_bins - 1) // 2 - 1) // 2
        self.out = nn.Linear(channels * freq, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x.unsqueeze(1))
        n, c, t, f = x.shape
        return self.out(x.transpose(1, 2).reshape(n, t, c * f))


class FeedForward(nn.Module):
    def __init__(self, d: int, mult: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d * mult), nn.SiLU(), nn.Dropout(dropout),
                                 nn.Linear(d * mult, d), nn.Dropout(dropout))

    def forward(self, x):
        return self.net(x)


class SelfAttention(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.heads = heads
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d // self.heads)
        scores = scores.masked_fill(pad[:, None, None, :], -1e4)
        weights = self.drop(torch.softmax(scores, dim=-1))
        y = torch.matmul(weights, v).transpose(1, 2).reshape(n, t, d)
        return self.drop(self.out(y))


class ConvModule(nn.Module):
    def __init__(self, d: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.pointwise_in = nn.Linear(d, 2 * d)
        self.depthwise = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d)
        self.mid_norm = nn.LayerNorm(d)
        self.pointwise_out = nn.Linear(d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        y = nn.functional.glu(self.pointwise_in(self.norm(x)), dim=-1)
        y = y.masked_fill(pad[:, :, None], 0.0)
        y = self.depthwise(y.transpose(1, 2)).transpose(1, 2)
        y = nn.functional.silu(self.mid_norm(y))
        return self.drop(self.pointwise_out(y))


class ConformerBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ff1 = FeedForward(cfg.d_model, cfg.ff_mult, cfg.dropout)
        self.attn = SelfAttention(cfg.d_model, cfg.heads, cfg.dropout)
        self.conv = ConvModule(cfg.d_model, cfg.conv_kernel, cfg.dropout)
        self.ff2 = FeedForward(cfg.d_model, cfg.ff_mult, cfg.dropout)

    def forward(self, x, pad):
        # Pure pre-LN: every sub-module normalizes its own input and the residual stream is never
        # normalized inside the stack. The conformer paper's LayerNorm at the end of each block makes
        # the stack behave like post-LN, which sat at the unigram loss here (800 steps, loss 5.94).
        x = x + 0.5 * self.ff1(x)
        x = x + self.attn(x, pad)
        x = x + self.conv(x, pad)
        return x + 0.5 * self.ff2(x)


class CtcModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("mean", torch.zeros(cfg.num_bins))
        self.register_buffer("inv_std", torch.ones(cfg.num_bins))
        self.subsample = Subsampling(cfg.num_bins, cfg.subsampling_channels, cfg.d_model)
        self.blocks = nn.ModuleList(ConformerBlock(cfg) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)
        position = torch.arange(5000).unsqueeze(1)
        div = torch.exp(torch.arange(0, cfg.d_model, 2) * (-math.log(10000.0) / cfg.d_model))
        pe = torch.zeros(5000, cfg.d_model)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div)
        self.register_buffer("positions", pe, persistent=False)

    def set_cmvn(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.inv_std.copy_(1.0 / std.clamp_min(1e-3))

    def forward(self, x: torch.Tensor, x_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - self.mean) * self.inv_std
        x = self.subsample(x)
        lens = subsampled_lengths(x_lens)
        t = x.shape[1]
        x = x + self.positions[:t].unsqueeze(0)
        pad = torch.arange(t, device=x.device)[None, :] >= lens[:, None]
        for block in self.blocks:
            x = block(x, pad)
        return torch.log_softmax(self.head(self.final_norm(x)), dim=-1), lens
