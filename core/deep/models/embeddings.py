"""Timestep embeddings and small helpers shared by the networks.

The sinusoidal embedding is the Transformer positional encoding (Vaswani et al.
2017, sec. 3.5) applied to the diffusion step, as in DDPM (Ho et al. 2020,
appendix B) and openai/improved-diffusion's ``timestep_embedding``.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["timestep_embedding", "TimeMLP", "ConfigMixin", "pad_same"]


class ConfigMixin:
    """JSON round trip for the model config dataclasses.

    Tuples become lists in JSON; :meth:`from_dict` turns them back into tuples
    where the default is a tuple. Unknown keys raise ``ValueError``.
    """

    def to_dict(self) -> dict:
        """Plain, JSON-serialisable dict of the fields."""
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, d: dict):
        """Build a config from :meth:`to_dict` output (missing keys keep defaults)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {', '.join(unknown)}")
        defaults = cls()
        kw = {}
        for k, v in d.items():
            is_tuple = isinstance(getattr(defaults, k), tuple)
            kw[k] = tuple(v) if is_tuple and isinstance(v, list) else v
        return cls(**kw)


def pad_same(x: Tensor, pads: tuple[int, ...], mode: str = "reflect") -> Tensor:
    """Pad the trailing dims of ``x``; reflect where the dim is long enough.

    Reflect padding needs ``pad < size``; dims too short for it (e.g. a 1-pixel
    tile edge) fall back to replicate padding so any size ``>= 1`` works.

    Args:
        x: Tensor ``(N, C, *spatial)``.
        pads: ``F.pad``-style pads, last dim first: ``(left, right, top, bottom, ...)``.
        mode: ``'reflect'``, ``'replicate'`` or ``'constant'`` (zeros).

    Returns:
        The padded tensor.
    """
    if not any(pads):
        return x
    if mode == "reflect":
        sizes = x.shape[::-1][: len(pads) // 2]
        if any(max(pads[2 * i], pads[2 * i + 1]) >= s for i, s in enumerate(sizes)):
            mode = "replicate"
    if mode == "constant":
        return F.pad(x, pads)
    return F.pad(x, pads, mode=mode)


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of diffusion steps.

    ``emb[n, i] = cos(t_n * f_i)`` for the first half and ``sin(t_n * f_i)`` for
    the second, with ``f_i = max_period ** (-i / half)`` (Transformer eq. of
    sec. 3.5). An odd ``dim`` gets one zero column.

    Args:
        t: Steps, shape ``(N,)`` (float or integer); a scalar is treated as ``(1,)``.
        dim: Embedding width, ``>= 1``.
        max_period: Longest wavelength of the sinusoids.

    Returns:
        Embedding of shape ``(N, dim)``, float32.
    """
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    t = torch.as_tensor(t)
    if t.ndim == 0:
        t = t.reshape(1)
    if t.ndim != 1:
        raise ValueError(f"t must have shape (N,), got {tuple(t.shape)}")
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / max(half, 1)
    )
    args = t.to(torch.float32)[:, None] * freqs[None, :]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, emb.new_zeros(emb.shape[0], 1)], dim=-1)
    return emb


class TimeMLP(nn.Module):
    """Sinusoidal embedding followed by ``Linear -> SiLU -> Linear``.

    Args:
        out_dim: Width of the returned embedding.
        freq_dim: Width of the sinusoidal embedding fed to the MLP.
    """

    def __init__(self, out_dim: int = 64, freq_dim: int = 32):
        super().__init__()
        self.freq_dim = int(freq_dim)
        self.net = nn.Sequential(
            nn.Linear(self.freq_dim, out_dim),
            nn.SiLU(),
            nn.Linear(out_dim, out_dim),
        )

    def forward(self, t: Tensor) -> Tensor:
        """Embed steps.

        Args:
            t: Steps, shape ``(N,)``.

        Returns:
            Embedding, shape ``(N, out_dim)``.
        """
        emb = timestep_embedding(t, self.freq_dim).to(self.net[0].weight.dtype)
        return self.net(emb)
