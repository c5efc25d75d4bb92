"""The deep engine end to end on small scenes: accuracy vs the classical
pipeline, tiled = untiled, checkpoints (round trip, refusals), uncertainty, CUDA."""

import json
import os

import numpy as np
import pytest
import rasterio
import torch

from core.classical.metrics import armse, match_endmembers
from core.cli import main
from core.deep.checkpoint import load_checkpoint
from core.errors import UnmixError

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    out = tmp_path_factory.mktemp("engine_scene")
    assert main(["synth", "--out", str(out), "--height", "32", "--width", "32", "--endmembers", "3",
                 "--snr", "25", "--purity", "0.6", "--seed", "11"]) == 0
    # keep 40 bands (every 5th of the AVIRIS 224) for speed: a 32×32×40 scene
    from core.io.raster import read_cube, read_info, write_raster

    cube, _, info = read_cube(str(out / "scene.tif"))
    idx = np.linspace(0, cube.shape[0] - 1, 40).astype(int)
    write_raster(str(out / "scene40.tif"), cube[idx], like=info, wavelengths_nm=info.wavelengths_nm[idx])
    E = np.loadtxt(out / "truth_endmembers.csv", delimiter=",", skiprows=1)[:, 1:].T[:, idx]
    A = read_cube(str(out / "truth_abundances.tif"))[0]
    assert read_info(str(out / "scene40.tif")).count == 40
    return out, A, E


@pytest.fixture(scope="module")
def trained(scene, tmp_path_factory):
    out, _, _ = scene
    model = tmp_path_factory.mktemp("model") / "model.pt"
    assert main(["train", str(out / "scene40.tif"), "-p", "3", "--out", str(model), "--quality", "fast",
                 "-q"]) == 0
    return model


def _score(A_true, A_est, E_true, E_est):
    perm = match_endmembers(E_true, E_est)
    P = A_true.shape[0]
    return armse(A_true.reshape(P, -1).T, A_est[perm].reshape(P, -1).T)


def _read(path):
    with rasterio.open(path) as r:
        return r.read(), r.descriptions


def _endmembers(path):
    return np.loadtxt(path, delimiter=",", skiprows=1)[:, 1:].T


def test_full_engine_beats_vca_fcls(scene, tmp_path):
    out, A, E = scene
    scores = {}
    for method in ("vca-fcls", "full"):
        res = tmp_path / method
        assert main(["unmix", str(out / "scene40.tif"), "-p", "3", "--out", str(res), "--method", method,
                     "--quality", "fast", "-q"]) == 0
        A_est, names = _read(res / "abundances.tif")
        assert np.allclose(A_est.sum(0), 1, atol=1e-4) and A_est.min() >= 0
        scores[method] = _score(A, A_est, E, _endmembers(res / "endmembers.csv"))
    report = json.load(open(tmp_path / "full" / "report.json"))
    assert report["method"] == "full" and "fitting_s" in report["timings_s"]
    sure = report["self_validation"]["scene_sure"]  # the scene gate ran and recorded its evidence
    assert sure["prior"] is not None and sure["use_correction"] == report["self_validation"]["use_correction"]
    # mixtures of 3 fixed spectra: no energy outside their subspace beyond noise, no variability branch
    assert report["mixing_model"] == "linear" and 0.8 < report["model_excess"] < 1.2
    # the abundance sums spread no more than noise makes them: the scale's share is not even asked
    assert report["scale_ratio"] < 2.0 and report["scale_share"] is None
    assert scores["full"] < scores["vca-fcls"], scores


def test_apply_checkpoint_and_tiled_equals_untiled(scene, trained, tmp_path):
    from core.deep.run import engine_from_checkpoint
    from core.io.raster import RasterReader, RasterWriter, read_cube
    from core.run.tiling import process_tiled

    out, A, E = scene
    res = tmp_path / "applied"
    assert main(["apply", str(out / "scene40.tif"), "--model", str(trained), "--out", str(res), "-q"]) == 0
    A_applied, _ = _read(res / "abundances.tif")
    assert A_applied.shape == A.shape
    cube, valid, _ = read_cube(str(out / "scene40.tif"))
    eng = engine_from_checkpoint(str(trained), 40, None, "cpu")
    full = eng.abundances(cube, valid)
    np.testing.assert_allclose(A_applied, full, atol=2e-3)  # one tile = the whole scene
    with RasterReader(str(out / "scene40.tif")) as r, RasterWriter(str(tmp_path / "t.tif"), 32, 32, 3) as w:
        process_tiled(r, lambda c, v: eng.abundances(c, v), 3, [(w, 0, 3)], tile=20, overlap=12, margin=4)
    tiled = read_cube(str(tmp_path / "t.tif"))[0]
    hybrid_full = eng.abundances(cube, valid, stages="hybrid")
    with RasterReader(str(out / "scene40.tif")) as r, RasterWriter(str(tmp_path / "h.tif"), 32, 32, 3) as w:
        process_tiled(r, lambda c, v: eng.abundances(c, v, stages="hybrid"), 3, [(w, 0, 3)], tile=20, overlap=12,
                      margin=4)
    hybrid_tiled = read_cube(str(tmp_path / "h.tif"))[0]
    # HybridSTU is local (receptive field 4 < overlap): tiling changes nothing but float noise
    assert np.abs(hybrid_tiled - hybrid_full).max() < 1e-4
    # the UNet's GroupNorm sees the whole tile, so refinement differs slightly between tilings
    assert np.abs(tiled - full).mean() < 0.01 and np.abs(tiled - full).max() < 0.1


def test_checkpoint_round_trip_and_band_mismatch(scene, trained, tmp_path, capsys):
    out, _, _ = scene
    ck = load_checkpoint(str(trained))
    assert ck["meta"]["bands"] == 40 and len(ck["meta"]["names"]) == 3 and ck["E"].shape == (3, 40)
    assert ck["meta"]["schema_version"] == 1
    rc = main(["apply", str(out / "scene.tif"), "--model", str(trained), "--out", str(tmp_path / "x"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and "trained on 40 bands" in err
    assert not (tmp_path / "x" / "abundances.tif").exists()


def test_pickle_payload_checkpoint_is_refused_without_running(tmp_path, scene, capsys):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pt"
    torch.save({"schema": "diffunmix-checkpoint", "schema_version": 1, "x": Payload()}, evil)
    assert not marker.exists()
    with pytest.raises(UnmixError, match="not a valid DiffUnmix checkpoint"):
        load_checkpoint(str(evil))
    out, _, _ = scene
    rc = main(["apply", str(out / "scene40.tif"), "--model", str(evil), "--out", str(tmp_path / "o"), "-q"])
    assert rc == 2 and not marker.exists()
    for content in (b"", b"garbage" * 10):
        bad = tmp_path / "bad.pt"
        bad.write_bytes(content)
        with pytest.raises(UnmixError):
            load_checkpoint(str(bad))
    wrong = tmp_path / "wrong.pt"
    torch.save({"schema": "diffunmix-checkpoint", "schema_version": 99}, wrong)
    with pytest.raises(UnmixError, match="version 99"):
        load_checkpoint(str(wrong))


def test_uncertainty_and_residual_outputs(scene, trained, tmp_path):
    out, _, _ = scene
    res = tmp_path / "u"
    assert main(["apply", str(out / "scene40.tif"), "--model", str(trained), "--out", str(res),
                 "--uncertainty", "3", "--residual", "-q"]) == 0
    U, names = _read(res / "uncertainty.tif")
    assert U.shape == (3, 32, 32) and np.all(U >= 0) and U.max() > 0
    assert all(n.endswith(" std") for n in names)
    R, _ = _read(res / "residual.tif")
    assert R.shape == (1, 32, 32) and np.all(R >= 0)


def test_uncertainty_holds_the_endmember_draws_spread(scene, trained):
    """train keeps the block bootstrap's endmember draws in the model; the uncertainty adds their
    spread to the posterior draws' (law of total variance), so it is never smaller than theirs."""
    from core.deep.run import _posterior, engine_from_checkpoint, tile_generator
    from core.io.raster import read_cube

    out, _, _ = scene
    meta = load_checkpoint(str(trained))["meta"]
    draws = np.asarray(meta["endmember_draws"])
    assert draws.ndim == 3 and draws.shape[0] >= 2 and draws.shape[1:] == (3, 40)
    cube, valid, info = read_cube(str(out / "scene40.tif"))
    eng = engine_from_checkpoint(str(trained), 40, info.wavelengths_nm, "cpu")
    np.testing.assert_allclose(eng.E_draws, draws)
    m, sd = _posterior(eng, cube, valid, 3, tile_generator(0, (0, 0)))
    eng.E_draws = None
    m0, sd0 = _posterior(eng, cube, valid, 3, tile_generator(0, (0, 0)))
    np.testing.assert_allclose(m, m0, atol=1e-6)  # the estimate does not move
    assert np.all(sd >= sd0 - 1e-7) and sd.mean() > sd0.mean()


def test_cpu_fit_is_deterministic_for_a_seed(scene):
    from core.deep.engine import EngineConfig, fit_engine
    from core.deep.training import FitConfig
    from core.io.raster import read_cube

    out, _, E = scene
    cube, valid, _ = read_cube(str(out / "scene40.tif"))
    cfg = EngineConfig.preset("fast")
    cfg.fit = {**FitConfig().to_dict(), "hybrid_iters": 15, "unet2d_iters": 10, "unet1d_iters": 5, "pool": 32,
                "sample_pool": 64}
    runs = []
    for _ in range(2):
        eng = fit_engine(cube.reshape(40, -1).T, E * 1.05, ["a", "b", "c"], np.full(40, 0.01), cfg,
                         torch.device("cpu"), seed=5)
        runs.append(eng.abundances(cube, valid, generator=torch.Generator().manual_seed(1)))
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-6)


def test_scene_gate_switches_off_a_stage_that_hurts_the_scene(scene):
    """A HybridSTU whose correction is sabotaged passes for 'on' until the SURE gate sees the scene."""
    from core.deep.engine import SURE_MAX_MISFIT, EngineConfig, fit_engine, scene_validate
    from core.deep.training import FitConfig
    from core.io.raster import read_cube

    out, A, E = scene
    cube, valid, _ = read_cube(str(out / "scene40.tif"))
    cfg = EngineConfig.preset("fast")
    cfg.fit = {**FitConfig().to_dict(), "hybrid_iters": 15, "unet2d_iters": 10, "unet1d_iters": 5, "pool": 32,
                "sample_pool": 64}
    sigma = np.full(40, 0.01)
    eng = fit_engine(cube.reshape(40, -1).T, E, ["a", "b", "c"], sigma, cfg, torch.device("cpu"), seed=5)
    with torch.no_grad():  # a correction that scrambles the abundances
        eng.hybrid.net.head.weight.normal_(0.0, 2.0)
    eng.hybrid.correction.fill_(1.0)
    eng.refine_cfg.steps_2d = 0
    res = scene_validate(eng, [(cube, valid)], sigma, seed=0)
    assert res["hybrid"] > res["prior"] and not res["use_correction"]
    assert float(eng.hybrid.correction) == 0.0
    # even its best blend with the prior does not clear the margin (it is at most a sliver of the output)
    assert res["weights"]["hybrid"] < 0.2 and res["blended"]["hybrid"] >= 0.98 * res["prior"]
    prior = eng.abundances(cube, valid)  # what the engine now outputs is the prior
    assert _score(A, prior, E, E) < 0.05
    # a prior that misfits the scene far beyond noise (model error): the SURE stands aside too
    eng.refine_cfg.likelihood_scale = SURE_MAX_MISFIT + 0.5
    eng.hybrid.correction.fill_(1.0)
    assert scene_validate(eng, [(cube, valid)], sigma) is None and float(eng.hybrid.correction) == 1.0
    eng.refine_cfg.likelihood_scale = 1.0
    eng.hybrid.scaled.fill_(1.0)  # the scaled model: the synthetic gate decides, the scene gate stands aside
    assert scene_validate(eng, [(cube, valid)], sigma) is None


def test_learned_stages_run_at_their_blend_weight(scene):
    """A gate's weight w makes a stage's output the convex blend ``before + w (stage − before)``:
    HybridSTU's with the prior, the sampler's with HybridSTU's; both stay on the simplex."""
    from core.deep.engine import Engine, EngineConfig
    from core.io.raster import read_cube

    out, A, E = scene
    cube, valid, _ = read_cube(str(out / "scene40.tif"))
    eng = Engine(40, E, ["a", "b", "c"], EngineConfig.preset("fast"), float(E.mean()))
    eng.set_prior("linear", np.full(40, 0.01))
    with torch.no_grad():  # a correction that moves the abundances
        eng.hybrid.net.head.weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(0))
        eng.unet2d.net.out_conv.weight.normal_(0.0, 0.01, generator=torch.Generator().manual_seed(0))
    rc = eng.refine_cfg
    rc.steps_2d, rc.start_2d = 2, 200

    def hybrid(weight):
        eng.hybrid.correction.fill_(weight)
        return eng.abundances(cube, valid, stages="hybrid")

    prior, net, half = hybrid(0.0), hybrid(1.0), hybrid(0.3)
    assert np.abs(net - prior).max() > 0.05
    np.testing.assert_allclose(half, prior + 0.3 * (net - prior), atol=1e-5)
    assert np.allclose(half.sum(axis=0), 1.0, atol=1e-5) and half.min() >= 0
    draws = eng.posterior_draws(cube, valid, 1, generator=torch.Generator().manual_seed(3))[0]
    rc.blend_2d = 0.25
    full = eng.abundances(cube, valid, generator=torch.Generator().manual_seed(3))
    np.testing.assert_allclose(full, half + 0.25 * (draws - half), atol=1e-5)
    rc.steps_2d = 0  # the sampler off: HybridSTU's estimate, whatever the weight says
    np.testing.assert_allclose(eng.abundances(cube, valid), half, atol=1e-6)


def test_posterior_draws_follow_the_data_and_tiles_get_their_own_streams(scene):
    """The 2D diffusion as a posterior sampler: draws on the simplex, different from each other,
    their mean pulled toward the data by the noise-weighted likelihood; tile streams independent."""
    from core.deep.engine import Engine, EngineConfig
    from core.deep.run import tile_generator
    from core.io.raster import read_cube

    out, A, E = scene
    cube, valid, _ = read_cube(str(out / "scene40.tif"))
    sigma = np.full(40, float(np.median(np.abs(np.diff(cube, axis=2)))) / 1.4)
    eng = Engine(40, E, ["a", "b", "c"], EngineConfig.preset("fast"), float(E.mean()))
    eng.set_prior("linear", sigma)
    eng.hybrid.correction.fill_(0.0)
    # a prior far from the data: its endmembers swapped (the UNet's residual starts at zero, so the
    # sampler's network keeps that prior; only the likelihood, with the right endmembers, can correct it)
    eng.hybrid.E.copy_(torch.as_tensor(E[[1, 2, 0]] / eng.scale, dtype=torch.float32))
    eng.refine_cfg.steps_2d, eng.refine_cfg.start_2d = 4, 200
    with torch.no_grad():  # a network whose estimate depends on x_t (an untrained one returns its condition)
        eng.unet2d.net.out_conv.weight.normal_(0.0, 0.01, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    eng.refine_cfg.dc_weight = 0.0
    d0 = eng.posterior_draws(cube, valid, 4, generator=g)
    eng.refine_cfg.dc_weight = 1.0
    d1 = eng.posterior_draws(cube, valid, 4, generator=g)
    assert d1.shape == (4, 3, 32, 32) and np.allclose(d1.sum(axis=1), 1.0, atol=1e-5) and d1.min() >= 0
    assert np.abs(d0[0] - d0[1]).max() > 1e-4  # each draw its own noise (the likelihood can pin them)
    assert _score(A, d1.mean(axis=0), E, E) < 0.8 * _score(A, d0.mean(axis=0), E, E)  # the likelihood helps
    a, b = tile_generator(0, (0, 0)), tile_generator(0, (0, 128))  # two tiles of one run
    assert torch.rand(3, generator=a).tolist() != torch.rand(3, generator=b).tolist()
    assert torch.rand(3, generator=tile_generator(0, (0, 128))).tolist() == torch.rand(
        3, generator=tile_generator(0, (0, 128))).tolist()


def test_likelihood_is_tempered_by_the_prior_misfit_beyond_noise(scene):
    """model_misfit: ≈ 1 when the endmembers explain the scene up to noise, larger when they do not."""
    from core.deep.engine import Engine, EngineConfig, model_misfit
    from core.deep.robust import noise_sigma
    from core.io.raster import read_cube

    out, A, E = scene
    cube, valid, _ = read_cube(str(out / "scene40.tif"))
    sigma = noise_sigma(cube.reshape(40, -1).T.astype(np.float64))
    eng = Engine(40, E, ["a", "b", "c"], EngineConfig.preset("fast"), float(E.mean()))
    eng.set_prior("linear", sigma)
    right = model_misfit(eng, [(cube, valid)])
    eng.E = E * np.linspace(0.6, 1.4, 40)[None, :]  # endmembers off by a spectral tilt
    wrong = model_misfit(eng, [(cube, valid)])
    assert 1.0 <= right < 1.2 and wrong > 1.4 * right, (right, wrong)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_matches_cpu(scene, trained):
    from core.deep.run import engine_from_checkpoint
    from core.io.raster import read_cube

    out, _, _ = scene
    cube, valid, _ = read_cube(str(out / "scene40.tif"))
    a_cpu = engine_from_checkpoint(str(trained), 40, None, "cpu").abundances(cube, valid)
    a_gpu = engine_from_checkpoint(str(trained), 40, None, "cuda").abundances(cube, valid)
    assert np.abs(a_cpu - a_gpu).max() < 1e-2


def test_cuda_request_without_gpu_is_bad_input(scene, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    out, _, _ = scene
    rc = main(["unmix", str(out / "scene40.tif"), "-p", "3", "--out", str(tmp_path / "o"), "--device", "cuda",
               "-q"])
    assert rc == 2 and "CUDA" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o" / "abundances.tif")
