"""Noise schedule of the DDPM forward process and the conversions built on it.

Notation of DDPM (Ho et al. 2020): ``β_t``, ``α_t = 1 − β_t``,
``ᾱ_t = Π_{s≤t} α_s``, steps ``t = 0 … T−1`` (0-based). Step ``t = −1`` means
"clean data" (``ᾱ_{−1} = 1``), which the DDIM sampler uses for its last step.
Arrays are stored in float64 and cast to the data's dtype when applied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import Tensor

__all__ = ["NoiseSchedule"]


@dataclass
class NoiseSchedule:
    """DDPM noise schedule (a dataclass: only the four settings are its config).

    Args:
        num_steps: ``T``, number of diffusion steps.
        kind: ``'linear'`` (DDPM sec. 4; ``beta_start``/``beta_end`` are given
            for ``T = 1000`` and scaled by ``1000 / T`` as in improved-diffusion,
            so ``ᾱ_T`` stays small for any ``T``) or ``'cosine'`` (Nichol &
            Dhariwal 2021, eq. 17, offset ``s = 0.008``, ``β`` clipped at 0.999).
        beta_start: ``β_1`` of the linear schedule (for ``T = 1000``).
        beta_end: ``β_T`` of the linear schedule (for ``T = 1000``).

    Attributes:
        betas, alphas, alphas_cumprod, alphas_cumprod_prev, posterior_variances:
            float64 tensors of shape ``(T,)``.
    """

    num_steps: int = 1000
    kind: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 2e-2
    betas: Tensor = field(init=False, repr=False, compare=False)
    alphas: Tensor = field(init=False, repr=False, compare=False)
    alphas_cumprod: Tensor = field(init=False, repr=False, compare=False)
    alphas_cumprod_prev: Tensor = field(init=False, repr=False, compare=False)
    posterior_variances: Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        t_max = int(self.num_steps)
        if t_max < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if self.kind == "linear":
            scale = 1000.0 / t_max
            lo, hi = scale * self.beta_start, min(scale * self.beta_end, 0.999)
            if not 0.0 < lo <= hi < 1.0:
                raise ValueError("need 0 < beta_start <= beta_end < 1")
            betas = np.linspace(lo, hi, t_max, dtype=np.float64)  # DDPM sec. 4
        elif self.kind == "cosine":
            s = 0.008  # Nichol & Dhariwal eq. 17: ᾱ(t) = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s)·π/2)
            steps = np.arange(t_max + 1, dtype=np.float64) / t_max
            f = np.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = np.clip(1.0 - f[1:] / f[:-1], 0.0, 0.999)
        else:
            raise ValueError(f"kind must be 'linear' or 'cosine', got {self.kind!r}")
        alphas = 1.0 - betas
        ac = np.cumprod(alphas)
        ac_prev = np.concatenate([[1.0], ac[:-1]])
        self.betas = torch.from_numpy(betas)
        self.alphas = torch.from_numpy(alphas)
        self.alphas_cumprod = torch.from_numpy(ac)
        self.alphas_cumprod_prev = torch.from_numpy(ac_prev)
        # DDPM eq. 7: β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t
        self.posterior_variances = torch.from_numpy((1.0 - ac_prev) / (1.0 - ac) * betas)

    # config -----------------------------------------------------------------
    def to_dict(self) -> dict:
        """The settings as a JSON-serialisable dict."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    @classmethod
    def from_dict(cls, d: dict) -> "NoiseSchedule":
        """Inverse of :meth:`to_dict` (unknown keys raise ``ValueError``)."""
        names = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown NoiseSchedule keys: {', '.join(unknown)}")
        return cls(**d)

    # indexing ---------------------------------------------------------------
    def alpha_bar(self, t: Tensor | int) -> Tensor:
        """``ᾱ_t`` as float64, with ``ᾱ_{−1} = 1``.

        Args:
            t: Steps, int or integer tensor of any shape, values in ``[−1, T−1]``.

        Returns:
            float64 tensor with ``t``'s shape (on the CPU).
        """
        t = torch.as_tensor(t, dtype=torch.long).cpu()
        if (t < -1).any() or (t >= self.num_steps).any():
            raise ValueError(f"steps must lie in [-1, {self.num_steps - 1}]")
        return torch.where(t < 0, torch.ones((), dtype=torch.float64), self.alphas_cumprod[t.clamp_min(0)])

    def _coef(self, values: Tensor, like: Tensor) -> Tensor:
        """Cast per-sample coefficients ``(N,)`` (or a scalar) to broadcast against ``like (N, ...)``."""
        values = values.to(device=like.device, dtype=like.dtype)
        if values.ndim == 0:
            return values
        return values.reshape(values.shape[0], *([1] * (like.ndim - 1)))

    def _sqrt_ab(self, t: Tensor | int, like: Tensor) -> tuple[Tensor, Tensor]:
        ab = self.alpha_bar(t)
        return self._coef(ab.sqrt(), like), self._coef((1.0 - ab).sqrt(), like)

    # forward process --------------------------------------------------------
    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor | int) -> Tensor:
        """Sample ``q(x_t | x_0)``: ``x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε`` (DDPM eq. 4).

        Args:
            x0: Clean data ``(N, ...)``.
            noise: ``ε``, same shape as ``x0``.
            t: Steps ``(N,)`` or a scalar.

        Returns:
            ``x_t``, shape of ``x0``.
        """
        a, s = self._sqrt_ab(t, x0)
        return a * x0 + s * noise

    def posterior_variance(self, t: Tensor | int) -> Tensor:
        """``β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t`` (DDPM eq. 7), float64, shape of ``t``."""
        t = torch.as_tensor(t, dtype=torch.long).cpu()
        return self.posterior_variances[t]

    # parameterisations ------------------------------------------------------
    def predict_x0(self, x_t: Tensor, eps: Tensor, t: Tensor | int) -> Tensor:
        """``x̂_0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t`` (DDPM eq. 4 inverted; DDIM eq. 9)."""
        a, s = self._sqrt_ab(t, x_t)
        return (x_t - s * eps) / a

    def predict_eps(self, x_t: Tensor, x0: Tensor, t: Tensor | int) -> Tensor:
        """``ε = (x_t − √ᾱ_t x_0) / √(1−ᾱ_t)`` (DDPM eq. 4 inverted); needs ``t >= 0``."""
        a, s = self._sqrt_ab(t, x_t)
        return (x_t - a * x0) / s

    def v_target(self, x0: Tensor, noise: Tensor, t: Tensor | int) -> Tensor:
        """``v = √ᾱ_t ε − √(1−ᾱ_t) x_0`` (Salimans & Ho 2022, sec. 4 / appendix D)."""
        a, s = self._sqrt_ab(t, x0)
        return a * noise - s * x0

    def x0_from_v(self, x_t: Tensor, v: Tensor, t: Tensor | int) -> Tensor:
        """``x_0 = √ᾱ_t x_t − √(1−ᾱ_t) v`` (Salimans & Ho 2022, appendix D)."""
        a, s = self._sqrt_ab(t, x_t)
        return a * x_t - s * v

    def eps_from_v(self, x_t: Tensor, v: Tensor, t: Tensor | int) -> Tensor:
        """``ε = √(1−ᾱ_t) x_t + √ᾱ_t v`` (Salimans & Ho 2022, appendix D)."""
        a, s = self._sqrt_ab(t, x_t)
        return s * x_t + a * v

