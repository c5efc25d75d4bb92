"""Training losses: spectral angle (SAM), SAM + MSE, abundance + reconstruction.

Shapes follow docs/INTERFACES.md: spectra ``(N, B)``, endmembers ``E (P, B)``,
abundances ``(N, P)`` or ``(N, P, H, W)`` with the cube ``Y`` as ``(N, B)`` or
``(N, B, H, W)``.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["sam", "sam_loss", "spectral_loss", "reconstruct", "abundance_loss"]


def sam(pred: Tensor, target: Tensor, dim: int = -1, eps: float = 1e-8) -> Tensor:
    """Spectral angle ``arccos(⟨p, t⟩ / (‖p‖‖t‖))`` in radians.

    The cosine is clamped to ``[−1 + 1e-6, 1 − 1e-6]`` so the gradient stays
    finite for identical spectra; ``eps`` guards zero spectra.

    Args:
        pred: Spectra ``(N, B)`` (any shape with the band axis ``dim``).
        target: Spectra, broadcastable to ``pred``.
        dim: Band axis.
        eps: Added to the norm product.

    Returns:
        Angles, ``pred``'s shape without ``dim`` (e.g. ``(N,)``), in ``[0, π]``.
    """
    dot = (pred * target).sum(dim=dim)
    norms = pred.norm(dim=dim) * target.norm(dim=dim)
    cos = dot / (norms + eps)
    lim = 1.0 - 1e-6
    return torch.acos(cos.clamp(-lim, lim))


def sam_loss(pred: Tensor, target: Tensor, dim: int = -1) -> Tensor:
    """Mean spectral angle (radians), a scalar."""
    return sam(pred, target, dim=dim).mean()


def spectral_loss(pred: Tensor, target: Tensor, w_sam: float = 1.0, w_mse: float = 1.0, dim: int = -1) -> Tensor:
    """``w_sam · mean SAM + w_mse · MSE`` between spectra ``(N, B)``, a scalar."""
    loss = pred.new_zeros(())
    if w_sam:
        loss = loss + w_sam * sam_loss(pred, target, dim=dim)
    if w_mse:
        loss = loss + w_mse * F.mse_loss(pred, target)
    return loss


def reconstruct(a: Tensor, e: Tensor) -> Tensor:
    """Linear mixing ``Y = AᵀE`` per pixel.

    Args:
        a: Abundances ``(N, P)`` or ``(N, P, H, W)``.
        e: Endmembers ``(P, B)``.

    Returns:
        ``(N, B)`` or ``(N, B, H, W)``.
    """
    if a.ndim == 2:
        return a @ e
    return torch.einsum("np...,pb->nb...", a, e)


def abundance_loss(
    a_pred: Tensor,
    a_ref: Optional[Tensor],
    y: Optional[Tensor] = None,
    e: Optional[Tensor] = None,
    w_rec: float = 1.0,
    w_abund: float = 1.0,
    w_sam: float = 0.0,
) -> Tensor:
    """Abundance MSE plus reconstruction consistency ``‖Y − AᵀE‖²``.

    Args:
        a_pred: Predicted abundances ``(N, P)`` or ``(N, P, H, W)``.
        a_ref: Reference abundances, same shape, or ``None`` (self-supervised:
            reconstruction term only).
        y: Observed spectra ``(N, B)`` or cube ``(N, B, H, W)``.
        e: Endmembers ``(P, B)``; the reconstruction term is used only when
            both ``y`` and ``e`` are given.
        w_rec: Weight of the reconstruction MSE.
        w_abund: Weight of the abundance MSE.
        w_sam: Weight of the mean spectral angle between ``y`` and its reconstruction.

    Returns:
        Scalar loss.
    """
    loss = a_pred.new_zeros(())
    if a_ref is not None and w_abund:
        loss = loss + w_abund * F.mse_loss(a_pred, a_ref)
    if y is not None and e is not None:
        y_hat = reconstruct(a_pred, e.to(a_pred.dtype))
        if w_rec:
            loss = loss + w_rec * F.mse_loss(y_hat, y)
        if w_sam:
            loss = loss + w_sam * sam_loss(y_hat, y, dim=1)
    return loss
