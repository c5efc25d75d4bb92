"""Timestep-conditioned residual UNet (the DDPM/DDIM noise predictor).

``ResUNet2D`` works on abundance maps ``(N, P, H, W)``; the same code, with
``dims=1``, gives :class:`~.resunet1d.ResUNet1D` for spectra. The layout follows
DDPM (Ho et al. 2020, appendix B) and openai/improved-diffusion, kept small for
CPU: residual blocks ``GroupNorm → SiLU → conv``, the time embedding added after
the first conv of every block (through a Linear), one skip connection per level
from the down to the up path, conditioning by channel concatenation. Inputs of
any size are padded (reflect, replicate where too short) to a multiple of
``2**(levels-1)`` and cropped back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .embeddings import ConfigMixin, TimeMLP, pad_same

__all__ = ["ResUNet2DConfig", "ResUNet2D", "ResUNetND", "ResBlock"]


@dataclass
class ResUNet2DConfig(ConfigMixin):
    """Hyper-parameters of the residual UNets (JSON round trip via to_dict/from_dict).

    Attributes:
        base: Channels at the first level.
        mults: Channel multiplier per level; ``len(mults)`` levels, each but the
            last followed by a stride-2 downsampling.
        n_res: Residual blocks per level on each path.
        time_dim: Width of the time embedding.
        groups: GroupNorm groups (reduced to a divisor of the channel count).
        dropout: Dropout inside residual blocks.
        padding: Padding of the inner convolutions, ``'zeros'`` or ``'replicate'``.
    """

    base: int = 32
    mults: tuple[int, ...] = (1, 2)
    n_res: int = 1
    time_dim: int = 64
    groups: int = 8
    dropout: float = 0.0
    padding: str = "zeros"

    def __post_init__(self) -> None:
        if not self.mults or any(m < 1 for m in self.mults):
            raise ValueError("mults must be a non-empty tuple of positive ints")
        if self.base < 1 or self.n_res < 1 or self.time_dim < 2 or self.groups < 1:
            raise ValueError("base, n_res, groups must be >= 1 and time_dim >= 2")
        if self.padding not in ("zeros", "replicate"):
            raise ValueError(f"padding must be 'zeros' or 'replicate', got {self.padding!r}")


def _conv(dims: int, c_in: int, c_out: int, k: int = 3, stride: int = 1, padding: str = "zeros") -> nn.Module:
    cls = nn.Conv1d if dims == 1 else nn.Conv2d
    return cls(c_in, c_out, k, stride=stride, padding=k // 2, padding_mode=padding)


def _norm(groups: int, channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels)


class ResBlock(nn.Module):
    """``x + conv(SiLU(GN(conv(SiLU(GN(x))) + Linear(emb))))`` with a 1×1 skip when widths differ.

    Args:
        dims: 1 (spectra) or 2 (maps).
        c_in: Input channels.
        c_out: Output channels.
        time_dim: Width of the time embedding.
        groups: GroupNorm groups.
        dropout: Dropout probability before the second conv.
        padding: Conv padding mode.
    """

    def __init__(self, dims: int, c_in: int, c_out: int, time_dim: int, groups: int,
                 dropout: float = 0.0, padding: str = "zeros"):
        super().__init__()
        self.norm1 = _norm(groups, c_in)
        self.conv1 = _conv(dims, c_in, c_out, padding=padding)
        self.temb = nn.Linear(time_dim, c_out)
        self.norm2 = _norm(groups, c_out)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = _conv(dims, c_out, c_out, padding=padding)
        self.skip = _conv(dims, c_in, c_out, k=1) if c_in != c_out else nn.Identity()
        self.dims = dims

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        """Args: x ``(N, C_in, *S)``, emb ``(N, time_dim)``. Returns ``(N, C_out, *S)``."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(emb)).reshape(*emb.shape[:1], -1, *([1] * self.dims))
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class ResUNetND(nn.Module):
    """Residual UNet over 1 or 2 trailing dims predicting noise (or v).

    Args:
        dims: 1 or 2.
        channels: Channels of ``x_t`` (and of the output).
        cond_channels: Channels of the conditioning input (0: none).
        cfg: Hyper-parameters.
    """

    def __init__(self, dims: int, channels: int, cond_channels: int, cfg: ResUNet2DConfig):
        super().__init__()
        if dims not in (1, 2) or channels < 1 or cond_channels < 0:
            raise ValueError("dims must be 1 or 2, channels >= 1, cond_channels >= 0")
        self.dims, self.channels, self.cond_channels, self.cfg = dims, channels, cond_channels, cfg
        c, td, g, pm = cfg.base, cfg.time_dim, cfg.groups, cfg.padding
        self.time_mlp = TimeMLP(td, freq_dim=td)
        self.in_conv = _conv(dims, channels + cond_channels, c, padding=pm)
        widths = [cfg.base * m for m in cfg.mults]
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for i, w in enumerate(widths):
            blocks = []
            for _ in range(cfg.n_res):
                blocks.append(ResBlock(dims, c, w, td, g, cfg.dropout, pm))
                c = w
            self.down.append(nn.ModuleList(blocks))
            if i < len(widths) - 1:
                self.downsample.append(_conv(dims, c, c, stride=2, padding=pm))
        self.mid = ResBlock(dims, c, c, td, g, cfg.dropout, pm)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(widths))):
            if i < len(widths) - 1:
                self.upsample.append(_conv(dims, c, c, padding=pm))
            blocks = []
            for j in range(cfg.n_res):
                blocks.append(ResBlock(dims, c + (widths[i] if j == 0 else 0), widths[i], td, g, cfg.dropout, pm))
                c = widths[i]
            self.up.append(nn.ModuleList(blocks))
        self.out_norm = _norm(g, c)
        self.out_conv = _conv(dims, c, channels, padding=pm)

    @property
    def levels(self) -> int:
        """Number of resolution levels."""
        return len(self.cfg.mults)

    @property
    def receptive_field(self) -> int:
        """Radius (pixels / bands) reached by the convolutions alone.

        GroupNorm statistics are taken over the whole input, so the true
        dependence is global; tiles should overlap by at least this radius.
        """
        n, last = self.cfg.n_res, self.levels - 1
        r = 1  # in_conv
        for i in range(self.levels):  # 2 convs per block, a conv at level i spans 2**i input pixels
            r += 2 * n * 2**i + (2**i if i < last else 0)
        r += 2 * 2**last  # mid block
        for i in reversed(range(self.levels)):
            r += 2 * n * 2**i + (2**i if i < last else 0)
        return r + 1  # out_conv

    def forward(self, x_t: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """Predict the noise (or v) of ``x_t`` at step ``t``.

        Args:
            x_t: Noisy input ``(N, C, *S)`` (``S = (H, W)`` or ``(L,)``), any sizes ``>= 1``.
            t: Diffusion steps ``(N,)`` (a scalar is broadcast).
            cond: Conditioning ``(N, Cc, *S)``; required when ``cond_channels > 0``.

        Returns:
            Prediction ``(N, C, *S)``.
        """
        if x_t.ndim != self.dims + 2 or x_t.shape[1] != self.channels:
            raise ValueError(f"x_t must be (N, {self.channels}, ...) with {self.dims} trailing dims, "
                             f"got {tuple(x_t.shape)}")
        n, size = x_t.shape[0], x_t.shape[2:]
        t = torch.as_tensor(t, device=x_t.device)
        if t.ndim == 0 or t.numel() == 1:
            t = t.reshape(1).expand(n)
        if self.cond_channels:
            if cond is None or tuple(cond.shape) != (n, self.cond_channels, *size):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"cond must be (N, {self.cond_channels}, {tuple(size)}), got {got}")
            x_t = torch.cat([x_t, cond.to(x_t.dtype)], dim=1)
        m = 2 ** (self.levels - 1)
        pads: list[int] = []
        for s in reversed(size):  # F.pad order: last dim first, pad at the far end only
            pads += [0, (-s) % m]
        h = pad_same(x_t, tuple(pads))
        emb = self.time_mlp(t)
        h = self.in_conv(h)
        skips = []
        for i, blocks in enumerate(self.down):
            for blk in blocks:
                h = blk(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid(h, emb)
        ups = iter(self.upsample)
        for k, blocks in enumerate(self.up):
            i = self.levels - 1 - k
            if i < self.levels - 1:
                h = next(ups)(F.interpolate(h, size=skips[i].shape[2:], mode="nearest"))
            h = torch.cat([h, skips[i]], dim=1)
            for blk in blocks:
                h = blk(h, emb)
        h = self.out_conv(F.silu(self.out_norm(h)))
        if self.dims == 1:
            return h[..., : size[0]]
        return h[..., : size[0], : size[1]]


class ResUNet2D(ResUNetND):
    """Noise predictor for abundance maps ``(N, P, H, W)``.

    Args:
        channels: Endmember count ``P`` (channels of ``x_t``).
        cond_channels: Channels of the conditioning map (e.g. the coarse
            HybridSTU abundances: ``P``); 0 for an unconditional model.
        cfg: Hyper-parameters (defaults: :class:`ResUNet2DConfig`).

    Example:
        >>> net = ResUNet2D(5, 5)
        >>> eps = net(torch.rand(2, 5, 13, 7), torch.tensor([10, 500]), torch.rand(2, 5, 13, 7))
    """

    def __init__(self, channels: int, cond_channels: int | None = None, cfg: ResUNet2DConfig | None = None):
        cond_channels = channels if cond_channels is None else cond_channels
        super().__init__(2, channels, cond_channels, cfg if cfg is not None else ResUNet2DConfig())

    def hparams(self) -> dict:
        """Constructor arguments as plain data (for checkpoints)."""
        return {"channels": self.channels, "cond_channels": self.cond_channels, "cfg": self.cfg.to_dict()}

    @classmethod
    def from_hparams(cls, d: dict) -> "ResUNet2D":
        """Rebuild an (untrained) network from :meth:`hparams` output."""
        return cls(d["channels"], d["cond_channels"], ResUNet2DConfig.from_dict(d["cfg"]))
