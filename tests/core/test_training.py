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


def test_semi_blind_rounds_pull_shrunken_endmembers_back_and_keep_good_ones():
    # endmembers pulled 20 % towards their mean (a simplex inside the data, as a volume penalty
    # leaves it): the rounds re-estimate them from the abundances, the scene's signal SURE drops
    # and the update is kept; endmembers already right are not moved by more than the noise allows
    from core.classical.metrics import sad
    from core.deep.joint import joint_endmembers

    Y, A, E, sigma = _joint_scene()
    cubes = [(Y, np.ones(Y.shape[1:], bool))]
    shrunk = 0.8 * E + 0.2 * E.mean(axis=0, keepdims=True)
    eng = _engine(shrunk, sigma)
    rec = joint_endmembers(eng, cubes, sigma, rounds=3)
    assert rec["kept"] >= 1 and rec["risks"][rec["kept"]] < rec["risks"][0] - rec["margin_abs"]
    assert np.mean(sad(E, eng.E)) < 0.5 * np.mean(sad(E, shrunk))
    assert np.abs(eng.E - E).max() < np.abs(shrunk - E).max() / 2

    good = _engine(E, sigma)
    rec = joint_endmembers(good, cubes, sigma, rounds=3)
    assert np.mean(sad(E, good.E)) < 0.01
    assert rec["risks"][rec["kept"]] <= rec["risks"][0]


def test_semi_blind_round_that_does_not_lower_the_risk_is_dropped():
    # gate off, every round stays (the benchmark's forced-on column); gate on, a round is kept
    # only below the margin, so a run that keeps none leaves the endmembers exactly as they were
    from core.deep.joint import JOINT_MARGIN, joint_endmembers

    Y, A, E, sigma = _joint_scene(seed=4)
    cubes = [(Y, np.ones(Y.shape[1:], bool))]
    forced = _engine(E, sigma)
    rec = joint_endmembers(forced, cubes, sigma, rounds=2, gate=False)
    assert rec["kept"] == 2 and len(rec["risks"]) == 3
    gated = _engine(E, sigma)
    rec = joint_endmembers(gated, cubes, sigma, rounds=2)
    kept = rec["kept"]
    assert rec["margin_abs"] == JOINT_MARGIN * np.mean(sigma ** 2)
    for i in range(1, kept + 1):
        assert rec["risks"][i] < rec["risks"][i - 1] - rec["margin_abs"]
    if kept == 0:
        assert np.array_equal(gated.E, np.asarray(E, np.float64))

