"""FCLS / NNLS / SCLS against independent per-pixel references and KKT checks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import nnls as scipy_nnls
from testutil import check_refuses_bad_shapes, mixed_pixels, smooth_spectra

from core.classical.fcls import fcls, nnls
from core.errors import UnmixError


def ref_fcls_nnls(Y: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Classic FCLS trick: NNLS on ``[Eᵀ; δ1ᵀ] a ≈ [y; δ]`` with a large δ."""
    p = E.shape[0]
    delta = 1e3 * np.abs(E).max() * np.sqrt(E.shape[1])
    M = np.vstack([E.T, delta * np.ones((1, p))])
    return np.array([scipy_nnls(M, np.append(y, delta), maxiter=50 * p)[0] for y in Y])


def ref_fcls_enumerate(Y: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Exhaustive supports, each solved by lstsq on E itself (no Gram matrix)."""
    p = E.shape[0]
    out = np.zeros((Y.shape[0], p))
    for n, y in enumerate(Y):
        best = np.inf
        for k in range(1, p + 1):
            for S in itertools.combinations(range(p), k):
                Es = E[list(S)]
                # a = e_0 + N c with N spanning {Σa = 0}: unconstrained in c
                N = np.vstack([-np.ones((1, k - 1)), np.eye(k - 1)])
                a0 = np.eye(k)[0]
                if k > 1:
                    c = np.linalg.lstsq(Es.T @ N, y - Es.T @ a0, rcond=None)[0]
                    a = a0 + N @ c
                else:
                    a = a0
                if a.min() < -1e-12:
                    continue
                r = float(np.sum((y - Es.T @ a) ** 2))
                if r < best:
                    best = r
                    out[n] = 0.0
                    out[n, list(S)] = a
    return out


def kkt_violation(Y: np.ndarray, E: np.ndarray, A: np.ndarray, sum_to_one: bool = True) -> float:
    """Largest violation of the KKT conditions, relative to the problem scale."""
    A = A.astype(np.float64)
    G = E @ E.T
    grad = A @ G - Y @ E.T  # ∇ of ½||y − Eᵀa||²
    free = A > 1e-6
    if sum_to_one:
        nu = -np.sum(np.where(free, grad, 0.0), axis=1) / np.maximum(free.sum(axis=1), 1)
    else:
        nu = np.zeros(len(A))
    lam = grad + nu[:, None]
    scale = np.trace(G) / E.shape[0]
    stat = np.abs(np.where(free, lam, 0.0)).max()  # free: λ = 0
    dual = np.maximum(-np.where(free, 0.0, lam), 0.0).max()  # bound: λ ≥ 0
    return float(max(stat, dual) / scale)


@pytest.mark.parametrize("p", [2, 3, 5])
def test_fcls_matches_exhaustive_lstsq_reference(p):
    E = smooth_spectra(p, 40, seed=p)
    Y = mixed_pixels(E, 150, seed=10 + p)
    A = fcls(Y, E)
    ref = ref_fcls_enumerate(Y, E)
    assert A.dtype == np.float32 and A.shape == (150, p)
    assert np.abs(A - ref).max() < 1e-5


@pytest.mark.parametrize("p", [2, 4, 7, 10, 14])
def test_fcls_matches_nnls_trick_reference(p):
    E = smooth_spectra(p, 60, seed=20 + p)
    Y = mixed_pixels(E, 300, seed=30 + p)
    A = fcls(Y, E)
    ref = ref_fcls_nnls(Y, E)
    assert np.abs(A - ref).max() < 1e-4
    assert A.min() >= 0.0
    assert np.abs(A.sum(axis=1) - 1.0).max() < 1e-5
    assert kkt_violation(Y, E, A) < 1e-4


@pytest.mark.parametrize("p", [3, 6, 9, 16])
def test_enumeration_and_active_set_agree(p):
    E = smooth_spectra(p, 50, seed=40 + p)
    Y = mixed_pixels(E, 800, seed=50 + p)
    a_set = fcls(Y, E, method="active-set")
    assert kkt_violation(Y, E, a_set) < 1e-4
    if p <= 9:
        assert np.abs(fcls(Y, E, method="enumerate") - a_set).max() < 1e-5


def test_fcls_float32_nan_rows_and_chunks():
    E = smooth_spectra(4, 100, seed=1)
    Y = mixed_pixels(E, 1000, seed=2).astype(np.float32)
    Y[[3, 500]] = np.nan
    Y[7, 10] = np.inf
    A = fcls(Y, E, chunk=128)
    bad = [3, 7, 500]
    assert np.isnan(A[bad]).all()
    good = np.setdiff1d(np.arange(1000), bad)
    assert np.isfinite(A[good]).all()
    assert np.abs(A[good] - fcls(Y[good], E)).max() < 1e-6
    ref = ref_fcls_nnls(Y[good[:100]].astype(np.float64), E)
    assert np.abs(A[good[:100]] - ref).max() < 1e-4


def test_fcls_recovers_noiseless_abundances_at_reflectance_scale():
    E = smooth_spectra(5, 200, seed=3) * 10000.0  # int16-style reflectance
    A = np.random.default_rng(4).dirichlet(np.ones(5), 500)
    A_hat = fcls((A @ E).astype(np.float32), E.astype(np.float32))
    assert np.abs(A_hat - A).max() < 1e-4


def test_fcls_duplicate_endmembers_still_optimal():
    E = smooth_spectra(3, 30, seed=5)
    E = np.vstack([E, E[0]])  # a duplicated endmember makes G singular
    Y = mixed_pixels(E[:3], 200, seed=6)
    for method in ("enumerate", "active-set"):
        A = fcls(Y, E, method=method).astype(np.float64)
        ref = ref_fcls_nnls(Y, E[:3])
        merged = np.column_stack([A[:, 0] + A[:, 3], A[:, 1], A[:, 2]])
        assert np.abs(merged - ref).max() < 1e-4


@pytest.mark.parametrize("p", [2, 5, 12])
def test_nnls_matches_scipy(p):
    E = smooth_spectra(p, 50, seed=60 + p)
    Y = mixed_pixels(E, 200, seed=70 + p)
    A = nnls(Y, E)
    ref = np.array([scipy_nnls(E.T, y)[0] for y in Y])
    assert np.abs(A - ref).max() < 1e-5
    assert kkt_violation(Y, E, A, sum_to_one=False) < 1e-4


def test_fcls_bad_input_raises_unmixerror():
    E = check_refuses_bad_shapes(fcls)
    with pytest.raises(UnmixError):
        fcls(np.ones((5, 20)), E, method="magic")


@settings(max_examples=25, deadline=None)
@given(
    p=st.integers(2, 7),
    b=st.integers(8, 30),
    seed=st.integers(0, 2**31 - 1),
    spread=st.floats(0.1, 3.0),
)
def test_fcls_kkt_property(p, b, seed, spread):
    rng = np.random.default_rng(seed)
    E = rng.uniform(0.0, 1.0, (p, b))
    Y = rng.normal(0.0, spread, (40, p)) @ E + rng.normal(0, 0.05, (40, b))
    A = fcls(Y, E)
    assert A.min() >= 0.0
    assert np.abs(A.sum(axis=1) - 1.0).max() < 1e-5
    assert kkt_violation(Y, E, A) < 1e-4
