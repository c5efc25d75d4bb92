"""Accuracy metrics for unmixing: RMSE, PSNR, SRE, aRMSE, SAD and matching.

Conventions (HySUPP names): pixels ``Y (N, B)``, endmembers ``E (P, B)``,
abundances ``A (N, P)`` or ``A (P, H, W)``. Non-finite pixels are ignored
everywhere. Every function returns plain Python floats / lists (or numpy
arrays where documented) so results drop straight into ``report.json``.

Definitions used throughout (stated because papers differ):

* ``rmse(ref, est)`` = sqrt(mean((ref - est)^2)) over all finite entries.
* ``psnr(ref, est, peak)`` = 20 log10(peak / rmse), ``peak`` = max(ref).
* ``sre(ref, est)`` = 10 log10(||ref||^2 / ||ref - est||^2) (signal to
  reconstruction error, dB).
* ``armse(A_ref, A_est)`` = mean over pixels of the per-pixel RMSE across
  endmembers, ``mean_n sqrt(mean_p (a_np - â_np)^2)``.
* ``armse_per_endmember`` = ``sqrt(mean_n (a_np - â_np)^2)`` for each p.
* ``sad(E_ref, E_est)`` = arccos of the cosine between matching rows, radians.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..errors import UnmixError

__all__ = [
    "rmse",
    "psnr",
    "sre",
    "armse",
    "armse_per_endmember",
    "sad",
    "sad_matrix",
    "match_endmembers",
    "evaluate",
]


def _pair(ref: np.ndarray, est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return flattened float64 copies of the entries finite in both arrays."""
    ref = np.asarray(ref, dtype=np.float64)
    est = np.asarray(est, dtype=np.float64)
    if ref.shape != est.shape:
        raise UnmixError(f"shape mismatch: reference {ref.shape} vs estimate {est.shape}")
    ok = np.isfinite(ref) & np.isfinite(est)
    return ref[ok], est[ok]


def rmse(ref: np.ndarray, est: np.ndarray) -> float:
    """Root mean squared error over all entries finite in both arrays.

    Args:
        ref: Reference array, any shape.
        est: Estimate, same shape as ``ref``.

    Returns:
        The RMSE (NaN when no entry is finite in both).
    """
    r, e = _pair(ref, est)
    if r.size == 0:
        return float("nan")
    return float(np.sqrt(np.mean((r - e) ** 2)))


def psnr(ref: np.ndarray, est: np.ndarray, peak: Optional[float] = None) -> float:
    """Peak signal-to-noise ratio in dB.

    Args:
        ref: Reference array, any shape.
        est: Estimate, same shape.
        peak: Peak value; default the maximum of the finite entries of ``ref``.

    Returns:
        ``20 log10(peak / rmse)`` (inf for a perfect estimate).
    """
    r, e = _pair(ref, est)
    if r.size == 0:
        return float("nan")
    if peak is None:
        peak = float(np.max(r))
    err = float(np.sqrt(np.mean((r - e) ** 2)))
    if err == 0.0:
        return float("inf")
    return float(20.0 * np.log10(abs(peak) / err))


def sre(ref: np.ndarray, est: np.ndarray) -> float:
    """Signal-to-reconstruction error in dB, ``10 log10(||ref||² / ||ref − est||²)``.

    Args:
        ref: Reference array, any shape.
        est: Estimate, same shape.

    Returns:
        SRE in dB (inf for a perfect estimate).
    """
    r, e = _pair(ref, est)
    if r.size == 0:
        return float("nan")
    num = float(np.sum(r**2))
    den = float(np.sum((r - e) ** 2))
    if den == 0.0:
        return float("inf")
    return float(10.0 * np.log10(num / den))


def _rows(X: np.ndarray, what: str = "abundances", layout: str = "(N, P) or (P, H, W)") -> np.ndarray:
    """``(N, C)`` rows or a ``(C, H, W)`` image -> ``(N, C)`` float64."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 3:
        return X.reshape(X.shape[0], -1).T
    if X.ndim != 2:
        raise UnmixError(f"{what} must be {layout}, got shape {X.shape}")
    return X


def _as_np(A: np.ndarray) -> np.ndarray:
    """Abundances ``(N, P)`` or ``(P, H, W)`` -> ``(N, P)`` float64."""
    return _rows(A)


def _abundance_pair(A_ref: np.ndarray, A_est: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_np(A_ref), _as_np(A_est)
    if a.shape != b.shape:
        raise UnmixError(f"abundance shape mismatch: {a.shape} vs {b.shape}")
    ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
    return a[ok], b[ok]


def armse(A_ref: np.ndarray, A_est: np.ndarray) -> float:
    """Abundance RMSE: mean over pixels of the per-pixel RMSE across endmembers.

    ``mean_n sqrt(mean_p (a_np − â_np)²)``; pixels with a non-finite value in
    either map are ignored. Endmembers must already be matched.

    Args:
        A_ref: Reference abundances ``(N, P)`` or ``(P, H, W)``.
        A_est: Estimated abundances, same layout and shape.

    Returns:
        The aRMSE (NaN when no pixel is valid).
    """
    a, b = _abundance_pair(A_ref, A_est)
    if a.shape[0] == 0:
        return float("nan")
    return float(np.mean(np.sqrt(np.mean((a - b) ** 2, axis=1))))


def armse_per_endmember(A_ref: np.ndarray, A_est: np.ndarray) -> np.ndarray:
    """RMSE of each abundance map over the valid pixels.

    Args:
        A_ref: Reference abundances ``(N, P)`` or ``(P, H, W)``.
        A_est: Estimated abundances, same layout and shape.

    Returns:
        ``(P,)`` float64 array, ``sqrt(mean_n (a_np − â_np)²)``.
    """
    a, b = _abundance_pair(A_ref, A_est)
    if a.shape[0] == 0:
        return np.full(a.shape[1], np.nan)
    return np.sqrt(np.mean((a - b) ** 2, axis=0))


def _spectra(E: np.ndarray, what: str) -> np.ndarray:
    E = np.asarray(E, dtype=np.float64)
    if E.ndim == 1:
        E = E[None, :]
    if E.ndim != 2:
        raise UnmixError(f"{what} must be (P, B), got shape {E.shape}")
    return E


def sad_matrix(E_ref: np.ndarray, E_est: np.ndarray) -> np.ndarray:
    """Spectral angles between every reference and every estimated spectrum.

    Args:
        E_ref: Reference spectra ``(P, B)``.
        E_est: Estimated spectra ``(Q, B)``.

    Returns:
        ``(P, Q)`` angles in radians in [0, π]; NaN where a spectrum has zero
        norm or non-finite values.
    """
    a, b = _spectra(E_ref, "E_ref"), _spectra(E_est, "E_est")
    if a.shape[1] != b.shape[1]:
        raise UnmixError(f"band count mismatch: {a.shape[1]} vs {b.shape[1]}")
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (a @ b.T) / (na[:, None] * nb[None, :])
    return np.arccos(np.clip(cos, -1.0, 1.0))


def sad(E_ref: np.ndarray, E_est: np.ndarray) -> np.ndarray:
    """Spectral angle distance between matching rows (no re-ordering).

    Args:
        E_ref: Reference spectra ``(P, B)``.
        E_est: Estimated spectra ``(P, B)``, already matched to ``E_ref``.

    Returns:
        ``(P,)`` angles in radians.
    """
    a, b = _spectra(E_ref, "E_ref"), _spectra(E_est, "E_est")
    if a.shape != b.shape:
        raise UnmixError(f"endmember shape mismatch: {a.shape} vs {b.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return np.arccos(np.clip(cos, -1.0, 1.0))


def match_endmembers(
    E_ref: Optional[np.ndarray],
    E_est: Optional[np.ndarray],
    A_ref: Optional[np.ndarray] = None,
    A_est: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Hungarian matching of estimated to reference endmembers.

    The cost is the spectral angle when both spectra sets are given, otherwise
    the RMSE between abundance maps.

    Args:
        E_ref: Reference spectra ``(P, B)`` or None.
        E_est: Estimated spectra ``(Q, B)``, Q ≥ P, or None.
        A_ref: Reference abundances ``(N, P)`` / ``(P, H, W)`` (used without E).
        A_est: Estimated abundances ``(N, Q)`` / ``(Q, H, W)``.

    Returns:
        ``perm`` ``(P,)`` int array such that ``E_est[perm]`` (and
        ``A_est[:, perm]``) aligns with the reference.

    Raises:
        UnmixError: If neither spectra nor abundances are given in pairs, or
            the estimate has fewer endmembers than the reference.
    """
    if E_ref is not None and E_est is not None:
        cost = sad_matrix(E_ref, E_est)
    elif A_ref is not None and A_est is not None:
        a, b = _as_np(A_ref), _as_np(A_est)
        if a.shape[0] != b.shape[0]:
            raise UnmixError(f"abundance pixel count mismatch: {a.shape[0]} vs {b.shape[0]}")
        ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
        a, b = a[ok], b[ok]
        # (P, Q) mean squared difference between map p of ref and map q of est
        cost = np.sqrt(np.mean((a[:, :, None] - b[:, None, :]) ** 2, axis=0))
    else:
        raise UnmixError("matching needs both endmember sets or both abundance sets")
    if cost.shape[1] < cost.shape[0]:
        raise UnmixError(
            f"estimate has {cost.shape[1]} endmembers, fewer than the reference's {cost.shape[0]}"
        )
    cost = np.where(np.isfinite(cost), cost, 1e6)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(cost.shape[0], dtype=np.int64)
    perm[rows] = cols
    return perm


def _pixels(Y: np.ndarray) -> np.ndarray:
    """Pixels ``(N, B)`` or cube ``(B, H, W)`` -> ``(N, B)`` float64."""
    return _rows(Y, "pixels", "(N, B) or (B, H, W)")


def _clean(x: float) -> Optional[float]:
    """JSON-friendly float: inf/NaN become None."""
    return float(x) if np.isfinite(x) else None


def evaluate(
    A_ref: Optional[np.ndarray] = None,
    E_ref: Optional[np.ndarray] = None,
    A_est: Optional[np.ndarray] = None,
    E_est: Optional[np.ndarray] = None,
    Y: Optional[np.ndarray] = None,
    names: Optional[Sequence[str]] = None,
) -> dict:
    """Match estimate to reference and score it; JSON-serialisable.

    Endmembers are matched by :func:`match_endmembers` (SAD when both spectra
    sets are given, else abundance RMSE). Scores present depend on the inputs:

    * ``perm``, ``p``, ``names`` whenever a reference is given;
    * ``sad_rad`` / ``sad_deg`` (per endmember) and ``sad_mean_rad`` /
      ``sad_mean_deg`` when both spectra sets are given;
    * ``armse`` (see module doc), ``armse_per_endmember`` when both abundance
      sets are given;
    * ``reconstruction_rmse``, ``reconstruction_psnr``, ``reconstruction_sre``
      when ``Y``, ``A_est`` and ``E_est`` are given (no reference needed).

    Non-finite values (e.g. a perfect PSNR) are reported as ``None``.

    Args:
        A_ref: Reference abundances ``(N, P)`` or ``(P, H, W)``.
        E_ref: Reference spectra ``(P, B)``.
        A_est: Estimated abundances ``(N, Q)`` or ``(Q, H, W)``.
        E_est: Estimated spectra ``(Q, B)``.
        Y: Observed pixels ``(N, B)`` or cube ``(B, H, W)``.
        names: Reference endmember names (default ``em1``…).

    Returns:
        A dict of plain floats, ints, strings and lists.
    """
    out: dict = {}
    have_e = E_ref is not None and E_est is not None
    have_a = A_ref is not None and A_est is not None
    if have_e or have_a:
        perm = match_endmembers(E_ref, E_est, A_ref, A_est)
        p = len(perm)
        if names is None:
            names = [f"em{i + 1}" for i in range(p)]
        out["p"] = int(p)
        out["perm"] = [int(i) for i in perm]
        out["names"] = [str(n) for n in names]
        if have_e:
            ang = sad(E_ref, _spectra(E_est, "E_est")[perm])
            out["sad_rad"] = [_clean(v) for v in ang]
            out["sad_deg"] = [_clean(v) for v in np.degrees(ang)]
            out["sad_mean_rad"] = _clean(float(np.nanmean(ang)))
            out["sad_mean_deg"] = _clean(float(np.degrees(np.nanmean(ang))))
        if have_a:
            a_est = _as_np(A_est)[:, perm]
            out["armse"] = _clean(armse(A_ref, a_est))
            out["armse_per_endmember"] = [_clean(v) for v in armse_per_endmember(A_ref, a_est)]
    if Y is not None and A_est is not None and E_est is not None:
        y = _pixels(Y)
        y_hat = _as_np(A_est) @ _spectra(E_est, "E_est")
        if y_hat.shape != y.shape:
            raise UnmixError(f"reconstruction shape {y_hat.shape} does not match pixels {y.shape}")
        out["reconstruction_rmse"] = _clean(rmse(y, y_hat))
        out["reconstruction_psnr"] = _clean(psnr(y, y_hat))
        out["reconstruction_sre"] = _clean(sre(y, y_hat))
    return out
