"""Semi-blind fitting: training data synthesised from the scene's own endmembers.

Analysts rarely have reference abundances, so the default fits the models to
the scene itself. Training patches are synthetic mixtures of variants of the
initial endmembers ``E0 (P, B)`` (per-patch scaling and smooth spectral
perturbation, mild illumination changes) mixed by spatially structured
abundance maps (:func:`core.classical.synth.abundance_field`: Gaussian random fields,
Legendre fields, blurred mosaics), with noise matched to the scene's own
per-band noise estimate (HySime's multiple regression). Then:

* HybridSTU learns patches ``Y (n, B, h, w)`` → abundances ``A (n, P, h, w)``;
* ResUNet2D learns, as a DDPM (ε-prediction), clean maps conditioned on the
  HybridSTU estimate, for diffusion steps ``t ≤ t_max_2d`` (refinement starts
  from a partially noised estimate, so higher steps are never used);
* ResUNet1D learns, as a DDPM, clean spectra conditioned on degraded ones.

A supervised mode (:func:`supervised_batches`) uses the scene and reference
abundances instead of synthetic mixtures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..options import FAMILIES
from ..progress import ensure
from .diffusion.training import ddpm_loss
from .models.embeddings import ConfigMixin


@dataclass
class FitConfig(ConfigMixin):
    """Hyper-parameters of the semi-blind fitting (JSON round trip)."""

    patch: int = 24
    pool: int = 384  # abundance patches generated once, re-used with flips/rotations
    # noisy training patches (with their least-squares prior) drawn once per fit and re-used under
    # the square's 8 symmetries (PatchPool): drawing and filtering a batch costs more than a step
    sample_pool: int = 512
    batch: int = 16
    hybrid_iters: int = 350
    unet2d_iters: int = 250
    unet1d_iters: int = 250
    lr: float = 3e-3
    scale_jitter: float = 0.01  # std of per-patch endmember scaling
    shape_jitter: float = 0.005  # amplitude of smooth spectral perturbation
    illumination: float = 0.01  # std of per-pixel illumination scaling
    noise_low: float = 0.6  # noise level drawn in [low, high] × the scene's estimate
    noise_high: float = 1.4
    t_max_2d: int = 150
    t_max_1d: int = 150
    # weight of the self-supervised term: HybridSTU's abundances of the scene's own patches, mixed
    # back by the endmembers, against the patches (SAM + MSE, core.deep.losses.spectral_loss); 0 = off.
    # 0.1 lowered the forced-on HybridSTU's aRMSE on 7 of 12 benchmark scenes (docs/EXPERIMENTS.md)
    scene_weight: float = 0.1
    purity_low: float = 0.2
    purity_high: float = 0.95


class PatchGenerator:
    """Synthetic training patches from endmember variants.

    Args:
        E: endmembers (P, B), in the (scaled) units the network sees.
        noise_sigma: per-band noise standard deviation (B,) in the same units.
        cfg: :class:`FitConfig`.
        seed: seed of every random draw.
    """

    def __init__(self, E: np.ndarray, noise_sigma: np.ndarray, cfg: FitConfig, seed: int = 0):
        from ..classical.synth import abundance_field

        self.E = np.asarray(E, np.float32)
        self.P, self.B = self.E.shape
        self.sigma = np.asarray(noise_sigma, np.float32).reshape(1, self.B, 1, 1)
        self.cfg = cfg
        self.rng = np.random.default_rng(seed)
        h = cfg.patch
        pool = np.empty((cfg.pool, self.P, h, h), np.float32)
        for i in range(cfg.pool):
            fam = FAMILIES[i % len(FAMILIES)]
            purity = self.rng.uniform(cfg.purity_low, cfg.purity_high)
            pool[i] = abundance_field(self.P, h, h, fam, self.rng, purity=purity)
        self.pool = pool
        k = np.arange(1, 7)[:, None]
        x = np.linspace(0, 1, self.B)[None, :]
        self.basis = (np.cos(np.pi * k * x) / k).astype(np.float32)  # (6, B) smooth shapes

    def endmember_variants(self, n: int) -> np.ndarray:
        """(n, P, B) scaled and smoothly perturbed copies of E (non-negative)."""
        c = self.cfg
        scale = 1.0 + c.scale_jitter * self.rng.standard_normal((n, self.P, 1))
        coef = self.rng.standard_normal((n, self.P, self.basis.shape[0])).astype(np.float32)
        shape = 1.0 + c.shape_jitter * (coef @ self.basis)
        return np.clip(self.E[None] * scale * shape, 0.0, None).astype(np.float32)

    def batch(self, n: int):
        """Draw a batch.

        Returns:
            (Y (n, B, h, w) noisy, A (n, P, h, w), E_var (n, P, B)) float32 arrays.
        """
        c = self.cfg
        idx = self.rng.integers(0, self.pool.shape[0], n)
        A = self.pool[idx].copy()
        for i in range(n):  # dihedral augmentation + endmember permutation
            A[i] = np.rot90(A[i], self.rng.integers(4), axes=(1, 2))
            if self.rng.random() < 0.5:
                A[i] = A[i][:, :, ::-1]
            A[i] = A[i][self.rng.permutation(self.P)]
        Ev = self.endmember_variants(n)
        Y = np.einsum("npb,nphw->nbhw", Ev, A, optimize=True)
        if c.illumination > 0:
            h = A.shape[-1]
            ill = 1.0 + c.illumination * self.rng.standard_normal((n, 1, 1, 1))
            ill = ill + 0.5 * c.illumination * self.rng.standard_normal((n, 1, h, h))
            Y = Y * ill.astype(np.float32)
        level = self.rng.uniform(c.noise_low, c.noise_high, (n, 1, 1, 1)).astype(np.float32)
        Y = Y + level * self.sigma * self.rng.standard_normal(Y.shape, dtype=np.float32)
        return Y.astype(np.float32), A.astype(np.float32), Ev


class PatchPool:
    """Training patches drawn once per fit and re-used under the 8 symmetries of the square.

    Drawing a batch (abundance maps mixed by endmember variants, noised) and computing its
    least-squares prior (the bilateral filter and FCLS of :class:`core.deep.engine.PriorHybrid`)
    cost more than a training step of the networks (0.13 s against 0.11 s on 2 CPU cores, 16
    patches of 24² × 200 bands). The pool holds ``size`` patches with their prior; the prior is
    a pixel-wise solve after a symmetric 3×3 filter, so a rotated or flipped patch keeps its
    (rotated or flipped) prior, and each use draws one of the 8 symmetries.

    Args:
        draw: ``n -> (Y (n, B, h, w), A (n, P, h, w), E (n, P, B))`` float32 arrays
            (:meth:`PatchGenerator.batch` or :func:`supervised_batches`), or the arrays of ``keys``.
        size: patches in the pool (drawn in batches of ``batch``).
        prior: ``Y (n, B, h, w) tensor -> (n, P, h, w)``, or None.
        seed: seed of the draws of patches and symmetries.
    """

    def __init__(self, draw, size: int, batch: int, prior=None, seed: int = 0, keys=("Y", "A", "E")):
        n_draws = max(1, -(-int(size) // int(batch)))
        self.fields = {}
        for d in range(n_draws):  # filled in place: no second copy of the pool
            for key, v in zip(keys, draw(batch)):
                if key not in self.fields:
                    self.fields[key] = torch.empty((n_draws * v.shape[0],) + v.shape[1:], dtype=torch.float32)
                self.fields[key][d * v.shape[0]:(d + 1) * v.shape[0]] = torch.from_numpy(np.asarray(v, np.float32))
        if prior is not None:
            self.add("prior", prior, "Y")
        self.rng = np.random.default_rng([seed, 0x9001])

    def __len__(self) -> int:
        return int(self.fields["Y"].shape[0])

    @torch.no_grad()
    def add(self, key: str, fn, *inputs, chunk: int = 32) -> None:
        """A field computed from others by ``fn(*tensors)``, chunk by chunk (on ``fn``'s device)."""
        out = []
        for i in range(0, len(self), chunk):
            out.append(fn(*(self.fields[k][i:i + chunk] for k in inputs)).float().cpu())
        self.fields[key] = torch.cat(out)

    def sample(self, n: int, keys, device) -> list:
        """``n`` random patches: the tensors of ``keys`` on ``device``, each patch under one of the
        square's 8 symmetries (the same for all its fields; spectra (``E``) are left as they are)."""
        idx = self.rng.integers(0, len(self), n)
        sym = self.rng.integers(0, 8, n)
        out = []
        for key in keys:
            x = self.fields[key][torch.as_tensor(idx)]
            if x.dim() == 4:
                x = torch.stack([_symmetry(x[i], int(s)) for i, s in enumerate(sym)])
            out.append(x.to(device))
        return out


def training_pool(gen: "PatchGenerator", cfg: FitConfig, model, device, batches=None, seed: int | None = None):
    """The :class:`PatchPool` of a fit: ``cfg.sample_pool`` patches from ``batches`` (supervised
    crops) or ``gen``, with ``model``'s least-squares prior (:class:`core.deep.engine.PriorHybrid`)."""
    return PatchPool(batches or gen.batch, cfg.sample_pool, cfg.batch, prior=lambda Y: model.prior(Y.to(device)),
                     seed=int(gen.rng.integers(2**31)) if seed is None else seed)


def _symmetry(x: torch.Tensor, k: int) -> torch.Tensor:
    """Symmetry ``k`` (0–7) of the square on the last two axes: a rotation by k·90°, mirrored if k ≥ 4."""
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if k >= 4 else x


def _adam(params, lr: float, iters: int):
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, iters) / max(iters, 1))) * 0.95 + 0.05)
    return opt, sched


def _train(params, iters: int, lr: float, loss_fn, progress=None) -> list:
    """Adam with cosine decay for ``iters`` steps of ``loss_fn()``; checks cancellation each step.

    Returns:
        Loss history (one float per iteration).
    """
    prog = ensure(progress)
    opt, sched = _adam(params, lr, iters)
    hist = []
    for it in range(iters):
        prog.check()
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        hist.append(float(loss.detach()))
        prog.set_progress(100.0 * (it + 1) / iters)
    return hist


def scene_patches(cubes, patch: int, seed: int = 0):
    """Random crops of the scene's own windows, for self-supervised fitting.

    Args:
        cubes: ``[(cube (B, h, w), valid (h, w)), ...]`` in network units.
        patch: crop size (clipped to each window).

    Returns:
        A callable ``n -> Y (n, B, p, p)`` float32 (invalid pixels filled with the window mean),
        or None without a window as large as ``patch``.
    """
    rng = np.random.default_rng([seed, 0x5CE])
    wins = []
    for cube, valid in cubes:
        if min(cube.shape[1:]) >= patch and valid.mean() > 0.9:
            c = np.array(cube, np.float32)
            c[:, ~valid] = np.nanmean(c[:, valid], axis=1)[:, None]
            wins.append(c)
    if not wins:
        return None

    def draw(n):
        out = []
        for i in rng.integers(0, len(wins), n):
            c = wins[i]
            y, x = rng.integers(0, c.shape[1] - patch + 1), rng.integers(0, c.shape[2] - patch + 1)
            out.append(c[:, y:y + patch, x:x + patch])
        return np.stack(out)

    return draw


def fit_hybrid(model, gen: PatchGenerator, cfg: FitConfig, device, progress=None,
               batches=None, scene=None, pool: PatchPool | None = None) -> list:
    """Train HybridSTU on synthetic patches (MSE on abundances + reconstruction), and on the
    scene's own patches through the mixing model (SAM + MSE) when ``scene`` is given.

    Args:
        model: :class:`core.deep.models.HybridSTU`.
        gen: patch source (``batch(n)`` → Y, A, E_var).
        cfg: :class:`FitConfig` (``hybrid_iters``, ``batch``, ``lr``).
        device: torch device.
        progress: progress protocol (checked every iteration).
        batches: optional callable ``n -> (Y, A, E)`` replacing ``gen.batch`` (supervised mode).
        scene: optional callable ``n -> Y (n, B, h, w)`` of the scene's own patches
            (:func:`scene_patches`): their abundances, mixed back by the model's endmembers
            (each pixel rescaled by least squares in the scaled model), must reconstruct them,
            weighted by ``cfg.scene_weight`` (spectral angle + MSE relative to the patch energy).
        pool: the training patches with the model's prior (:class:`PatchPool`); drawn here
            (``cfg.sample_pool`` patches) when None.

    Returns:
        Loss history (one float per iteration).
    """
    from .losses import spectral_loss
    from .robust import pixel_scale

    pool = pool if pool is not None else training_pool(gen, cfg, model, device, batches)
    model.train()
    use_scene = scene is not None and cfg.scene_weight > 0
    if use_scene:  # the scene's own patches, with their prior, drawn once too
        own = PatchPool(lambda n: (scene(n),), max(cfg.sample_pool // 2, cfg.batch), cfg.batch,
                        prior=lambda Y: model.prior(Y.to(device)), seed=int(gen.rng.integers(2**31)), keys=("Y",))

    def loss_fn():
        Y, A, Ev, prior = pool.sample(cfg.batch, ("Y", "A", "E", "prior"), device)
        A_hat = model(Y, prior=prior)
        rec = torch.einsum("npb,nphw->nbhw", Ev, A_hat)
        rec_ref = torch.einsum("npb,nphw->nbhw", Ev, A)
        loss = F.mse_loss(A_hat, A) + 0.1 * F.mse_loss(rec, rec_ref) / (rec_ref.pow(2).mean() + 1e-12)
        if use_scene:
            Ys, prior_s = own.sample(max(2, cfg.batch // 2), ("Y", "prior"), device)
            rec_s = torch.einsum("pb,nphw->nbhw", model.E, model(Ys, prior=prior_s))
            if float(getattr(model, "scaled", 0.0)) > 0:
                rec_s = rec_s * pixel_scale(rec_s, Ys, axis=1).detach()
            # SAM + MSE (the mission's losses), the MSE relative to the patches' energy
            loss = loss + cfg.scene_weight * spectral_loss(
                rec_s.movedim(1, -1), Ys.movedim(1, -1), w_sam=1.0, w_mse=1.0 / float(Ys.pow(2).mean() + 1e-12))
        return loss

    hist = _train(model.parameters(), cfg.hybrid_iters, cfg.lr, loss_fn, progress)
    model.eval()
    return hist


def fit_unet2d(unet, hybrid, gen: PatchGenerator, schedule, cfg: FitConfig, device, progress=None,
               batches=None, pool: PatchPool | None = None) -> list:
    """Train ResUNet2D as a conditional DDPM on abundance maps.

    ``x0 = 2A − 1`` (maps [0, 1] to [−1, 1]); the condition is the HybridSTU
    estimate on the same patch, in the same scale; ``t ~ U{0 … t_max_2d}``
    (the whole schedule when ``t_max_2d ≥ T − 1``). The loss is
    :func:`core.deep.diffusion.training.ddpm_loss` in its x0 form on a
    :class:`core.deep.engine.ResidualX0` model. The patches come from ``pool``
    (:class:`PatchPool`, drawn here when None), their condition computed once.
    """
    unet.train()
    hybrid.eval()
    pool = pool if pool is not None else training_pool(gen, cfg, hybrid, device, batches)
    pool.add("cond", lambda Y, prior: 2.0 * hybrid(Y.to(device), prior=prior.to(device)) - 1.0, "Y", "prior")
    g = torch.Generator(device="cpu").manual_seed(int(gen.rng.integers(2**31)))

    def loss_fn():
        A, cond = pool.sample(cfg.batch, ("A", "cond"), device)
        return ddpm_loss(unet.predict_x0, schedule, 2.0 * A - 1.0, cond, generator=g, prediction="x0",
                         t_max=cfg.t_max_2d + 1)

    hist = _train(unet.parameters(), cfg.unet2d_iters, cfg.lr, loss_fn, progress)
    unet.eval()
    return hist


def spectra_pairs(E: np.ndarray, rng: np.random.Generator, n: int, noise: float,
                  library: np.ndarray | None = None):
    """Clean spectra and degraded versions for the endmember diffusion.

    Clean spectra are endmember variants (and library spectra when given),
    normalised by their mean. Degraded ones carry what least-squares endmember
    estimates show: leakage of the other endmembers (abundance errors mix them
    in), white noise and a smooth bias.

    Returns:
        (clean (n, 1, B), degraded (n, 1, B)) float32, both mean-normalised.
    """
    P, B = E.shape
    src = E if library is None or len(library) == 0 else np.concatenate([E, library])
    pick = rng.integers(0, src.shape[0], n)
    k = np.arange(1, 7)[:, None]
    x = np.linspace(0, 1, B)[None, :]
    basis = np.cos(np.pi * k * x) / k
    clean = src[pick] * (1 + 0.05 * rng.standard_normal((n, 1))) * (1 + 0.02 * rng.standard_normal((n, 6)) @ basis)
    clean = np.clip(clean, 1e-6, None)
    En = E / np.clip(E.mean(axis=1, keepdims=True), 1e-12, None)
    clean = clean / clean.mean(axis=1, keepdims=True)
    leak = rng.standard_normal((n, P)) * rng.uniform(0.0, 0.15, (n, 1))
    deg = clean + leak @ En
    deg = deg / np.clip(deg.mean(axis=1, keepdims=True), 1e-6, None)
    lvl = rng.uniform(0.0, 1.0, (n, 1)) * noise
    deg = deg + lvl * rng.standard_normal(clean.shape) + 0.02 * rng.standard_normal((n, 6)) @ basis
    return clean[:, None].astype(np.float32), deg[:, None].astype(np.float32)


def fit_unet1d(unet, E: np.ndarray, schedule, cfg: FitConfig, device, seed: int = 0,
               noise: float = 0.05, library: np.ndarray | None = None, progress=None) -> list:
    """Train ResUNet1D as a conditional DDPM on mean-normalised spectra (x0 = s − 1), x0-form loss."""
    if cfg.unet1d_iters <= 0:
        return []
    rng = np.random.default_rng(seed)
    unet.train()
    g = torch.Generator(device="cpu").manual_seed(seed)

    def loss_fn():
        clean, deg = spectra_pairs(E, rng, 2 * cfg.batch, noise, library)
        return ddpm_loss(unet.predict_x0, schedule, torch.from_numpy(clean).to(device) - 1.0,
                         torch.from_numpy(deg).to(device) - 1.0, generator=g, prediction="x0",
                         t_max=cfg.t_max_1d + 1)

    hist = _train(unet.parameters(), cfg.unet1d_iters, cfg.lr, loss_fn, progress)
    unet.eval()
    return hist


def supervised_batches(Y: np.ndarray, A: np.ndarray, E: np.ndarray, patch: int, seed: int = 0):
    """Batches of random crops of a scene with reference abundances (supervised mode).

    Args:
        Y: scene cube (B, H, W) in network units.
        A: reference abundances (P, H, W).
        E: endmembers (P, B) used for the reconstruction term.
        patch: crop size (clipped to the scene size).

    Returns:
        A callable ``n -> (Y (n,B,h,w), A (n,P,h,w), E (n,P,B))``.
    """
    rng = np.random.default_rng(seed)
    _, H, W = Y.shape
    h, w = min(patch, H), min(patch, W)

    def draw(n):
        ys = rng.integers(0, H - h + 1, n)
        xs = rng.integers(0, W - w + 1, n)
        Yb = np.stack([Y[:, y:y + h, x:x + w] for y, x in zip(ys, xs)])
        Ab = np.stack([A[:, y:y + h, x:x + w] for y, x in zip(ys, xs)])
        Eb = np.repeat(E[None].astype(np.float32), n, axis=0)
        return np.nan_to_num(Yb).astype(np.float32), np.nan_to_num(Ab).astype(np.float32), Eb

    return draw
