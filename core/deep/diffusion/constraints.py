"""Physical constraints applied to predicted abundances (``x0_transform`` helpers).

``project_simplex`` is the exact Euclidean projection onto the probability
simplex (ANC + ASC), with the sort-based algorithm of Duchi et al. 2008
(fig. 1) / Condat 2016 (algorithm 1), vectorised over every other axis.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

__all__ = ["project_simplex", "nonneg", "simplex_transform", "consistency_transform"]


def project_simplex(x: Tensor, dim: int = 1, radius: float = 1.0) -> Tensor:
    """Euclidean projection onto ``{a : a ≥ 0, Σ_dim a = radius}``.

    ``a = max(x − θ, 0)`` with ``θ = (Σ_{i≤ρ} u_i − radius) / ρ``, ``u`` sorted
    descending and ``ρ = max{j : u_j − (Σ_{i≤j} u_i − radius)/j > 0}``
    (Duchi et al. 2008, fig. 1).

    Args:
        x: Tensor of any shape, e.g. abundances ``(N, P, H, W)``.
        dim: Axis of the simplex (the endmember axis).
        radius: Sum of the projected vector (> 0).

    Returns:
        Projection, shape and dtype of ``x``.
    """
    if radius <= 0:
        raise ValueError("radius must be > 0")
    xm = x.movedim(dim, -1)
    n = xm.shape[-1]
    u, _ = torch.sort(xm, dim=-1, descending=True)
    css = u.cumsum(dim=-1) - radius
    j = torch.arange(1, n + 1, device=x.device, dtype=x.dtype)
    # condition holds for a prefix of j, so ρ = number of True entries (≥ 1: j = 1 always holds)
    rho = (u - css / j > 0).sum(dim=-1, keepdim=True).clamp_min(1)
    theta = css.gather(-1, rho - 1) / rho.to(x.dtype)
    return (xm - theta).clamp_min(0).movedim(-1, dim)


def nonneg(x: Tensor) -> Tensor:
    """Abundance non-negativity (ANC): ``max(x, 0)``."""
    return x.clamp_min(0)


def simplex_transform(dim: int = 1) -> Callable[[Tensor], Tensor]:
    """An ``x0_transform`` for :meth:`DDIMSampler.step` projecting onto the simplex along ``dim``."""

    def _transform(x0: Tensor) -> Tensor:
        return project_simplex(x0, dim=dim)

    return _transform


def consistency_transform(
    y: Tensor,
    e: Tensor,
    n_iter: int = 1,
    step: Optional[float] = None,
    weight: float = 1.0,
) -> Callable[[Tensor], Tensor]:
    """An ``x0_transform`` pulling abundances towards the linear mixing model.

    Projected-gradient steps on ``½‖Y − Eᵀa‖²`` per pixel, each followed by
    the simplex projection: ``a ← Π_Δ(a − μ·w·E(Eᵀa − y))`` with
    ``μ = 1 / λ_max(E Eᵀ)`` by default (Lipschitz step), as in projected /
    data-consistency guided diffusion (e.g. DDNM, Wang et al. 2023).

    Args:
        y: Observed cube ``(N, B, H, W)`` (same batch and size as the abundances).
        e: Endmembers ``(P, B)``.
        n_iter: Projected-gradient iterations per call.
        step: Step size ``μ``; default ``1 / λ_max(E Eᵀ)``.
        weight: Guidance weight ``w`` in ``[0, 1]`` (0: projection only).

    Returns:
        ``f(a (N, P, H, W)) -> (N, P, H, W)`` on the simplex.
    """
    e = e.to(device=y.device, dtype=y.dtype)
    if step is None:
        lmax = float(torch.linalg.eigvalsh((e @ e.T).double()).max())
        step = 1.0 / max(lmax, 1e-12)
    ey = torch.einsum("pb,nbhw->nphw", e, y)  # E y, (N, P, H, W)
    gram = e @ e.T  # E Eᵀ, (P, P)
    mu = float(step) * float(weight)

    def _transform(a: Tensor) -> Tensor:
        a = project_simplex(a, dim=1)
        for _ in range(int(n_iter)):
            grad = torch.einsum("pq,nqhw->nphw", gram, a) - ey  # ∇ ½‖y − Eᵀa‖² = E(Eᵀa − y)
            a = project_simplex(a - mu * grad, dim=1)
        return a

    return _transform
