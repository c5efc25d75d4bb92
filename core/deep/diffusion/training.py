"""DDPM training objective (Ho et al. 2020, algorithm 1 / eq. 14)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .ddim import randn_like
from .schedule import NoiseSchedule

__all__ = ["ddpm_loss", "sample_timesteps"]


def sample_timesteps(n: int, num_steps: int, generator: Optional[torch.Generator] = None,
                     device: Optional[torch.device] = None) -> Tensor:
    """Uniform steps ``t ~ U{0, …, num_steps−1}`` (DDPM algorithm 1).

    Args:
        n: Batch size.
        num_steps: ``T`` (or fewer: the steps below it).
        generator: Source of randomness (``None``: torch's global RNG).
        device: Device of the result (default CPU).

    Returns:
        Long tensor ``(n,)``.
    """
    gdev = generator.device if generator is not None else device
    t = torch.randint(0, num_steps, (n,), generator=generator, device=gdev)
    return t.to(device) if device is not None else t


def ddpm_loss(
    model: nn.Module,
    schedule: NoiseSchedule,
    x0: Tensor,
    cond: Optional[Tensor],
    generator: Optional[torch.Generator] = None,
    prediction: str = "eps",
    t: Optional[Tensor] = None,
    noise: Optional[Tensor] = None,
    t_max: Optional[int] = None,
) -> Tensor:
    """Simplified DDPM loss ``E‖target − net(x_t, t, cond)‖²`` (DDPM eq. 14), the one
    diffusion objective every network of the engine is trained with.

    ``t`` is uniform over the whole schedule (or below ``t_max``),
    ``x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε`` (DDPM eq. 4); the target, i.e. what the
    network's output is read as, is ``ε`` (``prediction='eps'``),
    ``v = √ᾱ_t ε − √(1−ᾱ_t) x_0`` (``'v'``, Salimans & Ho 2022) or the clean
    ``x_0`` (``'x0'``; the same minimiser, weighted by SNR(t) in ε terms:
    ``‖x̂0 − x0‖² = (1−ᾱ)/ᾱ · ‖ε̂ − ε‖²``, the form that does not amplify the
    network's error at small ``t``).

    Args:
        model: ``(x_t (N, ...), t (N,), cond) → (N, ...)`` (e.g. ``ResidualX0.predict_x0`` with ``'x0'``).
        schedule: Noise schedule.
        x0: Clean batch ``(N, ...)`` (e.g. abundance patches ``(N, P, H, W)``).
        cond: Conditioning passed to the model (may be ``None``).
        generator: Source of ``t`` and ``ε`` (``None``: torch's global RNG).
        prediction: ``'eps'``, ``'v'`` or ``'x0'``.
        t: Optional fixed steps ``(N,)`` (otherwise sampled).
        noise: Optional fixed noise shaped like ``x0`` (otherwise sampled).
        t_max: Sample ``t`` below this step only (default: the whole schedule).

    Returns:
        Scalar loss (mean over all elements).
    """
    if prediction not in ("eps", "v", "x0"):
        raise ValueError(f"prediction must be 'eps', 'v' or 'x0', got {prediction!r}")
    if t is None:
        n_t = schedule.num_steps if t_max is None else max(1, min(int(t_max), schedule.num_steps))
        t = sample_timesteps(x0.shape[0], n_t, generator, x0.device)
    if noise is None:
        noise = randn_like(x0, generator)
    x_t = schedule.add_noise(x0, noise, t)
    target = {"eps": noise, "x0": x0}.get(prediction)
    if target is None:
        target = schedule.v_target(x0, noise, t)
    return F.mse_loss(model(x_t, t.to(x0.device), cond), target)
