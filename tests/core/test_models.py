"""Networks (HybridSTU, ResUNet2D/1D, embeddings) and losses."""

from __future__ import annotations

import json
import math

import pytest
import torch

from core.deep.losses import abundance_loss, reconstruct, sam, sam_loss, spectral_loss
from core.deep.models import (
    HybridSTU,
    HybridSTUConfig,
    ResUNet1D,
    ResUNet1DConfig,
    ResUNet2D,
    ResUNet2DConfig,
    TimeMLP,
    timestep_embedding,
)
from core.deep.models.hybrid_stu import SpectralConv3d

torch.set_num_threads(min(2, torch.get_num_threads()))

SMALL_STU = HybridSTUConfig(spectral_reduce=16, c3d=4, c2d=16)
SMALL_UNET = ResUNet2DConfig(base=8, time_dim=16, groups=4)


# --- embeddings ------------------------------------------------------------------

@pytest.mark.parametrize("dim", [1, 8, 33])
def test_timestep_embedding(dim):
    t = torch.tensor([0, 1, 10, 999])
    emb = timestep_embedding(t, dim)
    assert emb.shape == (4, dim) and emb.dtype == torch.float32
    assert emb.abs().max() <= 1.0
    torch.testing.assert_close(emb, timestep_embedding(t.float(), dim))
    if dim >= 8:
        assert torch.cdist(emb, emb).add(torch.eye(4)).min() > 1e-3  # distinct steps, distinct codes
    assert TimeMLP(12, freq_dim=dim)(t).shape == (4, 12)


# --- HybridSTU -------------------------------------------------------------------

@pytest.mark.parametrize("bands,p,h,w,cfg", [
    (37, 3, 13, 7, HybridSTUConfig()),
    (37, 4, 1, 1, SMALL_STU),
    (2, 2, 2, 5, HybridSTUConfig(c3d=2, c2d=8)),
    (9, 5, 3, 4, HybridSTUConfig(n3d=0, n2d=1, c2d=8, input_norm="l2")),
])
def test_hybrid_stu_shapes_and_simplex(bands, p, h, w, cfg):
    net = HybridSTU(bands, p, cfg).eval()
    x = torch.rand(2, bands, h, w, generator=torch.Generator().manual_seed(0))
    a = net(x)
    assert a.shape == (2, p, h, w)
    assert (a >= 0).all()
    torch.testing.assert_close(a.sum(1), torch.ones(2, h, w))
    logits = net(x, return_logits=True)
    torch.testing.assert_close(torch.softmax(logits / 0.5, 1), net(x, temperature=0.5))
    with pytest.raises(ValueError):
        net(torch.rand(1, bands + 1, h, w))


def test_banded_conv3d_equals_native():
    torch.manual_seed(0)
    banded = SpectralConv3d(3, 4, 11, 5, 3, 2, impl="banded")
    native = SpectralConv3d(3, 4, 11, 5, 3, 2, impl="native")
    native.load_state_dict(banded.state_dict())
    x = torch.randn(2, 3, 11, 6, 5)
    torch.testing.assert_close(banded(x), native(x), atol=1e-5, rtol=1e-5)
    assert banded(x).shape == (2, 4, 6, 6, 5)


def test_hybrid_stu_receptive_field_bounds_influence():
    net = HybridSTU(12, 3, HybridSTUConfig(spectral_reduce=0, c3d=2, c2d=8)).eval()
    r = net.receptive_field
    assert r == 4
    x = torch.rand(1, 12, 15, 15)
    x2 = x.clone()
    x2[0, :, 7, 7] += 1.0
    changed = (net(x2) - net(x)).abs().amax(1)[0] > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert changed[7, 7]
    assert (rows - 7).abs().max() <= r and (cols - 7).abs().max() <= r


def test_hybrid_stu_trains_one_step():
    net = HybridSTU(10, 3, SMALL_STU)
    x, a = torch.rand(2, 10, 5, 5), torch.softmax(torch.randn(2, 3, 5, 5), 1)
    loss = abundance_loss(net(x), a)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


# --- UNets -----------------------------------------------------------------------

@pytest.mark.parametrize("h,w", [(13, 7), (1, 1), (2, 3), (16, 16)])
def test_resunet2d_shapes(h, w):
    net = ResUNet2D(5, 5, SMALL_UNET)
    out = net(torch.rand(2, 5, h, w), torch.tensor([3, 700]), torch.rand(2, 5, h, w))
    assert out.shape == (2, 5, h, w)
    uncond = ResUNet2D(3, 0, ResUNet2DConfig(base=8, mults=(1, 2, 2), groups=4, padding="replicate"))
    assert uncond(torch.rand(1, 3, h, w), torch.tensor(5)).shape == (1, 3, h, w)
    with pytest.raises(ValueError):
        net(torch.rand(2, 5, h, w), torch.tensor([3, 700]), None)


@pytest.mark.parametrize("bands", [37, 1, 200])
def test_resunet1d_shapes(bands):
    net = ResUNet1D(bands, cfg=ResUNet1DConfig(base=8, time_dim=16, groups=4))
    out = net(torch.rand(3, 1, bands), torch.tensor([0, 1, 999]), torch.rand(3, 1, bands))
    assert out.shape == (3, 1, bands)
    assert net.receptive_field > 0


def test_configs_round_trip_and_rebuild():
    for cfg in (HybridSTUConfig(c2d=7), ResUNet2DConfig(mults=(1, 2, 4)), ResUNet1DConfig()):
        d = json.loads(json.dumps(cfg.to_dict()))
        assert type(cfg).from_dict(d) == cfg
    with pytest.raises(ValueError):
        HybridSTUConfig.from_dict({"nope": 1})
    for net in (HybridSTU(20, 3, SMALL_STU), ResUNet2D(3, 3, SMALL_UNET), ResUNet1D(20)):
        hp = json.loads(json.dumps(net.hparams()))
        twin = type(net).from_hparams(hp)
        twin.load_state_dict(net.state_dict())
    assert ResUNet2D(5).cond_channels == 5


# --- losses ----------------------------------------------------------------------

def test_sam_values_and_gradients():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]], requires_grad=True)
    b = torch.tensor([[0.0, 1.0], [2.0, 2.0], [1.0, 2.0]])
    ang = sam(a, b)
    assert ang.shape == (3,)
    assert ang[0].item() == pytest.approx(math.pi / 2, abs=1e-5)
    assert ang[1].item() < 2e-3 and ang[2].item() < 2e-3
    sam_loss(a, b).backward()
    assert torch.isfinite(a.grad).all()
    z = torch.zeros(1, 4, requires_grad=True)
    sam(z, torch.ones(1, 4)).sum().backward()
    assert torch.isfinite(z.grad).all()
    pred, target = torch.rand(5, 9), torch.rand(5, 9)
    ref = sam(pred, target).mean() + 2 * (pred - target).pow(2).mean()
    torch.testing.assert_close(spectral_loss(pred, target, w_sam=1.0, w_mse=2.0), ref)


def test_abundance_loss_and_reconstruction():
    e = torch.rand(3, 8)
    a = torch.softmax(torch.randn(2, 3, 4, 5), 1)
    y = reconstruct(a, e)
    assert y.shape == (2, 8, 4, 5)
    torch.testing.assert_close(reconstruct(a[:, :, 0, 0], e), y[:, :, 0, 0])
    assert abundance_loss(a, a, y, e).item() == pytest.approx(0.0, abs=1e-10)
    a2 = torch.softmax(torch.randn(2, 3, 4, 5), 1)
    assert abundance_loss(a2, None, y, e, w_rec=1.0).item() > 0
    torch.testing.assert_close(abundance_loss(a2, a, w_rec=5.0), (a2 - a).pow(2).mean())
