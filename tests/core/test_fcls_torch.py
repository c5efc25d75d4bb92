"""core.deep.fcls_torch.fcls_torch against core.classical.fcls.fcls (the exact numpy solver)."""

from __future__ import annotations


import numpy as np
import pytest

torch = pytest.importorskip("torch")

from testutil import check_refuses_bad_shapes, mixed_pixels, smooth_spectra  # noqa: E402

from core.classical.fcls import fcls  # noqa: E402
from core.deep.fcls_torch import TORCH_ENUMERATE_MAX_P, fcls_torch  # noqa: E402
from core.errors import UnmixError  # noqa: E402

TOL = 1e-5


def objective(Y: np.ndarray, E: np.ndarray, A: np.ndarray) -> np.ndarray:
    return np.sum((Y - A.astype(np.float64) @ E) ** 2, axis=1)


def check_simplex(A: np.ndarray) -> None:
    assert A.min() >= 0.0
    assert np.abs(A.sum(axis=1) - 1.0).max() < 1e-5


@pytest.mark.parametrize("p", range(2, TORCH_ENUMERATE_MAX_P + 1))
def test_matches_numpy_fcls(p):
    E = smooth_spectra(p, 120, seed=p)
    Y = mixed_pixels(E, 600, seed=100 + p).astype(np.float32)
    A = fcls_torch(torch.from_numpy(Y), E, enumerate_max_p=TORCH_ENUMERATE_MAX_P)  # CPU default enumerates P ≤ 5
    assert isinstance(A, torch.Tensor) and A.dtype == torch.float32 and tuple(A.shape) == (600, p)
    A = A.numpy()
    assert np.abs(A - fcls(Y, E)).max() < TOL
    check_simplex(A)


def test_reflectance_scale_float64_input_and_tensor_endmembers():
    E = smooth_spectra(5, 200, seed=3) * 10000.0  # int16-style reflectance
    A_true = np.random.default_rng(4).dirichlet(np.ones(5), 500)
    Y = A_true @ E
    A = fcls_torch(torch.from_numpy(Y), torch.from_numpy(E.astype(np.float32))).numpy()
    assert np.abs(A - A_true).max() < 1e-4
    assert np.abs(A - fcls(Y, E.astype(np.float32))).max() < TOL


@pytest.mark.parametrize("p", [3, 6, 8])
def test_pixels_exactly_at_vertices_and_edges(p):
    E = smooth_spectra(p, 80, seed=20 + p)
    mid = 0.5 * (E[0] + E[1])  # on an edge of the simplex: two abundances exactly 0.5
    Y = np.vstack([E, mid[None], E[::-1]]).astype(np.float32)
    A = fcls_torch(torch.from_numpy(Y), E, enumerate_max_p=TORCH_ENUMERATE_MAX_P).numpy()
    expect = np.vstack([np.eye(p), np.eye(p)[[0]] * 0.5 + np.eye(p)[[1]] * 0.5, np.eye(p)[::-1]])
    assert np.abs(A - expect).max() < 1e-4
    assert np.abs(A - fcls(Y, E)).max() < TOL
    check_simplex(A)


@pytest.mark.parametrize("dups", [[0], [0, 2, 2]])
def test_duplicate_endmembers(dups):
    """Duplicates make E Eᵀ singular and the minimiser non-unique: compare objectives and merged abundances."""
    base = smooth_spectra(4, 60, seed=5)
    E = np.vstack([base, base[dups]])
    Y = mixed_pixels(base, 400, seed=6).astype(np.float32)
    A = fcls_torch(torch.from_numpy(Y), E, enumerate_max_p=TORCH_ENUMERATE_MAX_P).numpy()
    ref = fcls(Y, E)
    check_simplex(A)
    f, f_ref = objective(Y, E, A), objective(Y, E, ref)
    assert np.abs(f - f_ref).max() <= 1e-5 * max(1.0, f_ref.max())
    merge = np.zeros((E.shape[0], 4))
    merge[np.arange(4), np.arange(4)] = 1.0
    merge[np.arange(4, E.shape[0]), dups] = 1.0
    assert np.abs(A @ merge - fcls(Y, base)).max() < 1e-4


def test_nonfinite_rows_chunks_and_empty():
    E = smooth_spectra(4, 100, seed=1)
    Y = mixed_pixels(E, 1000, seed=2).astype(np.float32)
    Y[[3, 500]] = np.nan
    Y[7, 10] = np.inf
    Y[8, 0] = -np.inf
    bad = [3, 7, 8, 500]
    A = fcls_torch(torch.from_numpy(Y), E, chunk=97).numpy()
    assert np.isnan(A[bad]).all()
    good = np.setdiff1d(np.arange(1000), bad)
    assert np.isfinite(A[good]).all()
    assert np.abs(A[good] - fcls(Y, E)[good]).max() < TOL
    assert np.abs(A - fcls_torch(torch.from_numpy(Y), E).numpy())[good].max() == 0.0
    assert np.isnan(fcls_torch(torch.full((5, 100), float("nan")), E).numpy()).all()
    assert tuple(fcls_torch(torch.zeros((0, 100)), E).shape) == (0, 4)


@pytest.mark.parametrize("p, limit", [(TORCH_ENUMERATE_MAX_P + 2, TORCH_ENUMERATE_MAX_P), (7, None)])
def test_large_p_falls_back_to_active_set(p, limit):
    E = smooth_spectra(p, 60, seed=9)
    Y = mixed_pixels(E, 300, seed=10).astype(np.float32)
    A = fcls_torch(torch.from_numpy(Y), E, enumerate_max_p=limit).numpy()
    assert np.abs(A - fcls(Y, E)).max() < TOL
    check_simplex(A)


def test_bad_input_raises_unmixerror():
    E = check_refuses_bad_shapes(fcls_torch, torch.from_numpy)
    with pytest.raises(UnmixError):
        fcls_torch(torch.ones(20), E)
    with pytest.raises(UnmixError):
        fcls_torch(torch.ones((5, 20)), np.zeros((0, 20)))
    with pytest.raises(UnmixError):
        fcls_torch(torch.ones((5, 20)), E, chunk=0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("p", [3, 5, 8])
def test_cuda_matches_numpy_fcls(p):
    E = smooth_spectra(p, 200, seed=30 + p)
    Y = mixed_pixels(E, 20000, seed=40 + p).astype(np.float32)
    Y[[1, 999]] = np.nan
    A = fcls_torch(torch.from_numpy(Y).cuda(), torch.from_numpy(E).cuda())
    assert A.device.type == "cuda" and A.dtype == torch.float32
    A = A.cpu().numpy()
    ref = fcls(Y, E)
    assert np.isnan(A[[1, 999]]).all()
    good = np.isfinite(ref).all(axis=1)
    assert np.abs(A[good] - ref[good]).max() < TOL
    check_simplex(A[good])
    assert np.abs(fcls_torch(torch.from_numpy(Y).cuda(), E, chunk=4096).cpu().numpy()[good] - A[good]).max() < 1e-6
