"""Metrics on small examples with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.classical.metrics import (
    armse,
    armse_per_endmember,
    evaluate,
    match_endmembers,
    psnr,
    rmse,
    sad,
    sad_matrix,
    sre,
)
from core.errors import UnmixError


def test_rmse_psnr_sre_known_values():
    ref = np.array([0.0, 1.0, 2.0, 4.0])
    est = ref + np.array([1.0, -1.0, 1.0, -1.0])
    assert rmse(ref, est) == pytest.approx(1.0)
    assert psnr(ref, est) == pytest.approx(20 * np.log10(4.0))
    assert psnr(ref, est, peak=10.0) == pytest.approx(20.0)
    assert sre(ref, est) == pytest.approx(10 * np.log10(21.0 / 4.0))
    assert psnr(ref, ref) == float("inf")


def test_rmse_ignores_non_finite_entries():
    ref = np.array([1.0, np.nan, 3.0])
    est = np.array([2.0, 5.0, np.inf])
    assert rmse(ref, est) == pytest.approx(1.0)
    with pytest.raises(UnmixError):
        rmse(np.zeros(3), np.zeros(4))


def test_sad_scaled_orthogonal_and_degrees():
    e = np.array([[1.0, 2.0, 3.0], [1.0, 0.0, 0.0]])
    est = np.array([[2.5, 5.0, 7.5], [0.0, 3.0, 0.0]])
    ang = sad(e, est)
    assert ang[0] == pytest.approx(0.0, abs=1e-7)
    assert ang[1] == pytest.approx(np.pi / 2)
    assert np.degrees(sad(e, est))[1] == pytest.approx(90.0)
    M = sad_matrix(e, est)
    assert M.shape == (2, 2)
    assert M[1, 0] == pytest.approx(np.arccos(1 / np.sqrt(14)))


def test_armse_definition_and_layouts():
    A_ref = np.array([[1.0, 0.0], [0.0, 1.0]])
    A_est = np.array([[0.5, 0.5], [0.0, 1.0]])
    # per-pixel RMSE 0.5 and 0 -> mean 0.25; per-endmember sqrt(0.25 / 2)
    assert armse(A_ref, A_est) == pytest.approx(0.25)
    assert armse_per_endmember(A_ref, A_est) == pytest.approx([np.sqrt(0.125)] * 2)
    rng = np.random.default_rng(0)
    a = rng.dirichlet(np.ones(3), 20).T.reshape(3, 4, 5)
    b = rng.dirichlet(np.ones(3), 20).T.reshape(3, 4, 5)
    assert armse(a, b) == pytest.approx(armse(a.reshape(3, -1).T, b.reshape(3, -1).T))


def test_armse_ignores_nan_pixels():
    A_ref = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    A_est = np.array([[0.5, 0.5], [0.0, 1.0], [np.nan, np.nan]])
    assert armse(A_ref, A_est) == pytest.approx(0.25)


def test_hungarian_recovers_permutation_from_spectra_and_abundances():
    rng = np.random.default_rng(1)
    E = rng.uniform(0.1, 1.0, (5, 30))
    A = rng.dirichlet(np.ones(5), 200)
    perm_true = np.array([3, 0, 4, 1, 2])
    # E_est[k] is reference perm_true⁻¹…: build E_est so that E_est[perm] == E
    E_est = np.empty_like(E)
    E_est[perm_true] = E * rng.uniform(0.5, 2.0, (5, 1))  # gains do not matter
    A_est = np.empty_like(A)
    A_est[:, perm_true] = A
    assert np.array_equal(match_endmembers(E, E_est), perm_true)
    assert np.array_equal(match_endmembers(None, None, A, A_est), perm_true)
    assert np.allclose(sad(E, E_est[perm_true]), 0.0, atol=1e-7)


def test_match_more_estimates_than_references_and_errors():
    E = np.eye(3, 6)
    E_est = np.vstack([np.eye(6)[5], np.eye(3, 6)[::-1], np.eye(6)[4]])
    assert np.array_equal(match_endmembers(E, E_est), [3, 2, 1])
    with pytest.raises(UnmixError):
        match_endmembers(E_est, E)
    with pytest.raises(UnmixError):
        match_endmembers(E, None)


def test_evaluate_full_report_is_json_and_correct():
    rng = np.random.default_rng(2)
    E = rng.uniform(0.1, 1.0, (3, 20))
    A = rng.dirichlet(np.ones(3), 50)
    Y = A @ E
    perm = np.array([2, 0, 1])
    E_est = np.empty_like(E)
    E_est[perm] = E
    A_est = np.empty_like(A)
    A_est[:, perm] = A
    A_est[0] = np.nan  # a nodata pixel
    r = evaluate(A_ref=A, E_ref=E, A_est=A_est, E_est=E_est, Y=Y, names=["a", "b", "c"])
    json.dumps(r, allow_nan=False)
    assert r["perm"] == [2, 0, 1]
    assert r["names"] == ["a", "b", "c"]
    assert r["armse"] == pytest.approx(0.0, abs=1e-12)
    assert r["sad_mean_deg"] == pytest.approx(0.0, abs=1e-5)
    assert r["reconstruction_rmse"] == pytest.approx(0.0, abs=1e-12)
    assert r["reconstruction_psnr"] > 200.0
    noisy = evaluate(A_ref=A, A_est=np.clip(A + 0.01, 0, None), E_est=E, Y=Y)
    assert noisy["armse"] == pytest.approx(0.01, rel=0.2)
    assert noisy["reconstruction_psnr"] > 20.0
    assert "sad_deg" not in noisy


def test_evaluate_accepts_cube_layouts():
    rng = np.random.default_rng(3)
    E = rng.uniform(0.1, 1.0, (2, 10))
    A = rng.dirichlet(np.ones(2), 12).T.reshape(2, 3, 4)
    Y = (A.reshape(2, -1).T @ E).T.reshape(10, 3, 4)  # cube (B, H, W)
    r = evaluate(A_ref=A, E_ref=E, A_est=A, E_est=E, Y=Y)
    assert r["armse"] == 0.0 and r["reconstruction_rmse"] == 0.0
    assert r["reconstruction_psnr"] is None  # perfect -> inf -> None (valid JSON)
    json.dumps(r, allow_nan=False)
