"""DDIM sampler (Song, Meng & Ermon 2021) with an optional x̂_0 projection.

The sampler never sees the data: it is given a network ``(x_t, t, cond) → ε``
(or ``v``) and a :class:`~.schedule.NoiseSchedule`. ``x0_transform`` (e.g. a
simplex projection or a data-consistency step) is applied to the predicted
``x̂_0`` and ``ε`` re-derived from it, as in projected / guided diffusion
samplers (e.g. DPS, Chung et al. 2023; ΠGDM), so every step stays consistent
with the constraint.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor, nn

from ...progress import ensure
from .schedule import NoiseSchedule

__all__ = ["DDIMSampler", "randn_like"]

X0Transform = Callable[[Tensor], Tensor]


def randn_like(x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator``.

    The draw happens on the generator's device (so a CPU generator also serves
    CUDA data, reproducibly) and is moved to ``x``'s device. ``generator=None``
    uses torch's global RNG (seed it with ``torch.manual_seed``).

    Args:
        x: Template tensor.
        generator: Source of randomness.

    Returns:
        Tensor of ``x``'s shape, dtype and device.
    """
    device = generator.device if generator is not None else x.device
    z = torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype)
    return z.to(x.device)


class DDIMSampler:
    """Deterministic (η = 0) to stochastic (η = 1, DDPM) sampler over a sub-sequence of steps.

    Args:
        schedule: The noise schedule the network was trained with.
    """

    def __init__(self, schedule: NoiseSchedule):
        self.schedule = schedule
        self.timesteps: list[int] = []

    def set_timesteps(self, n_steps: int, start_step: Optional[int] = None) -> list[int]:
        """Descending diffusion steps of an ``n_steps`` trajectory.

        Evenly spaced "trailing" steps (Lin et al. 2024, table 2): the first is
        exactly ``start_step`` (default ``T − 1``), the spacing is
        ``(start_step + 1) / n_steps``, and the step after the last is ``−1``
        (clean data). ``n_steps`` is capped at ``start_step + 1``.

        Args:
            n_steps: Number of network evaluations, ``>= 1``.
            start_step: Step at which the trajectory starts, in ``[0, T−1]``;
                for refining an estimate noised to that level.

        Returns:
            The steps, descending (also stored in ``self.timesteps``).
        """
        t_max = self.schedule.num_steps
        start = t_max - 1 if start_step is None else int(start_step)
        if not 0 <= start < t_max:
            raise ValueError(f"start_step must lie in [0, {t_max - 1}], got {start_step}")
        if n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {n_steps}")
        n = min(int(n_steps), start + 1)
        span = start + 1
        steps = [int(round(span * (n - k) / n)) - 1 for k in range(n)]
        self.timesteps = sorted(set(steps), reverse=True)
        return list(self.timesteps)

    def sigma(self, t: int, t_prev: int, eta: float) -> float:
        """``σ_t(η) = η √((1−ᾱ_prev)/(1−ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev)`` (DDIM eq. 16).

        With ``t_prev = t − 1`` and ``η = 1``, ``σ²`` equals DDPM's ``β̃_t`` (eq. 7).
        """
        ab = float(self.schedule.alpha_bar(int(t)))
        ab_prev = float(self.schedule.alpha_bar(int(t_prev)))
        var = (1.0 - ab_prev) / (1.0 - ab) * (1.0 - ab / ab_prev)
        return float(eta) * max(var, 0.0) ** 0.5

    def step(
        self,
        eps: Tensor,
        t: int,
        t_prev: int,
        x_t: Tensor,
        eta: float = 0.0,
        generator: Optional[torch.Generator] = None,
        x0_transform: Optional[X0Transform] = None,
    ) -> tuple[Tensor, Tensor]:
        """One DDIM update ``x_t → x_{t_prev}`` (DDIM eq. 12).

        ``x_prev = √ᾱ_prev x̂_0 + √(1 − ᾱ_prev − σ²) ε̂ + σ z`` with
        ``x̂_0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t`` and ``σ`` from eq. 16. When
        ``x0_transform`` is given, ``x̂_0 ← x0_transform(x̂_0)`` and
        ``ε̂ = (x_t − √ᾱ_t x̂_0) / √(1−ᾱ_t)`` is re-derived from it.

        Args:
            eps: Predicted noise ``(N, ...)``.
            t: Current step (int, ``0 … T−1``).
            t_prev: Next step (int, ``< t``; ``−1`` = clean data, ``ᾱ = 1``).
            x_t: Current sample ``(N, ...)``.
            eta: 0 = deterministic DDIM, 1 = DDPM-like ancestral sampling.
            generator: Source of ``z`` (only drawn when ``σ > 0``); ``None`` =
                torch's global RNG.
            x0_transform: Map applied to ``x̂_0`` (shape-preserving).

        Returns:
            ``(x_prev, x0_pred)``, both shaped like ``x_t``.
        """
        t, t_prev = int(t), int(t_prev)
        if t_prev >= t:
            raise ValueError(f"t_prev ({t_prev}) must be < t ({t})")
        ab = float(self.schedule.alpha_bar(t))
        ab_prev = float(self.schedule.alpha_bar(t_prev))
        # DDIM eq. 12, first term: the "predicted x0"
        x0 = (x_t - (1.0 - ab) ** 0.5 * eps) / ab**0.5
        if x0_transform is not None:
            x0 = x0_transform(x0)
            eps = (x_t - ab**0.5 * x0) / (1.0 - ab) ** 0.5
        sigma = self.sigma(t, t_prev, eta)
        # DDIM eq. 12: direction pointing to x_t, then the random term
        dir_coef = max(1.0 - ab_prev - sigma**2, 0.0) ** 0.5
        x_prev = ab_prev**0.5 * x0 + dir_coef * eps
        if sigma > 0.0:
            x_prev = x_prev + sigma * randn_like(x_t, generator)
        return x_prev, x0

    def _eps(self, model: nn.Module, x: Tensor, t: int, cond: Optional[Tensor], prediction: str) -> Tensor:
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        out = model(x, tt, cond)
        if prediction == "v":
            return self.schedule.eps_from_v(x, out, t)
        return out

    @torch.no_grad()
    def refine(
        self,
        model: nn.Module,
        x_init: Tensor,
        cond: Optional[Tensor],
        n_steps: int,
        start_step: Optional[int],
        eta: float = 0.0,
        generator: Optional[torch.Generator] = None,
        x0_transform: Optional[X0Transform] = None,
        progress: Optional[object] = None,
        prediction: str = "eps",
    ) -> Tensor:
        """Refine an estimate: noise it to ``start_step`` (DDPM eq. 4), then run DDIM to ``t = −1``.

        (SDEdit, Meng et al. 2022, with DDIM steps.) Runs under ``torch.no_grad``;
        an ``x0_transform`` that needs gradients may use ``torch.enable_grad``.

        Args:
            model: ``(x_t (N, ...), t (N,), cond) → ε`` (or ``v``).
            x_init: Estimate ``(N, ...)`` to refine (e.g. coarse abundances ``(N, P, H, W)``).
            cond: Conditioning passed to the model unchanged (may be ``None``).
            n_steps: Number of DDIM steps (network evaluations).
            start_step: Noise level to start from, ``[0, T−1]``; ``None`` = ``T − 1``.
            eta: DDIM η.
            generator: Source of the initial noise and of η-noise.
            x0_transform: Map applied to every ``x̂_0`` (see :meth:`step`).
            progress: Progress object: ``check()`` before each step, then
                ``set_progress`` from 0 to 100 over the steps (pass a
                ``Progress.sub`` view to map it onto a stage).
            prediction: ``'eps'`` or ``'v'``: what the model outputs.

        Returns:
            Final ``x̂_0``, shaped like ``x_init``.

        Raises:
            core.errors.Cancelled: When ``progress`` reports a cancellation.
        """
        if prediction not in ("eps", "v"):
            raise ValueError(f"prediction must be 'eps' or 'v', got {prediction!r}")
        steps = self.set_timesteps(n_steps, start_step)
        x = self.schedule.add_noise(x_init, randn_like(x_init, generator), steps[0])
        return self._loop(model, x, cond, steps, eta, generator, x0_transform, progress, prediction)

    @torch.no_grad()
    def sample(
        self,
        model: nn.Module,
        shape: tuple[int, ...],
        cond: Optional[Tensor],
        n_steps: int,
        eta: float = 0.0,
        generator: Optional[torch.Generator] = None,
        x0_transform: Optional[X0Transform] = None,
        progress: Optional[object] = None,
        prediction: str = "eps",
        device: Optional[torch.device] = None,
    ) -> Tensor:
        """Generate from pure noise at ``t = T − 1`` (DDIM sampling, η as in :meth:`step`).

        Args:
            model, cond, n_steps, eta, generator, x0_transform, progress, prediction: As in :meth:`refine`.
            shape: Output shape ``(N, ...)``.
            device: Device of the sample (default CPU or ``cond``'s device).

        Returns:
            Sample of ``shape``.
        """
        if device is None:
            device = cond.device if cond is not None else torch.device("cpu")
        steps = self.set_timesteps(n_steps)
        x = randn_like(torch.empty(shape, device=device), generator)
        return self._loop(model, x, cond, steps, eta, generator, x0_transform, progress, prediction)

    def _loop(self, model, x, cond, steps, eta, generator, x0_transform, progress, prediction) -> Tensor:
        prog = ensure(progress)
        for i, t in enumerate(steps):
            prog.check()
            t_prev = steps[i + 1] if i + 1 < len(steps) else -1
            eps = self._eps(model, x, t, cond, prediction)
            x, _ = self.step(eps, t, t_prev, x, eta, generator, x0_transform)
            prog.set_progress(100.0 * (i + 1) / len(steps))
        return x
