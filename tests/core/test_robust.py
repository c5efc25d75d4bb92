"""Noise-robust endmembers (core/robust.py): bilateral denoising keeps edges and
removes noise, the minimum-volume simplex finds endmembers no pixel shows pure,
and the scale test tells illumination variability from noise."""

import numpy as np
import pytest
import torch

from core.classical.endmembers import vca
from core.classical.metrics import match_endmembers, sad
from core.classical.synth import abundance_field
from core.deep.robust import bilateral, bilateral_np, min_volume, scale_variability, scaled_abundances

torch.set_num_threads(2)


def _endmembers(p, b, rng):
    x = np.linspace(0, 1, b)
    return np.stack([0.3 + 0.25 * np.sin(2 * np.pi * (k + 1) * x / 2 + k) + 0.1 * k for k in range(p)]) \
        + 0.02 * rng.random((p, b))


def test_bilateral_removes_noise_and_keeps_an_edge():
    rng = np.random.default_rng(0)
    b, h, w = 30, 32, 32
    clean = np.zeros((b, h, w))
    clean[:, :, : w // 2] = 0.2
    clean[:, :, w // 2:] = 0.6  # a sharp edge between two materials
    sigma = np.full(b, 0.02)
    noisy = clean + sigma[:, None, None] * rng.standard_normal(clean.shape)
    out = bilateral_np(noisy, sigma)
    interior = np.s_[:, 2:-2, 2:w // 2 - 2]
    assert np.std(out[interior] - clean[interior]) < 0.6 * np.std(noisy[interior] - clean[interior])
    # the edge columns are not blurred: no mixing of 0.2 and 0.6 across it
    edge = out[:, 2:-2, w // 2 - 1: w // 2 + 1].mean(axis=(0, 1))
    assert abs(edge[0] - 0.2) < 0.02 and abs(edge[1] - 0.6) < 0.02
    # zero noise → identity
    assert np.array_equal(bilateral_np(noisy, np.zeros(b)), noisy)


@pytest.mark.parametrize("radius", [1, 2])
def test_bilateral_np_in_row_blocks_equals_the_whole_cube(radius):
    rng = np.random.default_rng(3)
    cube, sigma = rng.random((7, 150, 33)), np.full(7, 0.1)
    whole = bilateral(torch.from_numpy(cube)[None], torch.from_numpy(sigma), radius=radius)[0].numpy()
    for rows in (1, 5, 64, 150):
        np.testing.assert_allclose(bilateral_np(cube, sigma, rows=rows, radius=radius), whole, rtol=1e-12, atol=1e-15)


def test_min_volume_recovers_endmembers_that_no_pixel_shows_pure():
    rng = np.random.default_rng(1)
    p, b = 3, 40
    E = _endmembers(p, b, rng)
    A = abundance_field(p, 64, 64, "grf", rng, purity=0.3).reshape(p, -1).T
    A = A[A.max(axis=1) < 0.8]  # no pixel more than 80 % pure
    sigma = np.full(b, 1e-3)
    Y = A @ E + sigma * rng.standard_normal((len(A), b))
    E_v, _ = vca(Y, p, seed=0)
    torch.manual_seed(0)
    E_m = min_volume(Y[:5000], E_v, sigma)
    err_v = sad(E, E_v[match_endmembers(E, E_v)]).mean()
    err_m = sad(E, E_m[match_endmembers(E, E_m)]).mean()
    assert err_m < 0.5 * err_v, (err_m, err_v)


@pytest.mark.parametrize("illumination,expect_scaled", [(0.0, False), (0.15, True)])
def test_scale_variability_detects_illumination(illumination, expect_scaled):
    rng = np.random.default_rng(2)
    p, b = 3, 40
    E = _endmembers(p, b, rng)
    A = abundance_field(p, 48, 48, "grf", rng, purity=0.7).reshape(p, -1).T
    scale = 1.0 + illumination * rng.standard_normal((len(A), 1))
    sigma = np.full(b, 5e-3)
    Y = scale * (A @ E) + sigma * rng.standard_normal((len(A), b))
    ratio, _ = scale_variability(Y, E, sigma)
    assert (ratio > 2.0) == expect_scaled, ratio
    if expect_scaled:  # the scaled model undoes the illumination, FCLS cannot
        from core.classical.fcls import fcls

        err_scaled = np.sqrt(np.mean((scaled_abundances(Y, E) - A) ** 2))
        err_fcls = np.sqrt(np.mean((fcls(Y, E) - A) ** 2))
        assert err_scaled < 0.5 * err_fcls
        assert np.allclose(scaled_abundances(Y, E).sum(axis=1), 1.0, atol=1e-5)


def test_sure_estimates_the_abundance_error_of_estimators_it_cannot_see_inside():
    """SURE (core.deep.engine.sure_terms, sure_of) tracks the true abundance error of FCLS on
    raw and on bilateral-filtered pixels, from the noisy data alone, and ranks them as the truth does."""
    import torch
    from testutil import smooth_spectra

    from core.classical.fcls import fcls
    from core.classical.synth import abundance_field
    from core.deep.engine import sure_of, sure_terms

    P, B, H, W, sigma = 3, 40, 48, 48, 0.05
    E = smooth_spectra(P, B, seed=4)
    A = abundance_field(P, H, W, "grf", 2, purity=0.5)
    X = np.einsum("pb,phw->bhw", E, A)
    cubes = [(X + sigma * np.random.default_rng(r).standard_normal(X.shape)).astype(np.float32) for r in range(3)]
    valid = np.ones((H, W), bool)
    sig = np.full(B, sigma)

    def raw_fcls(c, v):
        return fcls(c.reshape(B, -1).T.astype(np.float64), E).T.reshape(P, *c.shape[1:])

    def filtered_fcls(c, v):
        y = torch.from_numpy(np.ascontiguousarray(c, np.float64))[None]
        f = bilateral(y, torch.from_numpy(sig))[0].numpy()
        return raw_fcls(f, v)

    truth, est = {}, {}
    for name, fn in (("raw", raw_fcls), ("filtered", filtered_fcls)):  # averaged over 3 noise draws
        ests = [fn(cube, valid) for cube in cubes]
        # the endmembers are exact, so the target (EEᵀ)⁻¹E x is A itself
        truth[name] = np.mean([np.mean((a - A) ** 2) for a in ests])
        est[name] = np.mean([sure_of(sure_terms(fn, [(cube, valid)], E, sig, seed=k))
                             for k, cube in enumerate(cubes)])
        assert abs(est[name] - truth[name]) < 0.15 * truth[name] + 2e-6, (name, est[name], truth[name])
    assert truth["filtered"] < truth["raw"] and est["filtered"] < est["raw"]


def test_sure_blends_two_estimators_by_the_weight_the_truth_would_pick():
    """The SURE of a convex blend of two estimators is a quadratic in the weight, computed from the
    two runs alone (:func:`blend_weight`): it equals the SURE of the blended estimator run as one,
    and the weight it picks lowers the true error below both estimators' when neither is best."""
    import torch
    from testutil import smooth_spectra

    from core.classical.fcls import fcls
    from core.classical.synth import abundance_field
    from core.deep.engine import _blend_terms, blend_weight, sure_of, sure_terms

    P, B, H, W, sigma = 3, 40, 48, 48, 0.05
    E = smooth_spectra(P, B, seed=4)
    A = abundance_field(P, H, W, "grf", 2, purity=0.5)
    X = np.einsum("pb,phw->bhw", E, A)
    cube = (X + sigma * np.random.default_rng(0).standard_normal(X.shape)).astype(np.float32)
    valid, sig = np.ones((H, W), bool), np.full(B, sigma)

    def raw(c, v):
        return fcls(c.reshape(B, -1).T.astype(np.float64), E).T.reshape(P, *c.shape[1:])

    def smoothed(c, v):  # oversmoothed: a 5×5 box filter, biased at the maps' edges
        f = torch.nn.functional.avg_pool2d(torch.from_numpy(np.ascontiguousarray(c, np.float64))[None], 5, 1, 2,
                                           count_include_pad=False)[0].numpy()
        return raw(f, v)

    a, b = sure_terms(raw, [(cube, valid)], E, sig), sure_terms(smoothed, [(cube, valid)], E, sig)
    w = blend_weight(a["h"], b["h"], a["Ty"], b["div"] - a["div"])
    assert 0.05 < w < 0.95
    blend = lambda c, v: raw(c, v) + w * (smoothed(c, v) - raw(c, v))  # noqa: E731
    as_one = sure_of(sure_terms(blend, [(cube, valid)], E, sig))  # the blended estimator run as one
    assert sure_of(_blend_terms(a, b, w)) == pytest.approx(as_one, rel=1e-6)
    grid = [sure_of(_blend_terms(a, b, c)) for c in np.linspace(0, 1, 21)]
    assert sure_of(_blend_terms(a, b, w)) <= min(grid) + 1e-12  # the closed form is the minimum
    err = {name: float(np.mean((fn(cube, valid) - A) ** 2)) for name, fn in (("raw", raw), ("smoothed", smoothed),
                                                                           ("blend", blend))}
    assert err["blend"] < 0.9 * min(err["raw"], err["smoothed"]), err
    truth_w = blend_weight(a["h"], b["h"], A.reshape(P, -1))  # the least-squares weight against the truth
    assert abs(w - truth_w) < 0.15, (w, truth_w)


def _variability_scene(variability, seed=5):
    from core.classical.synth import SceneConfig, make_scene

    rng = np.random.default_rng(seed)
    E = _endmembers(3, 60, rng)
    y, a = make_scene(E, SceneConfig(height=64, width=64, p=3, purity=0.7, snr_db=30.0, seed=seed,
                                     variability=variability))
    return E, y, a


@pytest.mark.parametrize("variability,expect", [(0.0, False), (0.05, True)])
def test_model_excess_tells_variability_from_noise(variability, expect):
    from core.deep.robust import VARIABILITY_EXCESS, model_excess, noise_sigma

    _, y, _ = _variability_scene(variability)
    X = y.reshape(y.shape[0], -1).T.astype(np.float64)
    excess = model_excess(X, noise_sigma(X), 3)
    if expect:
        assert excess > VARIABILITY_EXCESS + 0.2, excess
    else:
        assert 0.9 < excess < VARIABILITY_EXCESS, excess


def test_representative_endmembers_average_the_closest_pixels_in_angle():
    from core.deep.robust import representative_endmembers

    X = np.array([[1.0, 0.0], [2.0, 0.1], [0.9, 0.2], [0.0, 1.0], [0.1, 3.0]])
    # angle, not distance: [2, 0.1] is closer in angle to [1, 0] than [0.9, 0.2] is
    out = representative_endmembers(np.array([[5.0, 0.0], [0.0, 1.0]]), X, k=2)
    np.testing.assert_allclose(out, [[1.5, 0.05], [0.05, 2.0]])


def test_robust_endmembers_take_representative_spectra_under_variability():
    """With within-material variability the extreme pixels are outliers of each
    material; the mean of its core is closer to the material's spectrum."""
    from core.deep.robust import robust_endmembers, vca_max_volume, windows_pixels

    E, y, _ = _variability_scene(0.05)
    cubes = [(y, np.ones(y.shape[1:], bool))]
    got = robust_endmembers(cubes, 3, seed=0)
    assert got["variability"] and got["model_excess"] > 1.2
    # the materials' variability spreads the NNLS sums far beyond noise, but one scale per pixel explains
    # little of it: the linear model stays (the scaled one would turn the variability into abundance error)
    assert got["scale_ratio"] > 2.0 and got["scale_share"] < 0.6 and got["mixing"] == "linear"
    extreme = vca_max_volume(windows_pixels(cubes, radius=2)[1], 3, seed=0)
    err = sad(E, got["E"][match_endmembers(E, got["E"])]).mean()
    err_extreme = sad(E, extreme[match_endmembers(E, extreme)]).mean()
    assert err < 0.7 * err_extreme, (err, err_extreme)
    # without variability the scene keeps the minimum-volume / VCA path
    _, y0, _ = _variability_scene(0.0)
    assert not robust_endmembers([(y0, np.ones(y0.shape[1:], bool))], 3, seed=0)["variability"]


def test_separate_cores_gives_a_missed_material_its_endmember():
    """Two representative endmembers whose cores share pixels stand for one material; the later one
    goes to the material none of them covered (VCA's failure on a bright, variable material)."""
    from core.deep.robust import material_cores, representative_endmembers, separate_cores

    E, y, a = _variability_scene(0.05)
    X = y.reshape(y.shape[0], -1).T.astype(np.float64)
    A = a.reshape(3, -1).T
    k = len(X) // 9
    # two starts on material 0 (its two most extreme variants in angle from each other), none on material 2
    pure0 = X[A[:, 0] > 0.9]
    u = pure0 / np.linalg.norm(pure0, axis=1, keepdims=True)
    far = pure0[np.argmin(u @ u[0])]
    start = representative_endmembers(np.stack([pure0[0], E[1], far]), X, k)
    cores = [set(c.tolist()) for c in material_cores(start, X, k)]
    assert cores[0] & cores[2]  # the situation the function repairs
    got, replaced = separate_cores(start, X, k)
    assert replaced >= 1
    assert sorted(match_endmembers(E, got).tolist()) == [0, 1, 2]
    assert sad(E, got[match_endmembers(E, got)]).max() < 0.05
    cores = [set(c.tolist()) for c in material_cores(got, X, k)]
    assert not (cores[0] & cores[1] or cores[0] & cores[2] or cores[1] & cores[2])
    # cores that already stand apart are left as they are
    same, n = separate_cores(got, X, k)
    assert n == 0 and np.array_equal(same, got)


def test_separate_cores_moves_an_endmember_that_is_a_mixture_of_the_others():
    """A core that is a (darkened) mixture of the others stands for no material: it moves to the material
    the others miss, because the pixels are then explained better; real materials keep their cores."""
    from core.deep.robust import _redundant, cone_residual, material_cores, representative_endmembers, separate_cores

    E, y, _ = _variability_scene(0.05)
    X = y.reshape(y.shape[0], -1).T.astype(np.float64)
    k = len(X) // 9
    start = representative_endmembers(np.stack([E[0], E[1], 0.3 * (E[0] + E[1])]), X, k)
    assert _redundant(start, X, material_cores(start, X, k)) == [2]
    got, replaced = separate_cores(start, X, k)
    assert replaced == 1
    assert sorted(match_endmembers(E, got).tolist()) == [0, 1, 2]
    assert sad(E, got[match_endmembers(E, got)]).max() < 0.03
    assert cone_residual(X, got) < 0.2 * cone_residual(X, start)
    assert _redundant(got, X, material_cores(got, X, k)) == []


def test_scale_share_tells_illumination_from_within_material_variability():
    """One scale per pixel explains nearly all of FCLS's misfit on an illuminated scene, and little of
    it when the misfit is within-material variability (which also spreads the NNLS sums)."""
    from core.deep.robust import MIN_SCALE_SHARE, noise_sigma, scale_share

    rng = np.random.default_rng(3)
    E = _endmembers(3, 60, rng)
    A = abundance_field(3, 64, 64, "grf", rng, purity=0.7).reshape(3, -1).T
    sigma = np.full(60, 2e-3)
    lit = (1.0 + 0.15 * rng.standard_normal((len(A), 1))) * (A @ E) + sigma * rng.standard_normal((len(A), 60))
    assert scale_share(lit, E, sigma) > 0.95
    E_var, y, _ = _variability_scene(0.1)  # with the scene's own spectra
    X = y.reshape(y.shape[0], -1).T.astype(np.float64)
    assert scale_share(X, E_var, noise_sigma(X)) < MIN_SCALE_SHARE - 0.1
    # FCLS already at the noise: nothing to explain
    assert scale_share(A @ E, E, sigma) == 0.0


def _few_pure_scene(family, snr_db, purity, n_pure, size=48, p=5, b=60, seed=0):
    """A scene of ``p`` endmembers whose pure pixels are few (``n_pure`` per material), at ``snr_db``."""
    rng = np.random.default_rng(seed)
    E = _endmembers(p, b, rng)
    A = abundance_field(p, size, size, family, rng, purity=purity).reshape(p, -1)
    for k in range(p):
        idx = rng.choice(size * size, n_pure, replace=False)
        A[:, idx] = 0.0
        A[k, idx] = 1.0
    Y = E.T @ A
    Y = Y + np.sqrt(np.mean(Y ** 2) / 10 ** (snr_db / 10)) * rng.standard_normal(Y.shape)
    return Y.reshape(b, size, size).astype(np.float32), A, E


def test_robust_start_is_never_worse_than_plain_vca_on_a_clean_scene_with_few_pure_pixels():
    # issue 14: at 40 dB with a handful of pure pixels per material the minimum-volume simplex
    # cut the corners (0.04-0.06 rad from the truth where VCA was 0.003); the scene's own
    # reconstruction residual now sends it back to plain VCA
    from core.deep.robust import robust_endmembers

    Y, A, E = _few_pure_scene("legendre", 40.0, 0.3, 3)
    got = robust_endmembers([(Y, np.ones(Y.shape[1:], bool))], 5, seed=0)
    E_v, _ = vca(Y.reshape(Y.shape[0], -1).T, 5, seed=0)
    s_robust = sad(E, got["E"][match_endmembers(E, got["E"])]).mean()
    s_vca = sad(E, E_v[match_endmembers(E, E_v)]).mean()
    assert s_robust <= s_vca + 0.002 and s_robust < 0.01
    assert got["start_check"]["chosen"] == "plain VCA"


def test_robust_start_keeps_the_minimum_volume_simplex_where_it_helps():
    # the check must not undo the robust start where it works: at 20 dB plain VCA picks noisy pixels
    from core.deep.robust import robust_endmembers

    Y, A, E = _few_pure_scene("grf", 20.0, 0.5, 0)
    got = robust_endmembers([(Y, np.ones(Y.shape[1:], bool))], 5, seed=0)
    E_v, _ = vca(Y.reshape(Y.shape[0], -1).T, 5, seed=0)
    assert got["start_check"]["chosen"] == "minimum volume"
    assert sad(E, got["E"][match_endmembers(E, got["E"])]).mean() < 0.7 * sad(E, E_v[match_endmembers(E, E_v)]).mean()


def test_endmember_draws_are_reproducible_ordered_like_the_estimate_and_spread_with_few_pure_pixels():
    """The block bootstrap re-estimates the endmembers on resampled blocks of the scene: same seed,
    same draws; each draw in the estimate's order; a scene whose materials show a handful of pure
    pixels (the simplex hinges on them) spreads its draws more than one that shows many."""
    from core.deep.robust import bootstrap_blocks, endmember_draws, robust_endmembers

    spread = {}
    for n_pure in (3, 120):
        Y, _, _ = _few_pure_scene("grf", 30.0, 0.3, n_pure)
        cubes = [(Y, np.ones(Y.shape[1:], bool))]
        E = robust_endmembers(cubes, 5, seed=0)["E"]
        d = endmember_draws(cubes, E, k=4, seed=0)
        assert d.shape == (4, *E.shape) and np.all(d >= 0)
        np.testing.assert_array_equal(d, endmember_draws(cubes, E, k=4, seed=0))
        angles = np.array([sad(E, Ek) for Ek in d])  # (k, P): draw j's endmember p against the estimate's p
        assert angles.max() < 0.3, angles
        spread[n_pure] = float(angles.mean())
    assert spread[3] > spread[120], spread
    # a window too small to cut into blocks has no bootstrap
    tiny = np.ones((20, 6, 6), np.float32)
    assert len(bootstrap_blocks([(tiny, np.ones((6, 6), bool))])) == 1
    assert endmember_draws([(tiny, np.ones((6, 6), bool))], np.ones((2, 20))) is None
