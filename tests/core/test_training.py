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
