"""Endmember count and initial endmembers: HySime, VCA, library naming/selection.

Pixels are ``Y (N, B)`` (rows with any non-finite value are ignored),
endmembers ``E (P, B)``. Every random choice takes an explicit ``seed``.

References:
    J. M. Bioucas-Dias, J. M. P. Nascimento, "Hyperspectral subspace
    identification", IEEE TGRS 46(8), 2008 (HySime, noise estimation).
    J. M. P. Nascimento, J. M. Bioucas-Dias, "Vertex component analysis: a
    fast algorithm to unmix hyperspectral data", IEEE TGRS 43(4), 2005 (VCA).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import UnmixError
from .fcls import nnls
from .metrics import sad_matrix

__all__ = [
    "estimate_noise",
    "hysime",
    "vca",
    "name_endmembers",
    "select_from_library",
    "check_p",
]

#: Pixels used to estimate second-order statistics (noise, subspaces).
MAX_STAT_PIXELS = 20000


def _pixels(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``Y (N, B)``; return it and the indices of its finite rows."""
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise UnmixError(f"pixels must be a 2-D array (N, B), got shape {Y.shape}")
    if not np.issubdtype(Y.dtype, np.floating):
        Y = Y.astype(np.float64)
    valid = np.flatnonzero(np.isfinite(Y).all(axis=1))
    return Y, valid


def _sample(valid: np.ndarray, max_pixels: int, seed: int) -> np.ndarray:
    """Sorted random subset of ``valid`` of at most ``max_pixels`` indices."""
    if valid.size <= max_pixels:
        return valid
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(valid, size=max_pixels, replace=False))


def check_p(p: int, n_bands: int, n_valid: int) -> int:
    """Validate an endmember count.

    Args:
        p: Requested number of endmembers.
        n_bands: Band count B.
        n_valid: Number of valid pixels.

    Returns:
        ``p`` as int.

    Raises:
        UnmixError: If ``p < 2``, ``p ≥ B`` or ``p`` exceeds the valid pixels.
    """
    if int(p) != p or p < 2 or p >= n_bands:
        raise UnmixError(f"number of endmembers must be between 2 and B-1 (B = {n_bands}), got {p}")
    if p > n_valid:
        raise UnmixError(f"{p} endmembers requested, more than the {n_valid} valid pixels")
    return int(p)


# --------------------------------------------------------------------------
# HySime
# --------------------------------------------------------------------------
def _regression_operator(Ys: np.ndarray) -> np.ndarray:
    """Residual operator T with ``W = Y T`` (HySime multiple regression).

    Band i is regressed on all other bands: ``β_i = R₋ᵢ₋ᵢ⁻¹ R₋ᵢ,ᵢ`` with
    ``R = YᵀY``. With ``Q = R⁻¹`` this is ``β_ji = −Q_ji / Q_ii``, so the
    residual ``w_i = y_i − Σ_j β_ji y_j = (Y Q)_i / Q_ii``: one inverse for
    all B regressions instead of B solves.

    Args:
        Ys: Sample pixels ``(n, B)`` float64.

    Returns:
        ``T (B, B)`` float64.
    """
    R = Ys.T @ Ys
    b = R.shape[0]
    R += (1e-10 * np.trace(R) / b + 1e-300) * np.eye(b)  # duplicated / constant bands
    Q = np.linalg.inv(R)
    return Q / np.diag(Q)[None, :]


def _noise_correlation(Ws: np.ndarray) -> np.ndarray:
    """``WᵀW / (n − B + 1)``: residual correlation, regression bias undone."""
    n, b = Ws.shape
    return Ws.T @ Ws / (n - b + 1)


def estimate_noise(
    Y: np.ndarray, max_pixels: int = MAX_STAT_PIXELS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Multiple-regression noise estimate (HySime, Bioucas-Dias 2008, Alg. 1).

    Each band is predicted from all others by least squares; the residual is
    the noise. Regression coefficients come from at most ``max_pixels``
    valid pixels (drawn with ``seed``) and are applied to every pixel.
    In-sample residuals of a regression on B−1 bands underestimate the noise
    power by a factor (n−B+1)/n, so ``Rn`` is scaled back by its inverse
    (negligible for n ≫ B, decisive for small scenes).

    Args:
        Y: Pixels ``(N, B)``.
        max_pixels: Pixels used to fit the regression and ``Rn``.
        seed: Seed of the pixel subsample.

    Returns:
        ``W (N, B)`` the noise estimate (float32 for float32 input, NaN rows
        where ``Y`` is invalid) and ``Rn (B, B)`` float64 noise correlation
        matrix ``WᵀW / (n − B + 1)`` over the n sampled pixels.

    Raises:
        UnmixError: If fewer than 2 bands or too few valid pixels.
    """
    Y, valid = _pixels(Y)
    n, b = Y.shape
    if b < 2 or valid.size <= b:
        raise UnmixError(f"noise estimation needs more valid pixels ({valid.size}) than bands ({b}): "
                         f"use VCA + FCLS or fewer bands for so small a raster")
    Ys = Y[_sample(valid, max_pixels, seed)].astype(np.float64)
    T = _regression_operator(Ys)
    Rn = _noise_correlation(Ys @ T)
    W = np.full((n, b), np.nan, dtype=Y.dtype)
    for s in range(0, valid.size, 8192):
        rows = valid[s : s + 8192]
        W[rows] = Y[rows].astype(np.float64) @ T
    return W, Rn


def hysime(Y: np.ndarray, seed: int = 0, max_pixels: int = MAX_STAT_PIXELS) -> tuple[int, np.ndarray]:
    """Signal subspace identification (HySime, Bioucas-Dias 2008, Alg. 2).

    Noise is estimated by multiple regression; the signal correlation
    ``Rx = (Y−W)ᵀ(Y−W)/n`` gives eigenvectors e_i, and direction i belongs
    to the subspace when its mean squared error decreases by keeping it:
    ``cost_i = −eᵢᵀRy eᵢ + 2 eᵢᵀRn eᵢ < 0``. Correlation (not covariance)
    matrices are used, so for data on a (P−1)-simplex k estimates P.

    Two finite-sample corrections keep small scenes (n of a few B) from
    returning dozens: ``Rn`` is debiased as in :func:`estimate_noise`, and
    the eigenvectors come from one random half of the sample while ``Ry``
    is measured on the other half — the top noise eigenvectors of a sample
    otherwise carry ~(1+√(B/n))² × the noise power and pass the test. For
    n ≫ B both change nothing.

    Args:
        Y: Pixels ``(N, B)``.
        seed: Seed of the pixel subsample.
        max_pixels: Pixels used for the statistics.

    Returns:
        ``k`` (may be 0 for pure noise) and ``Ek (B, k)`` the orthonormal
        subspace basis, most significant direction first.

    Raises:
        UnmixError: If too few valid pixels.
    """
    Y, valid = _pixels(Y)
    b = Y.shape[1]
    if b < 2 or valid.size <= b:
        raise UnmixError(f"HySime needs more valid pixels ({valid.size}) than bands ({b}) to estimate the number "
                         f"of endmembers: give it yourself")
    Ys = Y[_sample(valid, max_pixels, seed)].astype(np.float64)
    Ws = Ys @ _regression_operator(Ys)
    Rn = _noise_correlation(Ws)
    Xs = Ys - Ws
    half = np.random.default_rng(seed).permutation(Ys.shape[0])
    fit, test = half[: half.size // 2], half[half.size // 2 :]
    Rx = Xs[fit].T @ Xs[fit] / fit.size
    Ry = Ys[test].T @ Ys[test] / test.size
    Rn += np.trace(Rx) / b / 1e5 * np.eye(b)  # as in the reference code
    _, Ev = np.linalg.eigh(Rx)
    Ev = Ev[:, ::-1]
    py = np.einsum("bi,bc,ci->i", Ev, Ry, Ev)
    pn = np.einsum("bi,bc,ci->i", Ev, Rn, Ev)
    cost = -py + 2.0 * pn
    k = int(np.sum(cost < 0))
    order = np.argsort(cost, kind="stable")[:k]
    return k, Ev[:, order]


# --------------------------------------------------------------------------
# VCA
# --------------------------------------------------------------------------
def _estimate_snr_db(py: float, px: float, p: int, b: int) -> float:
    """VCA's SNR estimate from the data power and the p-subspace power."""
    num = px - p / b * py
    den = py - px
    if den <= 0:
        return float("inf")
    if num <= 0:
        return float("-inf")
    return float(10.0 * np.log10(num / den))


def _project(Y: np.ndarray, valid: np.ndarray, U: np.ndarray, mean: np.ndarray | None = None,
             chunk: int = 65536) -> np.ndarray:
    """``(Y[valid] − mean) @ U`` in float64, a chunk of rows at a time (no float64 copy of Y)."""
    out = np.empty((valid.size, U.shape[1]))
    for i in range(0, valid.size, chunk):
        rows = Y[valid[i:i + chunk]].astype(np.float64)
        out[i:i + chunk] = (rows - mean if mean is not None else rows) @ U
    return out


def vca(
    Y: np.ndarray,
    p: int,
    seed: int = 0,
    snr_db: float | None = None,
    max_pixels: int = 100000,
) -> tuple[np.ndarray, np.ndarray]:
    """Vertex component analysis (Nascimento & Bioucas-Dias 2005).

    Estimates the SNR (unless given); at high SNR (> 15 + 10 log10 p dB) the
    data are projected onto the p-dim correlation subspace and scaled
    projectively (``x / (uᵀx)``), otherwise onto the (p−1)-dim covariance
    subspace plus a constant coordinate. Then p times: draw a direction
    orthogonal to the endmembers found so far and take the pixel with the
    largest absolute projection onto it.

    Args:
        Y: Pixels ``(N, B)``; rows with non-finite values are never chosen.
        p: Number of endmembers, 2 ≤ p < B.
        seed: Seed of the random directions (and of the statistics subsample
            when more than ``max_pixels`` pixels are valid): same seed, same
            result.
        snr_db: Known SNR in dB; estimated when None.
        max_pixels: Pixels used to estimate the subspaces and the SNR; all
            valid pixels are candidates.

    Returns:
        ``E (P, B)`` float64, the chosen pixels projected on the signal
        subspace (denoised; ``Y[indices]`` gives the raw pixels), and
        ``indices (P,)`` int64 rows of ``Y``, in order of extraction.

    Raises:
        UnmixError: If ``p`` is invalid for the data.
    """
    Y, valid = _pixels(Y)
    b = Y.shape[1]
    p = check_p(p, b, valid.size)
    rng = np.random.default_rng(seed)
    Ys = Y[_sample(valid, max_pixels, seed)].astype(np.float64)
    n = Ys.shape[0]
    y_mean = Ys.mean(axis=0)
    py = float(np.einsum("ij,ij->", Ys, Ys)) / n
    corr = Ys.T @ Ys / n  # (B, B) second moments; the covariance from them, without a centred copy
    cov = corr - np.outer(y_mean, y_mean)
    if snr_db is None:
        Ud = np.linalg.eigh(cov)[1][:, ::-1][:, :p]
        px = float(np.sum((Ys @ Ud - y_mean @ Ud) ** 2)) / n + float(y_mean @ y_mean)
        snr_db = _estimate_snr_db(py, px, p, b)
    del Ys
    low = snr_db < 15.0 + 10.0 * np.log10(p)
    if low:
        # low SNR: affine (p−1)-subspace, then lift with a constant coordinate
        Ud = np.linalg.eigh(cov)[1][:, ::-1][:, : p - 1]
        x = _project(Y, valid, Ud, y_mean)
        c = float(np.sqrt(np.max(np.sum(x**2, axis=1))))
        proj = np.hstack([x, np.full((x.shape[0], 1), c)])
    else:
        # high SNR: projective projection onto the p-dim correlation subspace
        Ud = np.linalg.eigh(corr)[1][:, ::-1][:, :p]
        x = _project(Y, valid, Ud)
        u = x.mean(axis=0)
        denom = x @ u
        ok = denom > 1e-12 * np.max(np.abs(denom))
        proj = np.zeros_like(x)
        proj[ok] = x[ok] / denom[ok, None]
    found = np.zeros((p, p))
    found[p - 1, 0] = 1.0
    picks = np.zeros(p, dtype=np.int64)
    for i in range(p):
        w = rng.random(p)
        f = w - found @ (np.linalg.pinv(found) @ w)
        f /= np.linalg.norm(f)
        picks[i] = int(np.argmax(np.abs(proj @ f)))
        found[:, i] = proj[picks[i]]
    E = x[picks] @ Ud.T  # the picks on the signal subspace
    return (E + y_mean if low else E), valid[picks]


# --------------------------------------------------------------------------
# library
# --------------------------------------------------------------------------
def _library(lib_spectra: np.ndarray, n_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``(K, B)`` library spectra; return them and usable rows."""
    L = np.asarray(lib_spectra, dtype=np.float64)
    if L.ndim != 2 or L.shape[1] != n_bands:
        raise UnmixError(
            f"library spectra must be (K, {n_bands}) resampled to the image bands, got {L.shape}"
        )
    usable = np.isfinite(L).all(axis=1) & (np.linalg.norm(np.nan_to_num(L), axis=1) > 0)
    if not usable.any():
        raise UnmixError("the spectral library has no usable spectrum")
    return L, usable


def name_endmembers(
    E: np.ndarray, lib_spectra: np.ndarray, lib_names: Sequence[str], max_angle: float | None = None
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Name each endmember after its closest library spectrum (spectral angle).

    Args:
        E: Endmembers ``(P, B)``.
        lib_spectra: Library ``(K, B)`` resampled to the same bands; spectra
            with non-finite values or zero norm are skipped.
        lib_names: ``K`` names.
        max_angle: an endmember farther (rad) from every spectrum is named
            ``EMi (unmatched)``; None: always the closest.

    Returns:
        ``names`` (P strings; repeats among the matched get ``' (2)'``, ``' (3)'``…),
        ``lib_indices (P,)`` int64 and ``angles_rad (P,)`` float64.

    Raises:
        UnmixError: On shape mismatches or an empty library.
    """
    E = np.asarray(E, dtype=np.float64)
    if E.ndim != 2:
        raise UnmixError(f"endmembers must be (P, B), got shape {E.shape}")
    L, usable = _library(lib_spectra, E.shape[1])
    if len(lib_names) != L.shape[0]:
        raise UnmixError(f"{len(lib_names)} library names for {L.shape[0]} spectra")
    ang = sad_matrix(E, L)
    ang[:, ~usable] = np.inf
    ang = np.where(np.isfinite(ang), ang, np.inf)
    idx = np.argmin(ang, axis=1)
    angles = ang[np.arange(E.shape[0]), idx]
    names: list[str] = []
    seen: dict[str, int] = {}
    for k, i in enumerate(idx):
        if max_angle is not None and not angles[k] <= max_angle:
            names.append(f"EM{k + 1} (unmatched)")
            continue
        base = str(lib_names[i])
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base} ({seen[base]})")
    return names, idx.astype(np.int64), np.where(np.isfinite(angles), angles, np.nan)


def _relative_residual(Ys: np.ndarray, L: np.ndarray) -> float:
    """``Σ||y − Lᵀa||² / Σ||y||²`` with per-pixel NNLS abundances a."""
    A = nnls(Ys, L).astype(np.float64)
    return float(np.sum((Ys - A @ L) ** 2) / np.sum(Ys**2))


def select_from_library(
    Y: np.ndarray,
    lib_spectra: np.ndarray,
    p: int,
    seed: int = 0,
    max_pixels: int = 2000,
    candidates: int = 10,
    sweeps: int = 3,
) -> np.ndarray:
    """Pick ``p`` library spectra that explain the data (library-guided E0).

    Method (chosen for speed and robustness to gain / illumination scaling):

    1. VCA gives p data endmembers; each is matched to a distinct library
       spectrum by spectral angle (Hungarian assignment) — the start set.
    2. For each slot, its ``candidates`` library spectra closest in angle to
       that VCA endmember form the slot's pool.
    3. Swap refinement: slot by slot, replace the chosen spectrum by each
       pool member and keep the swap when the relative NNLS reconstruction
       error on a pixel subsample (≤ ``max_pixels``, seeded) drops; repeat
       until a sweep changes nothing (at most ``sweeps``).

    NNLS (not FCLS) is the fit criterion because library reflectances and
    image values often differ by a gain (units, illumination, topography);
    the non-negative cone is invariant to per-spectrum scaling.

    Args:
        Y: Pixels ``(N, B)``.
        lib_spectra: Library ``(K, B)`` resampled to the image bands.
        p: Number of spectra to select, 2 ≤ p < B, p ≤ usable spectra.
        seed: Seed for VCA and the pixel subsample.
        max_pixels: Pixels in the fit subsample.
        candidates: Pool size per slot.
        sweeps: Maximum refinement sweeps.

    Returns:
        ``indices (P,)`` int64 rows of ``lib_spectra``, distinct, in the
        order of the VCA endmembers they replace.

    Raises:
        UnmixError: If ``p`` is invalid or the library has too few spectra.
    """
    Y, valid = _pixels(Y)
    b = Y.shape[1]
    p = check_p(p, b, valid.size)
    L, usable = _library(lib_spectra, b)
    if p > int(usable.sum()):
        raise UnmixError(f"{p} endmembers requested, more than the {int(usable.sum())} usable library spectra")
    E0, _ = vca(Y, p, seed=seed)
    ang = sad_matrix(E0, L)
    ang = np.where(usable[None, :] & np.isfinite(ang), ang, 10.0)  # 10 rad > any angle
    _, chosen = linear_sum_assignment(ang)
    chosen = [int(c) for c in chosen]
    pools = np.argsort(ang, axis=1, kind="stable")[:, : max(1, candidates)]
    Ys = Y[_sample(valid, max_pixels, seed)].astype(np.float64)
    best = _relative_residual(Ys, L[chosen])
    for _ in range(max(0, sweeps)):
        changed = False
        for slot in range(p):
            for cand in pools[slot]:
                cand = int(cand)
                if cand in chosen or not usable[cand]:
                    continue
                trial = chosen.copy()
                trial[slot] = cand
                err = _relative_residual(Ys, L[trial])
                if err < best * (1.0 - 1e-9):
                    best, chosen, changed = err, trial, True
        if not changed:
            break
    return np.asarray(chosen, dtype=np.int64)
