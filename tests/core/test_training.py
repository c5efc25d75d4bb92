"""Training data of the networks: the patch pool keeps each patch with its own prior."""

import numpy as np
import torch

from core.deep.engine import PriorHybrid
from core.deep.models import HybridSTUConfig
from core.deep.training import FitConfig, PatchGenerator, PatchPool


def _prior_model(P=3, B=20, seed=0):
    rng = np.random.default_rng(seed)
    E = rng.uniform(0.2, 1.0, (P, B)).astype(np.float32)
    model = PriorHybrid(B, P, HybridSTUConfig())
    model.set_endmembers(E)
    model.noise.fill_(0.01)  # the bilateral filter on
    return model, E


def test_patch_pool_keeps_each_patch_with_its_prior_under_the_symmetries():
    # the pool computes the least-squares prior once and re-uses each patch rotated or mirrored: the
    # prior of the transformed patch must be the transformed prior (else the networks learn from
    # mismatched pairs), and abundances, spectra and cube must stay together
    model, E = _prior_model()
    gen = PatchGenerator(E, np.full(E.shape[1], 0.01), FitConfig(patch=12, pool=16), seed=1)
    pool = PatchPool(gen.batch, 24, 8, prior=model.prior, seed=2)
    assert len(pool) == 24
    Y, A, Ev, prior = pool.sample(40, ("Y", "A", "E", "prior"), "cpu")
    assert Y.shape == (40, 20, 12, 12) and A.shape == (40, 3, 12, 12) and Ev.shape == (40, 3, 20)
    with torch.no_grad():
        np.testing.assert_allclose(prior.numpy(), model.prior(Y).numpy(), atol=1e-5)
    # noise-free part of the patch = its abundances mixed by its own spectra (same symmetry applied)
    clean = torch.einsum("npb,nphw->nbhw", Ev, A)
    assert float((Y - clean).pow(2).mean().sqrt()) < 0.03
    # every symmetry is drawn, and patches differ from their stored orientation
    stored = pool.fields["Y"]
    same = [any(torch.equal(y, s) for s in stored) for y in Y]
    assert 0 < sum(same) < 40


def test_patch_pool_draws_are_reproducible_for_a_seed():
    model, E = _prior_model()
    out = []
    for _ in range(2):
        gen = PatchGenerator(E, np.full(E.shape[1], 0.01), FitConfig(patch=12, pool=16), seed=1)
        pool = PatchPool(gen.batch, 16, 8, prior=model.prior, seed=2)
        out.append(pool.sample(5, ("Y", "prior"), "cpu"))
    for a, b in zip(*out):
        assert torch.equal(a, b)


def _joint_scene(seed=3, P=3, B=30, H=40, W=40, snr_sigma=0.004):
    from core.classical.synth import abundance_field

    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, B)
    E = np.stack([0.3 + 0.25 * np.sin(2 * np.pi * (x * (k + 1) + 0.2 * k)) + 0.15 * k for k in range(P)])
    A = abundance_field(P, H, W, "grf", rng, purity=0.8)
    Y = np.einsum("pb,phw->bhw", E, A) + snr_sigma * rng.standard_normal((B, H, W))
    return Y.astype(np.float32), A, E, np.full(B, snr_sigma)


def _engine(E0, sigma):
    from core.deep.engine import Engine, EngineConfig

    eng = Engine(E0.shape[1], E0, ["a", "b", "c"], EngineConfig.preset("fast"), float(E0.mean()), "cpu")
    eng.set_prior("linear", sigma)
    eng.refine_cfg.steps_2d = 0  # the prior alone: what the stage re-estimates from
    return eng


def _shrinking_start(cubes, p, seed):
    """VCA's endmembers pulled 20 % towards their mean (a simplex inside the data, as a volume penalty
    leaves it)."""
    from core.classical.endmembers import vca

    E = np.clip(vca(np.concatenate([c[:, v].T for c, v in cubes]), p, seed=seed)[0], 0, None)
    return 0.8 * E + 0.2 * E.mean(axis=0, keepdims=True)


def _sad_to(E, X):
    from core.classical.metrics import match_endmembers, sad

    return np.mean(sad(E, X[match_endmembers(E, X)]))


def _shrunk_start_scene():
    """(true E, sigma, windows, the shrunk start on them, an engine with it)."""
    Y, A, E, sigma = _joint_scene()
    cubes = [(Y, np.ones(Y.shape[1:], bool))]
    E0 = _shrinking_start(cubes, 3, 0)
    return E, sigma, cubes, E0, _engine(E0, sigma)


def test_semi_blind_rounds_run_where_the_simulation_shows_they_help():
    # with the shrunk start, on the simulation of the scene the rounds bring the abundances closer to
    # their truth, so they run on the scene, and pull its endmembers back
    from core.deep.joint import JOINT_MARGIN, joint_endmembers

    E, sigma, cubes, E0, eng = _shrunk_start_scene()
    rec = joint_endmembers(eng, cubes, sigma, rounds=3, start=_shrinking_start, correct_bias=False)
    r = rec["risks"]
    assert len(r) == 4 and rec["kept"] >= 1 and r[rec["kept"]] == min(r[1:]) < (1 - JOINT_MARGIN) * r[0]
    assert not rec["bias_corrected"] and rec["bias_risks"] == []
    assert _sad_to(E, eng.E) < 0.5 * _sad_to(E, E0)


def test_start_bias_is_corrected_where_it_stands_out_of_its_noise():
    # the same shrunk start: on simulations of the scene the start shrinks the simplex too, and the
    # indirect-inference iteration finds the endmembers from which it lands where it landed on the scene;
    # that correction is far larger than its noise, so it is kept
    from core.deep.joint import BIAS_NOISE_SHARE, joint_endmembers

    E, sigma, cubes, E0, eng = _shrunk_start_scene()
    rec = joint_endmembers(eng, cubes, sigma, rounds=1, start=_shrinking_start)
    assert rec["bias_corrected"] and rec["bias_noise"] < 0.1 * BIAS_NOISE_SHARE
    plain, corrected = rec["bias_risks"]  # on the rounds' simulation the correction helps as well
    assert corrected < 0.5 * plain and rec["risks"][0] == corrected
    assert _sad_to(E, eng.E) < 0.2 * _sad_to(E, E0)
    # where the model misfits (the residual bootstrap), the bias is left alone
    eng = _engine(E0, sigma)
    rec = joint_endmembers(eng, cubes, sigma, rounds=1, start=_shrinking_start, model_error=True)
    assert not rec["bias_corrected"] and rec["bias_risks"] == [] and rec["bias_noise"] is None


def test_an_unbiased_start_is_left_alone():
    # the robust start on a scene with pure pixels of every material is nearly unbiased (SAD 0.002 rad):
    # the correction it yields is mostly its own noise, so it is dropped and the endmembers stay
    from core.deep.joint import BIAS_NOISE_SHARE, joint_endmembers, robust_start

    Y, A, E, sigma = _joint_scene()
    cubes = [(Y, np.ones(Y.shape[1:], bool))]
    E0 = robust_start(cubes, 3, 0)
    assert _sad_to(E, E0) < 0.005
    eng = _engine(E0, sigma)
    rec = joint_endmembers(eng, cubes, sigma, rounds=0)
    assert not rec["bias_corrected"] and rec["bias_noise"] > 2 * BIAS_NOISE_SHARE and rec["bias_risks"] == []
    assert np.array_equal(eng.E, np.asarray(E0, np.float64))


def test_semi_blind_rounds_follow_the_simulation_and_run_all_when_forced():
    # the engine's own start (the robust endmembers): the bias correction runs if it stands out of its noise,
    # and as many rounds as lowered the simulation's error the most, by the margin, or none;
    # with neither, the endmembers stay exactly as they were; gate off, the correction and every round
    # run without a simulation (the benchmark's forced-on column)
    from core.deep.joint import BIAS_NOISE_SHARE, JOINT_MARGIN, joint_endmembers, robust_start

    Y, A, E, sigma = _joint_scene(seed=4)
    cubes = [(Y, np.ones(Y.shape[1:], bool))]
    E0 = robust_start(cubes, 3, 0)
    for model_error in (False, True):  # Gaussian noise, or the scene's residuals moved between pixels
        gated = _engine(E0, sigma)
        rec = joint_endmembers(gated, cubes, sigma, rounds=2, model_error=model_error)
        r, kept, b = rec["risks"], rec["kept"], rec["bias_risks"]
        assert len(r) == 3 and rec["margin"] == JOINT_MARGIN
        assert (rec["bias_noise"] is None) == model_error
        assert rec["bias_corrected"] == (not model_error and rec["bias_noise"] <= BIAS_NOISE_SHARE)
        assert len(b) == (2 if rec["bias_corrected"] else 0) and (not b or r[0] in b)
        if kept == 0:
            assert min(r[1:]) >= (1 - JOINT_MARGIN) * r[0] or r[-1] >= r[0]
            assert np.array_equal(gated.E, np.asarray(E0, np.float64)) != rec["bias_corrected"]
        else:
            assert r[kept] == min(r[1:]) < (1 - JOINT_MARGIN) * r[0] and r[-1] < r[0]
    forced = _engine(E0, sigma)
    rec = joint_endmembers(forced, cubes, sigma, rounds=2, gate=False)
    assert rec["kept"] == 2 and rec["risks"] == [] and not np.array_equal(forced.E, np.asarray(E0, np.float64))

