"""Noise schedule, DDIM sampler, DDPM loss and simplex constraints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.deep.diffusion import (
    DDIMSampler,
    NoiseSchedule,
    consistency_transform,
    ddpm_loss,
    project_simplex,
    simplex_transform,
)
from core.deep.models import ResUNet2D, ResUNet2DConfig
from core.errors import Cancelled
from core.progress import Progress

torch.set_num_threads(min(2, torch.get_num_threads()))


def _np_alphas_cumprod(t_max: int = 1000) -> np.ndarray:
    return np.cumprod(1.0 - np.linspace(1e-4, 2e-2, t_max))


# --- schedule ------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("t_max", [1000, 100])
def test_schedule_monotone_and_ends_noisy(kind, t_max):
    s = NoiseSchedule(num_steps=t_max, kind=kind)
    ac = s.alphas_cumprod.numpy()
    assert ac.dtype == np.float64 and ac.shape == (t_max,)
    assert np.all(np.diff(ac) < 0)
    assert ac[0] > 0.97 and ac[-1] < 1e-3
    assert np.all((s.betas.numpy() > 0) & (s.betas.numpy() < 1))


def test_linear_schedule_matches_ddpm_and_round_trips():
    s = NoiseSchedule()
    np.testing.assert_allclose(s.alphas_cumprod.numpy(), _np_alphas_cumprod(), rtol=1e-12)
    d = json.loads(json.dumps(s.to_dict()))
    assert NoiseSchedule.from_dict(d) == s
    with pytest.raises(ValueError):
        NoiseSchedule.from_dict({**d, "bogus": 1})
    with pytest.raises(ValueError):
        NoiseSchedule(kind="quadratic")


def test_posterior_variance_is_ddpm_eq7():
    s = NoiseSchedule()
    ac = _np_alphas_cumprod()
    betas = np.linspace(1e-4, 2e-2, 1000)
    for t in (1, 10, 500, 999):
        ref = (1 - ac[t - 1]) / (1 - ac[t]) * betas[t]
        assert float(s.posterior_variance(t)) == pytest.approx(ref, rel=1e-10)
    assert float(s.posterior_variance(0)) == 0.0


def test_q_sample_statistics():
    s = NoiseSchedule()
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([0.8, -0.3, 0.0])
    t = 400
    n = 20000
    noise = torch.randn(n, 3, generator=g)
    xt = s.add_noise(x0.expand(n, 3), noise, torch.full((n,), t))
    ab = float(s.alphas_cumprod[t])
    np.testing.assert_allclose(xt.mean(0).numpy(), np.sqrt(ab) * x0.numpy(), atol=0.03)
    np.testing.assert_allclose(xt.var(0).numpy(), np.full(3, 1 - ab), rtol=0.05)


def test_parameterisation_round_trips():
    s = NoiseSchedule(kind="cosine")
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(4, 2, 5, generator=g), torch.randn(4, 2, 5, generator=g)
    t = torch.tensor([0, 10, 300, 999])
    xt = s.add_noise(x0, eps, t)
    torch.testing.assert_close(s.predict_x0(xt, eps, t), x0, atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(s.predict_eps(xt, x0, t), eps, atol=1e-3, rtol=1e-3)
    v = s.v_target(x0, eps, t)
    torch.testing.assert_close(s.x0_from_v(xt, v, t), x0, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s.eps_from_v(xt, v, t), eps, atol=1e-5, rtol=1e-5)


# --- DDIM ----------------------------------------------------------------------

def _ddim_by_hand(x, eps, ab_t, ab_prev, eta, z):
    x0 = (x - np.sqrt(1 - ab_t) * eps) / np.sqrt(ab_t)
    sigma = eta * np.sqrt((1 - ab_prev) / (1 - ab_t)) * np.sqrt(1 - ab_t / ab_prev)
    return np.sqrt(ab_prev) * x0 + np.sqrt(1 - ab_prev - sigma**2) * eps + sigma * z, x0


@pytest.mark.parametrize("eta", [0.0, 0.5])
@pytest.mark.parametrize("t,t_prev", [(999, 749), (300, 100), (40, -1)])
def test_ddim_step_closed_form(eta, t, t_prev):
    sampler = DDIMSampler(NoiseSchedule())
    g = torch.Generator().manual_seed(3)
    x, eps = torch.randn(2, 3, 4, 5, generator=g), torch.randn(2, 3, 4, 5, generator=g)
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(7))
    x_prev, x0 = sampler.step(eps, t, t_prev, x, eta=eta, generator=torch.Generator().manual_seed(7))
    ac = _np_alphas_cumprod()
    ab_prev = 1.0 if t_prev < 0 else ac[t_prev]
    ref, ref_x0 = _ddim_by_hand(x.double().numpy(), eps.double().numpy(), ac[t], ab_prev, eta, z.double().numpy())
    np.testing.assert_allclose(x_prev.numpy(), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(x0.numpy(), ref_x0, rtol=1e-4, atol=1e-4)


def test_eta_one_gives_ddpm_posterior_variance():
    s = NoiseSchedule()
    sampler = DDIMSampler(s)
    for t in (1, 5, 250, 999):
        assert sampler.sigma(t, t - 1, 1.0) ** 2 == pytest.approx(float(s.posterior_variance(t)), rel=1e-9)
    assert sampler.sigma(40, -1, 1.0) == 0.0


def test_step_x0_transform_rederives_eps():
    sampler = DDIMSampler(NoiseSchedule())
    g = torch.Generator().manual_seed(0)
    x, eps = torch.randn(3, 4, 2, 2, generator=g), torch.randn(3, 4, 2, 2, generator=g)
    x_prev, x0 = sampler.step(eps, 500, 250, x, x0_transform=simplex_transform(1))
    torch.testing.assert_close(x0.sum(1), torch.ones(3, 2, 2))
    ac = _np_alphas_cumprod()
    eps2 = (x - np.sqrt(ac[500]) * x0) / np.sqrt(1 - ac[500])
    ref = np.sqrt(ac[250]) * x0 + np.sqrt(1 - ac[250]) * eps2
    torch.testing.assert_close(x_prev, ref.float(), atol=1e-5, rtol=1e-5)


def test_set_timesteps():
    sampler = DDIMSampler(NoiseSchedule())
    assert sampler.set_timesteps(4) == [999, 749, 499, 249]
    steps = sampler.set_timesteps(5, start_step=299)
    assert steps[0] == 299 and steps == sorted(steps, reverse=True) and len(steps) == 5
    assert sampler.set_timesteps(10, start_step=3) == [3, 2, 1, 0]
    assert sampler.set_timesteps(1, start_step=200) == [200]
    for bad in (-1, 1000):
        with pytest.raises(ValueError):
            sampler.set_timesteps(3, start_step=bad)


def _oracle(schedule, x0, prediction="eps"):
    def model(x_t, t, cond):
        ab = schedule.alpha_bar(t).float().reshape(-1, *([1] * (x_t.ndim - 1)))
        eps = (x_t - ab.sqrt() * x0) / (1 - ab).sqrt()
        return eps if prediction == "eps" else ab.sqrt() * eps - (1 - ab).sqrt() * x0
    return model


@pytest.mark.parametrize("eta,start,prediction", [(0.0, 400, "eps"), (0.5, 400, "eps"),
                                                  (0.0, None, "eps"), (1.0, 600, "v")])
def test_refine_with_oracle_recovers_x0(eta, start, prediction):
    s = NoiseSchedule()
    sampler = DDIMSampler(s)
    g = torch.Generator().manual_seed(0)
    x0 = torch.softmax(torch.randn(2, 3, 5, 4, generator=g), dim=1)
    x_init = project_simplex(x0 + 0.2 * torch.randn(x0.shape, generator=g), dim=1)
    out = sampler.refine(_oracle(s, x0, prediction), x_init, None, n_steps=4, start_step=start, eta=eta,
                         generator=g, x0_transform=simplex_transform(1), prediction=prediction)
    torch.testing.assert_close(out, x0, atol=1e-4, rtol=1e-4)


def test_refine_is_reproducible_and_cancellable():
    s = NoiseSchedule()
    sampler = DDIMSampler(s)
    x_init = torch.full((1, 2, 3, 3), 0.5)

    def model(x_t, t, cond):
        return 0.1 * x_t

    a = sampler.refine(model, x_init, None, 3, 500, eta=0.5, generator=torch.Generator().manual_seed(5))
    b = sampler.refine(model, x_init, None, 3, 500, eta=0.5, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, b, rtol=0, atol=0)

    class Stop(Progress):
        def __init__(self):
            self.calls = 0

        def is_canceled(self):
            self.calls += 1
            return self.calls > 2

    with pytest.raises(Cancelled):
        sampler.refine(model, x_init, None, 5, 500, progress=Stop())


# --- DDPM loss -------------------------------------------------------------------

def test_ddpm_loss_decreases_on_fixed_batch():
    torch.manual_seed(0)
    s = NoiseSchedule()
    net = ResUNet2D(3, 3, ResUNet2DConfig(base=8, time_dim=16, groups=4))
    g = torch.Generator().manual_seed(0)
    x0 = torch.softmax(torch.randn(4, 3, 8, 8, generator=g), 1)
    cond = x0 + 0.1 * torch.randn(x0.shape, generator=g)
    t = torch.tensor([50, 200, 500, 900])
    noise = torch.randn(x0.shape, generator=g)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = ddpm_loss(net, s, x0, cond, t=t, noise=noise)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    # random t / noise path and v-prediction run and are reproducible with a generator
    la = ddpm_loss(net, s, x0, cond, generator=torch.Generator().manual_seed(1), prediction="v")
    lb = ddpm_loss(net, s, x0, cond, generator=torch.Generator().manual_seed(1), prediction="v")
    assert torch.isfinite(la) and la.item() == lb.item()


def test_ddpm_loss_x0_target_and_t_max():
    # the x0 form: the loss of a model that returns the clean batch is zero, of one returning x_t is not;
    # t_max keeps every sampled step below it
    s = NoiseSchedule()
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 2, 4, 4, generator=g)
    seen = []

    def oracle(x_t, t, cond):
        seen.append(t)
        return x0

    assert ddpm_loss(oracle, s, x0, None, generator=g, prediction="x0", t_max=20).item() == 0.0
    assert int(seen[-1].max()) < 20
    assert ddpm_loss(lambda x_t, t, c: x_t, s, x0, None, generator=g, prediction="x0").item() > 0.01
    with pytest.raises(ValueError, match="x0"):
        ddpm_loss(oracle, s, x0, None, prediction="score")


# --- constraints -----------------------------------------------------------------

def _project_bisect(v: np.ndarray) -> np.ndarray:
    lo, hi = v.min() - 1.0, v.max()
    for _ in range(200):  # Σ max(v − θ, 0) = 1 is monotone in θ
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.maximum(v - mid, 0).sum() > 1 else (lo, mid)
    return np.maximum(v - 0.5 * (lo + hi), 0)


def test_project_simplex_brute_force():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 5, generator=g, dtype=torch.float64) * 2
    a = project_simplex(x, dim=1)
    assert (a >= 0).all()
    torch.testing.assert_close(a.sum(1), torch.ones(50, dtype=torch.float64))
    rng = np.random.default_rng(0)
    pts = rng.dirichlet(np.ones(5) * 0.5, size=4000)
    for xi, ai in zip(x.numpy(), a.numpy()):
        np.testing.assert_allclose(ai, _project_bisect(xi), atol=1e-9)
        d_best = np.linalg.norm(xi - ai)
        assert d_best <= np.linalg.norm(xi - pts, axis=1).min() + 1e-12
    on = torch.softmax(torch.randn(7, 4, generator=g), 1)
    torch.testing.assert_close(project_simplex(on, dim=1), on)
    cube = torch.randn(2, 4, 3, 5, generator=g)
    torch.testing.assert_close(project_simplex(cube, dim=1),
                               project_simplex(cube.movedim(1, -1), dim=-1).movedim(-1, 1))


def test_consistency_transform_moves_towards_truth():
    g = torch.Generator().manual_seed(0)
    e = torch.rand(3, 20, generator=g)
    a_true = torch.softmax(2 * torch.randn(1, 3, 4, 4, generator=g), 1)
    y = torch.einsum("nphw,pb->nbhw", a_true, e)
    a0 = project_simplex(a_true + 0.3 * torch.randn(a_true.shape, generator=g), 1)
    a1 = consistency_transform(y, e, n_iter=200)(a0)
    assert torch.allclose(a1.sum(1), torch.ones(1, 4, 4), atol=1e-5) and (a1 >= 0).all()
    assert (a1 - a_true).abs().max() < 0.5 * (a0 - a_true).abs().max()
