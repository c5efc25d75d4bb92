"""HySime, VCA, library naming and selection on synthetic scenes of real spectra.

Scenes are built here (not with core.classical.synth): USGS 1995 AVIRIS spectra (the
10°-pruned subset, 62 spectra × 224 bands), every 2nd band (B = 112),
Dirichlet abundances, white Gaussian noise at a given SNR.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.io import loadmat

from core.classical.endmembers import estimate_noise, hysime, name_endmembers, select_from_library, vca
from core.classical.fcls import fcls
from core.classical.metrics import armse, match_endmembers, sad, sad_matrix
from core.errors import UnmixError

BANDS = slice(0, 224, 2)


@pytest.fixture(scope="module")
def library(shared_data):
    path = os.path.join(
        shared_data, "spectral_libraries", "usgs_1995_aviris224_mat", "USGS_pruned_10_deg.mat"
    )
    m = loadmat(path)
    # this pruned file holds spectra only: datalib (224, 62), no wavelength columns
    spectra = m["datalib"].T[:, BANDS].astype(np.float64)
    names = ["".join(map(chr, row)).strip() for row in m["names"]]
    return spectra, names


def pick(lib: np.ndarray, p: int, seed: int, min_deg: float = 15.0) -> np.ndarray:
    """p library rows, in a seeded random order, pairwise at least min_deg apart."""
    ang = np.degrees(sad_matrix(lib, lib))
    chosen: list[int] = []
    for i in np.random.default_rng(seed).permutation(len(lib)):
        if all(ang[i, j] >= min_deg for j in chosen):
            chosen.append(int(i))
        if len(chosen) == p:
            return np.array(chosen)
    raise AssertionError("library too small for the requested separation")


def scene(E: np.ndarray, n: int, snr_db: float, seed: int, pure: bool = False, alpha: float = 1.0):
    """Y (n, B) = A E + white noise at snr_db; A (n, P) Dirichlet(alpha)."""
    rng = np.random.default_rng(seed)
    p = E.shape[0]
    A = rng.dirichlet(np.full(p, alpha), n)
    if pure:
        A[rng.choice(n, p, replace=False)] = np.eye(p)
    X = A @ E
    sigma = np.sqrt(np.mean(X**2) / 10 ** (snr_db / 10))
    return X + rng.normal(0.0, sigma, X.shape), A, sigma


@pytest.mark.parametrize("p", [4, 6])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hysime_finds_endmember_count_at_30db(library, p, seed):
    lib, _ = library
    E = lib[pick(lib, p, seed)]
    Y, _, _ = scene(E, 4096, 30.0, seed=100 + seed)
    k, Ek = hysime(Y, seed=0)
    assert k == p
    assert Ek.shape == (E.shape[1], p)
    assert np.allclose(Ek.T @ Ek, np.eye(p), atol=1e-8)
    # the signal subspace contains the endmembers
    resid = E - (E @ Ek) @ Ek.T
    assert np.linalg.norm(resid) / np.linalg.norm(E) < 0.02


@pytest.mark.parametrize("p", [3, 6])
def test_hysime_small_scene_does_not_overestimate(library, p):
    # n = 1000 pixels for B = 112 bands: the plain HySime returns 16-19 here
    lib, _ = library
    E = lib[pick(lib, p, 5)]
    Y, _, _ = scene(E, 1000, 30.0, seed=6)
    assert hysime(Y, seed=0)[0] == p


@pytest.mark.parametrize("n", [600, 6000])
def test_estimate_noise_recovers_white_noise_level(library, n):
    lib, _ = library
    E = lib[pick(lib, 5, 3)]
    Y, _, sigma = scene(E, n, 30.0, seed=4)
    Y = Y.astype(np.float32)
    Y[[10, 20]] = np.nan
    W, Rn = estimate_noise(Y, max_pixels=4000, seed=1)
    assert W.shape == Y.shape and W.dtype == np.float32
    assert np.isnan(W[[10, 20]]).all() and np.isfinite(np.delete(W, [10, 20], axis=0)).all()
    est = np.sqrt(np.mean(np.diag(Rn)))  # debiased: right even with n ≈ 5 B
    assert est == pytest.approx(sigma, rel=0.05)
    # noise is white: off-diagonal correlation is small on average
    off = Rn - np.diag(np.diag(Rn))
    assert np.abs(off).mean() < 0.05 * sigma**2


@pytest.mark.parametrize("p", [3, 5])
def test_vca_fcls_recovers_40db_scene_with_pure_pixels(library, p):
    lib, _ = library
    E = lib[pick(lib, p, 10 + p)]
    Y, A, _ = scene(E, 4096, 40.0, seed=20 + p, pure=True)
    E_est, idx = vca(Y, p, seed=0)
    assert E_est.shape == (p, E.shape[1]) and len(set(idx.tolist())) == p
    perm = match_endmembers(E, E_est)
    assert np.degrees(sad(E, E_est[perm])).max() < 1.5
    A_est = fcls(Y, E_est)[:, perm]
    assert armse(A, A_est) < 0.05
    # deterministic for a seed
    E2, idx2 = vca(Y, p, seed=0)
    assert np.array_equal(idx, idx2) and np.array_equal(E_est, E2)


def test_vca_low_snr_branch_and_nan_rows(library):
    lib, _ = library
    E = lib[pick(lib, 4, 7)]
    Y, _, _ = scene(E, 3000, 40.0, seed=8, pure=True)
    Y[::7] = np.nan
    for snr in (5.0, None):  # forced low-SNR (affine) branch, then estimated (projective)
        E_est, idx = vca(Y, 4, seed=3, snr_db=snr)
        assert np.isfinite(Y[idx]).all()
        assert np.degrees(sad(E, E_est[match_endmembers(E, E_est)])).max() < 3.0


def test_invalid_p_raises(library):
    lib, _ = library
    Y, _, _ = scene(lib[:3], 50, 30.0, seed=0)
    for bad in (1, 0, Y.shape[1], Y.shape[1] + 5):
        with pytest.raises(UnmixError, match="between 2 and B-1"):
            vca(Y, bad)
        with pytest.raises(UnmixError, match="between 2 and B-1"):
            select_from_library(Y, lib, bad)
    small = Y[:5].copy()
    small[2:] = np.nan
    with pytest.raises(UnmixError, match="valid pixels"):
        vca(small, 4)
    with pytest.raises(UnmixError, match="resampled"):
        name_endmembers(np.ones((2, 50)), lib, ["x"] * len(lib))


def test_name_endmembers_noisy_copies_and_duplicates(library):
    lib, names = library
    rng = np.random.default_rng(5)
    idx = pick(lib, 8, 6, min_deg=10.0)
    E = lib[idx] * rng.uniform(0.6, 1.4, (8, 1))  # gains do not matter
    E += rng.normal(0.0, 0.01 * np.abs(E).mean(), E.shape)
    got, lib_idx, ang = name_endmembers(E, lib, names)
    assert np.array_equal(lib_idx, idx)
    assert got == [names[i] for i in idx]
    assert np.all(ang < np.radians(3.0))
    twice = np.vstack([E[:1], E[:1] * 1.1, E[1:2]])
    got2, _, _ = name_endmembers(twice, lib, names)
    assert got2 == [names[idx[0]], f"{names[idx[0]]} (2)", names[idx[1]]]


@pytest.mark.parametrize("p", [3, 5])
def test_select_from_library_recovers_scene_spectra(library, p):
    lib, _ = library
    idx = pick(lib, p, 30 + p, min_deg=10.0)
    Y, _, _ = scene(lib[idx], 3000, 35.0, seed=40 + p, alpha=0.5)
    chosen = select_from_library(0.7 * Y, lib, p, seed=0)  # a gain vs the library
    assert sorted(chosen.tolist()) == sorted(idx.tolist())
    assert len(set(chosen.tolist())) == p


def test_library_names_leave_far_endmembers_unmatched():
    from core.io.library import SpectralLibrary
    from core.run.start import LIBRARY_MATCH_MAX_RAD, library_names

    x = np.linspace(0.0, 1.0, 50)
    lib_spectra = np.stack([0.2 + 0.6 * x, 0.8 - 0.6 * x])
    lib = SpectralLibrary(names=["rising", "falling"], spectra=lib_spectra, wavelengths_nm=None)
    E = np.stack([lib_spectra[0] * 1.3, 0.5 + 0.4 * np.sin(12 * x)])  # a scaled copy, and nothing like either
    names, match, angles = library_names(E, lib)
    assert names[0] == "rising" and angles[0] < 1e-9
    assert names[1] == "EM2 (unmatched)" and angles[1] > LIBRARY_MATCH_MAX_RAD
    np.testing.assert_allclose(match[0], lib_spectra[0])
    assert np.all(np.isnan(match[1]))  # not drawn as a "matched" library line
    # an unmatched endmember whose closest spectrum another one matched does not number the match
    names, _, _ = library_names(np.stack([E[1], lib_spectra[0] * 0.8]), lib)
    assert names == ["EM1 (unmatched)", "rising"]
    names, _, _ = library_names(np.stack([lib_spectra[0], lib_spectra[0] * 2.0]), lib)
    assert names == ["rising", "rising (2)"]


def test_automatic_endmember_count_warns_when_hysime_cannot_be_trusted():
    from core.run.start import MAX_AUTO_ENDMEMBERS, endmember_count_warning, resolve_p

    class Log:
        def __init__(self):
            self.lines = []

        def info(self, message):
            self.lines.append(message)

    rng = np.random.default_rng(0)
    E = rng.uniform(0.1, 1.0, (3, 30))
    Y = rng.dirichlet(np.ones(3), 40) @ E + 0.001 * rng.standard_normal((40, 30))  # 40 pixels, 30 bands
    log = Log()
    p, est = resolve_p(Y, 0, 0, log)
    assert est is not None and 2 <= p <= MAX_AUTO_ENDMEMBERS
    assert any(line.startswith("warning: HySime's estimate") and "only 40 pixels for 30 bands" in line
               for line in log.lines), log.lines
    assert "signal subspace" in endmember_count_warning(43, 9025, 156)
    assert endmember_count_warning(4, 10000, 200) is None
    log = Log()
    resolve_p(rng.dirichlet(np.ones(3), 4000) @ E, 0, 0, log)  # enough pixels: HySime is trusted, no warning
    assert not log.lines
