"""The fitted DiffUnmix engine: HybridSTU → DDIM abundance refinement →
endmembers by constrained least squares → DDIM endmember refinement.

:class:`Engine` holds the three networks, the noise schedule, the endmembers
and the scaling the networks were fitted with; it works on in-memory arrays
(one tile at a time). :mod:`core.deep.run` streams rasters through it and
:mod:`core.deep.checkpoint` saves/loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np
import torch

from ..options import STAGES
from ..progress import ensure
from .diffusion import DDIMSampler, NoiseSchedule, project_simplex
from .diffusion.ddim import randn_like
from .models import HybridSTU, HybridSTUConfig, ResUNet1D, ResUNet1DConfig, ResUNet2D, ResUNet2DConfig
from .models.embeddings import ConfigMixin
from .robust import SCALED, bilateral, pixel_scale
from .training import FitConfig


def fcls_prior(y: torch.Tensor, E: torch.Tensor, scaled: bool = False) -> torch.Tensor:
    """Exact fully constrained least-squares abundances of a cube batch (the physics prior).

    Args:
        y: cube batch (N, B, H, W).
        E: endmembers (P, B), same units.
        scaled: the scaled mixing model instead (NNLS normalised to sum one,
            :func:`core.deep.robust.scaled_abundances`), for scenes whose
            illumination varies.

    Returns:
        A (N, P, H, W) on the simplex (:func:`core.deep.fcls_torch.fcls_torch` on CUDA,
        :func:`core.classical.fcls.fcls` on the CPU).
    """
    from ..classical.fcls import fcls
    from .robust import scaled_abundances

    n, b, h, w = y.shape
    if y.device.type == "cuda" and not scaled:  # exact FCLS on the GPU: no round trip through the CPU
        from .fcls_torch import fcls_torch

        A = fcls_torch(y.detach().permute(0, 2, 3, 1).reshape(-1, b), E)
        return A.reshape(n, h, w, -1).permute(0, 3, 1, 2).to(dtype=y.dtype).contiguous()
    pix = y.detach().permute(0, 2, 3, 1).reshape(-1, b).cpu().numpy()
    A = (scaled_abundances if scaled else fcls)(pix, E.detach().cpu().numpy().astype(np.float64))
    return torch.from_numpy(np.ascontiguousarray(A, np.float32)).reshape(n, h, w, -1).permute(0, 3, 1, 2).to(
        device=y.device, dtype=y.dtype)


class ResidualX0(torch.nn.Module):
    """A diffusion UNet parameterised as a residual x0-predictor, exposed as an ε-model.

    ``x̂0 = cond + net(x_t, t, cond)`` with the UNet's output layer zero-initialised,
    so before fitting the refinement is the identity on the coarse estimate and
    fitting learns corrections. At the small diffusion steps used for refinement an
    ε-prediction amplifies network error by ``√ᾱ/√(1−ᾱ)`` (≈ 20× at ᾱ = 0.998),
    x0-prediction does not. ``forward`` returns the equivalent
    ``ε = (x_t − √ᾱ_t x̂0) / √(1−ᾱ_t)`` (DDPM eq. 4 solved for ε), so the standard
    DDIM sampler uses it unchanged.

    Args:
        net: :class:`ResUNet2D` or :class:`ResUNet1D` with ``cond_channels == channels``.
        schedule: the :class:`NoiseSchedule` the sampler uses.
    """

    def __init__(self, net: torch.nn.Module, schedule: NoiseSchedule):
        super().__init__()
        self.net = net
        self.schedule = schedule
        torch.nn.init.zeros_(net.out_conv.weight)
        torch.nn.init.zeros_(net.out_conv.bias)

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return cond + self.net(x_t, t, cond)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t).long().reshape(-1).expand(x_t.shape[0]).cpu()
        return self.schedule.predict_eps(x_t, self.predict_x0(x_t, t.to(x_t.device), cond), t)


class PriorHybrid(torch.nn.Module):
    """HybridSTU made physics-aware: it sees the cube *and* a least-squares prior.

    The prior ``A_ls`` is the constrained least-squares solution (FCLS, or the
    scaled model when the scene's illumination varies) of the cube after the
    noise-adaptive bilateral filter :func:`core.deep.robust.bilateral` (a spatial
    prior that keeps edges), with the current endmembers. It is appended to
    the spectral input, and the network's logits are added to
    ``log(A_ls + ε)``: at initialisation the output is the per-pixel
    least-squares solution, and fitting teaches a spectral-spatial correction
    (denoising, endmember variability) on top of it.

    Args:
        bands: B.
        p: P.
        cfg: :class:`HybridSTUConfig`.
    """

    def __init__(self, bands: int, p: int, cfg: HybridSTUConfig):
        super().__init__()
        self.net = HybridSTU(bands + p, p, cfg)
        torch.nn.init.zeros_(self.net.head.weight)  # start exactly at the prior; fitting learns the correction
        torch.nn.init.zeros_(self.net.head.bias)
        self.register_buffer("E", torch.zeros(p, bands))
        self.prior_gain = torch.nn.Parameter(torch.tensor(1.0))
        # weight of the learned correction in [0, 1]: the output is prior + weight × (network − prior), a
        # point of the simplex; 1 = the network, 0 = plain FCLS. Set by the gates (the SURE-optimal blend)
        self.register_buffer("correction", torch.tensor(1.0))
        # per-band noise std of the bilateral filter (zeros: no filtering) and the mixing model (1 = scaled)
        self.register_buffer("noise", torch.zeros(bands))
        self.register_buffer("scaled", torch.tensor(0.0))

    @property
    def receptive_field(self) -> int:
        return int(self.net.receptive_field)

    def set_endmembers(self, E) -> None:
        self.E.copy_(torch.as_tensor(np.asarray(E), dtype=self.E.dtype))

    def prior(self, y: torch.Tensor) -> torch.Tensor:
        """The least-squares prior of the denoised batch (what the network corrects)."""
        return self.unmix(bilateral(y, self.noise))

    def unmix(self, y_filtered: torch.Tensor, E: torch.Tensor | None = None) -> torch.Tensor:
        """The prior's least-squares step on an already filtered batch, with endmembers ``E``
        (network units; default the model's), in the model's mixing model."""
        return fcls_prior(y_filtered, self.E if E is None else E, scaled=bool(float(self.scaled) > 0))

    def forward(self, y: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """Abundances (N, P, H, W) on the simplex from a cube batch (N, B, H, W); ``prior``: its
        :meth:`prior` when already computed (training re-uses it)."""
        prior = self.prior(y) if prior is None else prior
        weight = min(max(float(self.correction), 0.0), 1.0)  # a checkpoint's value is clamped, never extrapolated
        if weight == 0.0:
            return prior
        logits = self.net.forward_logits(torch.cat([y, prior], dim=1))
        out = torch.softmax(logits + self.prior_gain * torch.log(prior + 1e-3), dim=1)
        return out if weight == 1.0 else prior + weight * (out - prior)


@dataclass
class RefineConfig(ConfigMixin):
    """Inference settings (DDIM) of the abundance and endmember refinement."""

    steps_2d: int = 2  # DDIM steps for the abundances
    start_2d: int = 60  # diffusion step the sampler starts from (of num_steps); set from the noise at fit time
    dc_weight: float = 0.5  # weight of the likelihood guidance (0 = none: simplex projection only)
    # weight of the sampler's estimate against HybridSTU's (the estimate is A_h + weight × (mean of the draws −
    # A_h), in [0, 1]); set by the gates (the SURE-optimal blend)
    blend_2d: float = 1.0
    draws: int = 1  # posterior draws per tile (η = 1) whose mean is the estimate; 1 = one deterministic pass
    # the likelihood's noise std = HySime's × this (≥ 1): the scene's misfit of the prior beyond noise (model
    # error, e.g. endmember variability), measured at fit time (model_misfit)
    likelihood_scale: float = 1.0
    steps_1d: int = 0  # ResUNet1D DDIM steps; 0 = off (docs/EXPERIMENTS.md)
    start_1d: int = 40
    alternations: int = 1  # extra A/E alternations after the first endmember estimate
    # semi-blind rounds: E re-estimated from the abundances, each kept only if the scene's signal SURE
    # drops (core.deep.joint)
    calibrate: bool = True


@dataclass
class EngineConfig(ConfigMixin):
    """Everything that defines an engine; JSON round trip through ``to_dict``."""

    hybrid: dict = field(default_factory=lambda: HybridSTUConfig().to_dict())
    unet2d: dict = field(default_factory=lambda: ResUNet2DConfig().to_dict())
    unet1d: dict = field(default_factory=lambda: ResUNet1DConfig(base=16).to_dict())
    fit: dict = field(default_factory=lambda: FitConfig().to_dict())
    refine: dict = field(default_factory=lambda: RefineConfig().to_dict())
    num_steps: int = 1000
    schedule: str = "cosine"
    tile: int = 128
    overlap: int = 16

    @classmethod
    def preset(cls, quality: str = "default") -> "EngineConfig":
        """Presets trading time for accuracy: ``fast``, ``default``, ``best``."""
        cfg = cls()
        fit = FitConfig()
        ref = RefineConfig()
        if quality == "fast":
            # 64 / 40 steps: 3–4 s under 80 / 50 (of 30), the same aRMSE within 0.5 % on five scenes, where
            # the gates lean on the prior anyway (docs/EXPERIMENTS.md)
            fit.hybrid_iters, fit.unet2d_iters, fit.unet1d_iters = 64, 40, 0
            fit.sample_pool = 256
            ref.calibrate = False  # no semi-blind rounds: their judge costs a robust start (2–3 s of 30)
        elif quality == "best":
            fit.hybrid_iters, fit.unet2d_iters, fit.unet1d_iters = 900, 600, 400
            fit.pool, fit.sample_pool = 768, 768
            ref.steps_2d, ref.steps_1d, ref.alternations, ref.calibrate = 4, 2, 2, True
        elif quality == "default":
            fit.unet1d_iters = 0  # the endmember diffusion is off by default
        else:
            raise ValueError(f"unknown quality preset {quality!r}")
        cfg.fit, cfg.refine = fit.to_dict(), ref.to_dict()
        return cfg


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU; ``cuda`` without a GPU is bad input."""
    from ..errors import UnmixError

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UnmixError("device cuda requested but no CUDA GPU is available (use device auto or cpu)")
    return torch.device(device)


class Engine:
    """Fitted models plus the endmembers and scaling they work with.

    Args:
        bands: band count B the networks take.
        E: endmembers (P, B) in data units.
        names: P endmember names.
        cfg: :class:`EngineConfig`.
        scale: data units → network units divisor (the mean of E at fit time).
        device: torch device.
    """

    def __init__(self, bands: int, E: np.ndarray, names, cfg: EngineConfig, scale: float,
                 device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.cfg = cfg
        self.B = int(bands)
        self._E = np.asarray(E, np.float64)
        self.P = self._E.shape[0]
        self.names = list(names)
        self.scale = float(scale)
        self.hybrid = PriorHybrid(self.B, self.P, HybridSTUConfig.from_dict(cfg.hybrid)).to(self.device)
        self.E = self._E
        self.schedule = NoiseSchedule(cfg.num_steps, cfg.schedule)
        sch = self.schedule
        self.unet2d = ResidualX0(ResUNet2D(self.P, self.P, ResUNet2DConfig.from_dict(cfg.unet2d)), sch).to(self.device)
        self.unet1d = ResidualX0(ResUNet1D(self.B, 1, ResUNet1DConfig.from_dict(cfg.unet1d)), sch).to(self.device)
        self.sampler = DDIMSampler(self.schedule)
        self.refine_cfg = RefineConfig.from_dict(cfg.refine)
        self.trained: list = []  # fitted stages (of STAGES); a checkpoint records them
        self.validation = None
        #: draws of the endmember estimate (K, P, B) in data units (:func:`core.deep.robust.endmember_draws`),
        #: or None: the uncertainty then holds the abundance posterior's spread only
        self.E_draws: np.ndarray | None = None
        for m in (self.hybrid, self.unet2d, self.unet1d):
            m.eval()

    @property
    def E(self) -> np.ndarray:
        """Endmembers (P, B) in data units; setting them also updates HybridSTU's prior."""
        return self._E

    @E.setter
    def E(self, value) -> None:
        self._E = np.asarray(value, np.float64)
        self.hybrid.set_endmembers(self._E / self.scale)

    @property
    def mixing(self) -> str:
        """``linear`` (FCLS) or ``scaled`` (NNLS normalised to sum one), see :mod:`core.deep.robust`."""
        return "scaled" if float(self.hybrid.scaled) > 0 else "linear"

    def noise_sigma(self) -> np.ndarray:
        """The per-band noise std (B,) in data units the prior was set with (:meth:`set_prior`)."""
        return self.hybrid.noise.detach().cpu().double().numpy() * self.scale

    def set_prior(self, mixing: str, noise_sigma) -> None:
        """Mixing model and the per-band noise std (data units) of the prior's bilateral filter."""
        self.hybrid.scaled.fill_(1.0 if mixing == SCALED else 0.0)
        self.hybrid.noise.copy_(torch.as_tensor(np.asarray(noise_sigma) / self.scale, dtype=torch.float32))

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        return {"hybrid": self.hybrid.state_dict(), "unet2d": self.unet2d.state_dict(),
                "unet1d": self.unet1d.state_dict()}

    def load_state(self, state: dict) -> None:
        self.hybrid.load_state_dict(state["hybrid"])
        self.unet2d.load_state_dict(state["unet2d"])
        self.unet1d.load_state_dict(state["unet1d"])

    # ------------------------------------------------------------------ abundances
    def _prepare(self, cube: np.ndarray, valid: np.ndarray | None) -> torch.Tensor:
        """(B, h, w) data units, NaN at invalid pixels → (1, B, h, w) network units, gaps filled."""
        # to the device first, then scale and fill there (on CUDA this halves the host-side cost)
        x = torch.as_tensor(np.ascontiguousarray(cube, np.float32)).to(self.device) / self.scale
        if valid is None:
            bad = ~torch.isfinite(x).all(dim=0)
        else:
            bad = ~torch.as_tensor(np.asarray(valid, bool), device=self.device)
        if bool(bad.any()):
            fill = torch.nanmean(x[:, ~bad], dim=1) if bool((~bad).any()) else torch.zeros_like(x[:, 0, 0])
            x[:, bad] = fill[:, None]
        return x.unsqueeze(0)

    def _likelihood_transform(self, y: torch.Tensor, E: np.ndarray, t: int, weight: float,
                              sample: torch.Generator | None = None):
        """x̂0 ↦ x̂0 pulled toward the data by the linear mixing model, then put on the simplex.

        The likelihood of the pixels ``y = s·Eᵀa + n``, ``n ~ N(0, Σ)`` with Σ the
        HySime noise (diagonal, :meth:`noise_sigma`) and ``s`` each pixel's
        least-squares scale (1 in the linear model), is combined with a Gaussian
        around the network's estimate ``ā = (x̂0 + 1)/2`` of variance
        ``r_t²/4``, ``r_t² = 1 − ᾱ_t`` (ΠGDM, Song et al. ICLR 2023, eq. 7: the
        spread of x0 given x_t for unit-variance data), giving the per-pixel
        posterior mean (DDRM, Kawar et al. NeurIPS 2022, eq. 8 in the form of a
        Gaussian product; no SVD is needed with P unknowns per pixel)::

            a = (w s² EΣ⁻¹Eᵀ + 4/r_t² I)⁻¹ (w s EΣ⁻¹y + 4ā/r_t²)

        then projected on the simplex (Duchi et al. 2008). Σ is HySime's noise
        times ``refine.likelihood_scale`` (:func:`model_misfit`): where the prior
        misfits the scene by more than noise, the likelihood is that much weaker.
        This replaces DPS's
        gradient step ``x ← x − ζ∇‖y − A(x̂0)‖²`` (Chung et al. ICLR 2023,
        algorithm 1) by its exact minimiser for a linear forward model, without
        back-propagating through the network. ``w`` (the guidance weight)
        tempers the likelihood for model error (endmember variability).

        With ``sample`` (a generator; the last step of a stochastic draw), ``a`` is drawn from that
        Gaussian, ``N(mean, M⁻¹)`` with ``M`` the matrix above, instead of taken at its mean: the
        DDIM noise alone is pulled back to the same mean by a sharp likelihood, so the draws would
        not spread as the posterior does.
        """
        Et = torch.as_tensor(E / self.scale, dtype=torch.float64, device=self.device)  # (P, B)
        sig = self.hybrid.noise.to(torch.float64) * max(1.0, float(self.refine_cfg.likelihood_scale))
        sig = torch.clamp(sig, min=max(float(sig.max()) * 1e-3, 1e-6)) if float(sig.max()) > 0 else \
            torch.full_like(sig, 1e-3)
        Ew = Et / sig[None, :] ** 2  # EΣ⁻¹ (P, B)
        gram = Ew @ Et.T  # EΣ⁻¹Eᵀ (P, P)
        ey = torch.einsum("pb,nbhw->nphw", Ew, y.to(torch.float64))  # EΣ⁻¹y
        prec0 = 4.0 / max(1.0 - float(self.schedule.alpha_bar(int(t))), 1e-8)
        scaled = self.mixing != "linear"
        P = Et.shape[0]
        eye = torch.eye(P, dtype=torch.float64, device=self.device)

        def transform(x0: torch.Tensor) -> torch.Tensor:
            a_bar = project_simplex((x0.to(torch.float64) + 1.0) / 2.0, dim=1)
            if weight <= 0:
                return (2.0 * a_bar - 1.0).to(x0.dtype)
            if scaled:  # s = ⟨Eᵀā, y⟩_Σ / ‖Eᵀā‖²_Σ per pixel
                num = torch.einsum("nphw,nphw->nhw", a_bar, ey)
                den = torch.einsum("nphw,pq,nqhw->nhw", a_bar, gram, a_bar).clamp_min(1e-30)
                s = (num / den).clamp_min(0.0)[:, None]
            else:
                s = torch.ones_like(a_bar[:, :1])
            n, _, h, w = a_bar.shape
            s_flat = s.permute(0, 2, 3, 1).reshape(-1, 1, 1)
            M = weight * s_flat ** 2 * gram[None] + prec0 * eye[None]  # (N·h·w, P, P)
            rhs = weight * s * ey + prec0 * a_bar
            rhs = rhs.permute(0, 2, 3, 1).reshape(-1, P, 1)
            a = torch.linalg.solve(M, rhs)[..., 0]  # (N·h·w, P)
            if sample is not None:  # a ~ N(a, M⁻¹): a + L⁻ᵀz with M = LLᵀ
                L = torch.linalg.cholesky(M)
                z = torch.randn(a.shape, generator=sample, dtype=torch.float64).to(a.device)
                a = a + torch.linalg.solve_triangular(L.transpose(1, 2), z[..., None], upper=True)[..., 0]
            a = a.reshape(n, h, w, P).permute(0, 3, 1, 2)
            return (2.0 * project_simplex(a, dim=1) - 1.0).to(x0.dtype)

        return transform

    @torch.no_grad()
    def posterior_draws(self, cube: np.ndarray, valid: np.ndarray | None = None, draws: int = 1,
                        E: np.ndarray | None = None, eta: float | None = None,
                        generator: torch.Generator | None = None, progress=None,
                        steps_2d: int | None = None, y: torch.Tensor | None = None,
                        start: torch.Tensor | None = None) -> np.ndarray:
        """Draws of the abundance posterior of one tile (the 2D diffusion as a posterior sampler).

        The HybridSTU estimate is noised to the step ``start_2d`` that the scene's
        noise justifies (set at fit time, :func:`data_start_step`), then DDIM
        (Song et al. ICLR 2021, eq. 12) runs to ``t = −1`` with ResUNet2D
        conditioned on that estimate; at every step the network's x̂0 is pulled
        toward the data by :meth:`_likelihood_transform`. ``draws`` samples run as
        one batch, each with its own noise from ``generator``; η = 1 (ancestral,
        a sample of the posterior) unless one deterministic draw (η = 0) is asked.

        ``y``: the tile already prepared (:meth:`_prepare`); ``start``: its HybridSTU
        estimate (1, P, h, w) when already computed.

        Returns:
            (draws, P, h, w) float32, each on the simplex.
        """
        y = self._prepare(cube, valid) if y is None else y
        A0 = self.hybrid(y) if start is None else start
        rc = self.refine_cfg
        steps = rc.steps_2d if steps_2d is None else int(steps_2d)
        if steps <= 0:
            return A0.float().cpu().numpy().repeat(max(1, draws), axis=0)
        k = max(1, int(draws))
        eta = (1.0 if k > 1 else 0.0) if eta is None else float(eta)
        cond = (2.0 * A0 - 1.0).expand(k, -1, -1, -1)
        yk = y.expand(k, -1, -1, -1)
        E = self.E if E is None else E
        ts = self.sampler.set_timesteps(steps, min(int(rc.start_2d), self.schedule.num_steps - 1))
        x = self.schedule.add_noise(cond, randn_like(cond, generator), ts[0])
        prog = ensure(progress)
        for i, t in enumerate(ts):
            prog.check()
            t_prev = ts[i + 1] if i + 1 < len(ts) else -1
            eps = self.unet2d(x, torch.full((k,), t, dtype=torch.long, device=x.device), cond)
            last = i + 1 == len(ts)
            tf = self._likelihood_transform(yk, E, t, rc.dc_weight,
                                            sample=generator if last and eta > 0 and generator is not None else None)
            x, _ = self.sampler.step(eps, t, t_prev, x, eta, generator, tf)
            prog.set_progress(100.0 * (i + 1) / len(ts))
        return project_simplex((x + 1.0) / 2.0, dim=1).float().cpu().numpy()

    @torch.no_grad()
    def abundances(self, cube: np.ndarray, valid: np.ndarray | None = None, E: np.ndarray | None = None,
                   stages: str = "full", eta: float = 0.0, generator: torch.Generator | None = None,
                   progress=None, steps_2d: int | None = None, draws: int | None = None) -> np.ndarray:
        """Abundances of one tile.

        Args:
            cube: (B, h, w) data units, NaN at invalid pixels.
            valid: (h, w) bool; derived from NaNs when None.
            E: endmembers (P, B) for the likelihood guidance (default: the engine's).
            stages: ``hybrid`` (CNN only) or ``full`` (CNN + posterior sampling).
            eta: DDIM η of a single draw (0 deterministic; > 0 stochastic).
            generator: torch generator for the partial noising and η > 0.
            steps_2d: DDIM steps of the sampler (default: the engine's, 0 when the
                gates turned it off).
            draws: posterior draws averaged (default the engine's ``refine.draws``);
                more than one are drawn with η = 1 (:meth:`posterior_draws`).

        Returns:
            A (P, h, w) float32 on the simplex: HybridSTU's estimate blended with the mean of the
            draws by the gates' weight (:meth:`refined`).
        """
        y = self._prepare(cube, valid)
        rc = self.refine_cfg
        steps = rc.steps_2d if steps_2d is None else int(steps_2d)
        A0 = self.hybrid(y)
        if stages == "hybrid" or steps <= 0:
            return A0[0].float().cpu().numpy()
        k = rc.draws if draws is None else int(draws)
        d = self.posterior_draws(cube, valid, k, E=E, eta=None if k > 1 else eta, generator=generator,
                                 progress=progress, steps_2d=steps, y=y, start=A0)
        return self.refined(A0[0].float().cpu().numpy(), d.mean(axis=0))

    def refined(self, A_hybrid: np.ndarray, A_mean: np.ndarray) -> np.ndarray:
        """The estimate from HybridSTU's abundances and the mean of the sampler's draws (each
        (P, h, w)): ``A_hybrid + w (A_mean − A_hybrid)`` with ``w`` the gates' weight
        (``refine.blend_2d``, clamped to [0, 1]), 0 when the gates turned the refinement off. A
        convex blend of two simplex points stays on the simplex."""
        rc = self.refine_cfg
        w = min(max(float(rc.blend_2d), 0.0), 1.0) if rc.steps_2d > 0 else 0.0
        if w >= 1.0:
            return A_mean
        return (A_hybrid + w * (A_mean - A_hybrid)).astype(np.float32)

    @torch.no_grad()
    def endmember_spread(self, y: torch.Tensor) -> np.ndarray | None:
        """The abundances' spread (P, h, w) over the endmember draws :attr:`E_draws` of a prepared
        tile ``y`` (1, B, h, w) (:meth:`_prepare`), or None without draws.

        Each draw's abundances are the least-squares prior (the denoised tile unmixed with that
        draw's endmembers, the engine's mixing model); their standard deviation is the term the
        endmembers add to the uncertainty by the law of total variance,
        ``Var a = E[Var(a | E)] + Var(E[a | E])``, its second term taken at the prior (the
        networks' corrections are second order in the endmembers).
        """
        if self.E_draws is None:
            return None
        yf = bilateral(y, self.hybrid.noise)  # filtered once for every draw
        A = [self.hybrid.unmix(yf, torch.as_tensor(Ek / self.scale, dtype=yf.dtype, device=yf.device))[0]
             for Ek in self.E_draws]
        return torch.stack(A).float().cpu().numpy().std(axis=0)

    # ------------------------------------------------------------------ endmembers
    @staticmethod
    def endmembers_from_abundances(Y: np.ndarray, A: np.ndarray) -> np.ndarray:
        """Non-negative least squares ``min_E≥0 ‖Y − A E‖²``, exactly, band by band.

        Each band's column of Y is one NNLS problem in the P unknowns of that
        band, so :func:`core.classical.fcls.nnls` solves all of them at once (its rows are
        the bands, its "endmembers" the abundance columns).

        Args:
            Y: pixels (N, B).
            A: abundances (N, P).

        Returns:
            E (P, B).
        """
        from ..classical.fcls import nnls

        return nnls(np.asarray(Y, np.float64).T, np.asarray(A, np.float64).T).T.astype(np.float64)

    @torch.no_grad()
    def refine_endmembers(self, E_ls: np.ndarray, generator: torch.Generator | None = None) -> np.ndarray:
        """DDIM refinement of least-squares endmembers by ResUNet1D (spectra kept ≥ 0)."""
        rc = self.refine_cfg
        if rc.steps_1d <= 0:
            return np.asarray(E_ls, np.float64)
        m = np.clip(E_ls.mean(axis=1, keepdims=True), 1e-12, None)
        x = torch.as_tensor((E_ls / m)[:, None] - 1.0, dtype=torch.float32, device=self.device)

        def nonneg(x0):
            return torch.clamp(x0, min=-1.0)

        x0 = self.sampler.refine(self.unet1d, x, x, n_steps=rc.steps_1d, start_step=rc.start_1d, eta=0.0,
                                 generator=generator, x0_transform=nonneg)
        return np.clip((x0[:, 0].double().cpu().numpy() + 1.0) * m, 0, None)


@torch.no_grad()
def model_misfit(eng: "Engine", cubes) -> float:
    """How far the least-squares prior misfits the scene beyond noise: ``√(mean ‖y − ŷ‖² / Σσ²)``
    (at least 1), ŷ the prior's abundances mixed back (each pixel rescaled by least squares
    in the scaled model), on windows ``[(cube, valid), ...]`` of the scene (data units)."""
    sig2 = float(torch.sum(eng.hybrid.noise.double() ** 2))
    if sig2 <= 0 or not cubes:
        return 1.0
    E = eng.hybrid.E.double()
    tot, n = 0.0, 0
    for cube, valid in cubes:
        y = eng._prepare(cube, valid).double()
        rec = torch.einsum("pb,nphw->nbhw", E, eng.hybrid.prior(y.float()).double())
        if eng.mixing != "linear":
            rec = rec * pixel_scale(rec, y, axis=1)
        m = torch.as_tensor(np.asarray(valid, bool), device=y.device)
        r = ((y - rec) ** 2).sum(1)[0][m]
        tot, n = tot + float(r.sum()), n + int(m.sum())
    return float(max(1.0, (tot / max(n, 1) / sig2) ** 0.5))


#: bounds of the sampler's start step (of 1000)
START_STEP_RANGE = (10, 400)


def data_start_step(schedule: NoiseSchedule, E_n: np.ndarray, sigma_n: np.ndarray) -> int:
    """The diffusion step whose noise matches the least-squares abundance error the data allow.

    The unconstrained least-squares abundances of a pixel have covariance
    ``(EΣ⁻¹Eᵀ)⁻¹`` (Σ the HySime noise); in the UNet's [−1, 1] scale their mean
    std is ``σ_x = 2·mean √diag(EΣ⁻¹Eᵀ)⁻¹``. The sampler starts where x_t/√ᾱ_t
    has that spread, ``√((1−ᾱ_t)/ᾱ_t) ≥ σ_x``: noisier data, or endmembers
    harder to tell apart, start it higher (more of the estimate is re-drawn
    from the prior); clean data barely noise it.

    Args:
        schedule: the engine's schedule.
        E_n: endmembers (P, B) and ``sigma_n`` (B,) noise std, in network units.

    Returns:
        The step, within :data:`START_STEP_RANGE`.
    """
    sig = np.clip(np.asarray(sigma_n, np.float64), 1e-9, None)
    G = (E_n / sig[None] ** 2) @ E_n.T
    sd = 2.0 * float(np.mean(np.sqrt(np.clip(np.diag(np.linalg.pinv(G)), 0.0, None))))
    ab = schedule.alpha_bar(torch.arange(schedule.num_steps)).numpy()
    ok = np.nonzero(np.sqrt((1.0 - ab) / ab) >= sd)[0]
    t = int(ok[0]) if len(ok) else schedule.num_steps - 1
    return int(np.clip(t, *START_STEP_RANGE))


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch (CPU determinism) and return a CPU generator for sampling."""
    torch.manual_seed(seed)
    return torch.Generator(device="cpu").manual_seed(seed)


#: the engine's networks in training order (``python -m core train --stage``)



def fit_engine(Y_sample: np.ndarray, E0: np.ndarray, names, noise_sigma: np.ndarray, cfg: EngineConfig,
               device: torch.device, seed: int = 0, library: np.ndarray | None = None, progress=None,
               supervised=None, mixing: str = "linear", scale_std: float = 0.0, stages=STAGES,
               engine: Engine | None = None, scene=None) -> Engine:
    """Fit the three networks to a scene (semi-blind by default), or some of them.

    Args:
        Y_sample: sample of the scene's pixels (N, B), data units (used for scaling).
        E0: initial endmembers (P, B), data units.
        names: endmember names.
        noise_sigma: per-band noise std (B,), data units.
        cfg: :class:`EngineConfig`.
        device: torch device.
        seed: seed of every random draw.
        library: optional library spectra (K, B) for the endmember diffusion.
        progress: progress protocol.
        supervised: optional ``(cube (B,H,W), A_ref (P,H,W))`` for supervised fitting.
        mixing: ``linear`` or ``scaled`` (:mod:`core.deep.robust`).
        scale_std: measured spread of the scene's abundance sums; in the scaled
            model, training patches get that much illumination variability.
        stages: which networks to fit (of :data:`STAGES`); the others keep their
            weights (fresh ones are untrained, and their inference stage is off).
        engine: an engine to go on fitting (a loaded checkpoint: its endmembers,
            scale and mixing model are kept; ``E0``/``names``/``mixing`` are ignored).
        scene: optional windows of the scene ``[(cube, valid), ...]`` (data units) for
            HybridSTU's self-supervised reconstruction term (``fit.scene_weight``).

    Returns:
        The fitted :class:`Engine`; ``engine.trained`` lists its fitted stages.
    """
    from .training import (PatchGenerator, fit_hybrid, fit_unet1d, fit_unet2d, scene_patches, supervised_batches,
                           training_pool)

    stages = [st for st in STAGES if st in set(stages)]
    prog = ensure(progress)
    seed_everything(seed)
    if engine is None:
        scale = float(np.mean(E0)) if np.mean(E0) > 0 else 1.0
        eng = Engine(E0.shape[1], E0, names, cfg, scale, device)
        eng.set_prior(mixing, noise_sigma)
    else:
        eng, E0, scale, mixing = engine, engine.E, engine.scale, engine.mixing
        eng.cfg.fit = cfg.fit
    preset = RefineConfig.from_dict(cfg.refine)
    fc = FitConfig.from_dict(cfg.fit)
    if mixing == SCALED:
        fc.illumination = float(np.clip(scale_std, fc.illumination, 0.3))
    E_n = E0 / scale
    gen = PatchGenerator(E_n, noise_sigma / scale, fc, seed=seed)
    batches = None
    if supervised is not None:
        cube, A_ref = supervised
        batches = supervised_batches(cube / scale, A_ref, E_n, fc.patch, seed=seed)
    share = {"hybridstu": 50.0, "abundance-diffusion": 35.0, "endmember-diffusion": 15.0}
    total, done = sum(share[st] for st in stages) or 1.0, 0.0

    def part(stage):
        nonlocal done
        sub = prog.sub(100.0 * done / total, 100.0 * (done + share[stage]) / total)
        done += share[stage]
        return sub

    pool = None  # the training patches of both networks, with their prior (drawn once)
    if "hybridstu" in stages or "abundance-diffusion" in stages:
        pool = training_pool(gen, fc, eng.hybrid, device, batches, seed=seed)
    if "hybridstu" in stages:
        prog.info("fitting HybridSTU")
        eng.hybrid.correction.fill_(1.0)  # (re)fitted: the gate decides afresh
        own = None
        if scene and fc.scene_weight > 0 and batches is None:
            own = scene_patches([(c / scale, v) for c, v in scene], fc.patch, seed=seed)
        fit_hybrid(eng.hybrid, gen, fc, device, part("hybridstu"), scene=own, pool=pool)
    if "abundance-diffusion" in stages:
        prog.info("fitting the abundance diffusion (ResUNet2D)")
        fit_unet2d(eng.unet2d, eng.hybrid, gen, eng.schedule, fc, device, part("abundance-diffusion"), pool=pool)
        eng.refine_cfg.steps_2d = preset.steps_2d  # (re)fitted: the gate decides afresh
        eng.refine_cfg.start_2d = data_start_step(eng.schedule, E_n, noise_sigma / scale)
        if scene:
            eng.refine_cfg.likelihood_scale = model_misfit(eng, scene)
    if "endmember-diffusion" in stages and fc.unet1d_iters > 0:
        eng.refine_cfg.steps_1d = preset.steps_1d
    # a stage counts as fitted only if it trained (the fast and default presets skip the endmember diffusion)
    fitted = [st for st in stages if st != "endmember-diffusion" or fc.unet1d_iters > 0]
    eng.trained = sorted(set(eng.trained) | set(fitted), key=STAGES.index)
    if "abundance-diffusion" not in eng.trained:
        eng.refine_cfg.steps_2d = 0  # an untrained refinement would only add noise
    if "endmember-diffusion" not in eng.trained:
        eng.refine_cfg.steps_1d = 0
    eng.cfg.refine = eng.refine_cfg.to_dict()
    gate = eng.validation
    if "hybridstu" in stages or "abundance-diffusion" in stages:
        gate = self_validate(eng, gen, batches)
        prog.info(f"self-validation on held-out synthetic patches: {describe_gate(gate)}")
    if "endmember-diffusion" in stages:
        if fc.unet1d_iters > 0:
            prog.info("fitting the endmember diffusion (ResUNet1D)")
        else:
            prog.info("the endmember diffusion is off at this quality (fitted at 'best' only)")
        lib_n = None
        if library is not None and len(library):
            lib_n = library / np.clip(library.mean(axis=1, keepdims=True), 1e-12, None) * 1.0
        rel_noise = float(np.median(noise_sigma) / max(np.mean(E0), 1e-12))
        fit_unet1d(eng.unet1d, E_n, eng.schedule, fc, device, seed=seed + 1, noise=max(0.02, 2 * rel_noise),
                   library=lib_n, progress=part("endmember-diffusion"))
    eng.validation = gate
    return eng


def sure_terms(fn, cubes, E: np.ndarray, sigma: np.ndarray, eps: float = 0.1, seed: int = 0) -> dict:
    """Stein's unbiased estimate of the abundance error of an estimator, on the scene itself: its terms.

    For noisy pixels ``y = x + n`` with ``n ~ N(0, diag σ²)`` and an estimate
    ``h(y)`` of ``Tx`` for a linear map ``T`` (Stein 1981, generalised):
    ``E‖h(y) − Tx‖² = E[‖h(y) − Ty‖² − tr(TΣTᵀ) + 2 Σᵢⱼ Tᵢⱼ σⱼ² ∂hᵢ/∂yⱼ]``.
    The divergence term comes from one random probe (Monte-Carlo SURE,
    Ramani et al. 2008): ``≈ (T(σ ⊙ b))ᵀ (h(y + ε σ ⊙ b) − h(y)) / ε`` with
    ``b ~ N(0, I)``. An estimator that follows the noise (close to ``Ty``,
    large divergence) is charged for it, so estimators of different kinds
    (least squares, networks, diffusion) can be compared on the scene they
    are to unmix, without a reference.

    Here ``h = a``, ``T = (EEᵀ)⁻¹E``: the error of the abundances against the least-squares
    abundances of the noise-free pixel (the true ones when the endmembers are right). With many,
    similar endmembers an abundance error can barely change the spectrum, so a signal-space SURE
    (``T = I``, the error of the reconstructed spectra) would not rank such estimators as the
    abundance error does; nor could it judge endmember sets (docs/EXPERIMENTS.md).

    Args:
        fn: ``fn(cube (B, h, w), valid (h, w)) -> A (P, h, w)``, deterministic.
        cubes: ``[(cube, valid), ...]`` windows of the scene, data units.
        E: endmembers (P, B), data units.
        sigma: per-band noise std (B,), data units.
        eps: probe size in noise standard deviations.
        seed: seed of the probe.

    Returns:
        ``{"h": (P, N) the estimate at the windows' valid pixels, "div": its divergence term,
        "Ty": (P, N) the least-squares abundances of the pixels, "trace": tr(TΣTᵀ)}``: the
        terms :func:`sure_of` makes the risk of, and that estimators run with the same ``seed``
        (the same probes) share but for ``h`` and ``div``, so blends of them can be scored
        (:func:`blend_weight`).
    """
    E = np.asarray(E, np.float64)
    sig = np.asarray(sigma, np.float64)
    T = np.linalg.pinv(E @ E.T) @ E  # pinv: degenerate E (a constant image)
    rng = np.random.default_rng([seed, 0x5E5E])  # a stream of its own: a probe equal to the noise biases it
    hs, tys, div = [], [], 0.0
    for cube, valid in cubes:
        y = cube[:, valid].astype(np.float64)
        h = np.asarray(fn(cube, valid), np.float64)[:, valid]
        probe = rng.standard_normal(cube.shape).astype(np.float32)
        moved = cube + (eps * sig[:, None, None]).astype(np.float32) * probe
        h2 = np.asarray(fn(moved, valid), np.float64)[:, valid]
        div += float(np.sum((T @ (sig[:, None] * probe[:, valid])) * (h2 - h))) / eps
        hs.append(h)
        tys.append(T @ y)
    P = E.shape[0]
    cat = (lambda parts: np.concatenate(parts, axis=1)) if hs else (lambda parts: np.zeros((P, 0)))
    return {"h": cat(hs), "div": div, "Ty": cat(tys), "trace": float(np.sum((T * sig[None, :]) ** 2))}


def sure_of(terms: dict) -> float:
    """Stein's unbiased risk from :func:`sure_terms`: the estimated mean squared abundance error per
    pixel and endmember."""
    h, ty = terms["h"], terms["Ty"]
    total = float(np.sum((h - ty) ** 2)) - ty.shape[1] * terms["trace"] + 2.0 * terms["div"]
    return total / max(h.size, 1)


def blend_weight(h_a: np.ndarray, h_b: np.ndarray, target: np.ndarray, extra: float = 0.0) -> float:
    """The weight ``c`` in [0, 1] minimising ``‖h_a + c (h_b − h_a) − target‖² + 2 c · extra``.

    With ``target`` the truth (synthetic patches) and ``extra = 0`` it is the blend of two
    estimates with the least squared error; with ``target = Ty`` and ``extra`` the difference of
    the two divergence terms (:func:`sure_terms`), the one with the least SURE (the SURE of a blend
    is that quadratic in ``c``, the divergence being linear in the estimator; Luisier, Blu & Unser's
    SURE-LET, 2007). 0 when the two estimates agree.
    """
    d = h_b - h_a
    dd = float(np.sum(d * d))
    if dd <= 0.0:
        return 0.0
    return float(np.clip(-(float(np.sum((h_a - target) * d)) + extra) / dd, 0.0, 1.0))


def _blend_terms(a: dict, b: dict, c: float) -> dict:
    """:func:`sure_terms` of the blend ``a + c (b − a)`` (both from the same probes)."""
    return {**a, "h": a["h"] + c * (b["h"] - a["h"]), "div": a["div"] + c * (b["div"] - a["div"])}


#: a learned stage stays on only if its SURE on the scene is this much (relative) below the stage before it
SCENE_GATE_MARGIN = 0.02
#: the scene SURE judges only where the prior misfits the scene by at most this much (``likelihood_scale``,
#: :func:`model_misfit`): beyond it the data are not the model plus the estimated noise (within-material
#: variability: 2.0 and 3.4 on the 5 % and 10 % scenes, 1.0 on the scenes of fixed spectra). The
#: misfit then inflates every stage's risk alike (0.046 where the true abundance MSE is 0.0025), no
#: stage can clear a relative margin, and the synthetic gate decides (docs/EXPERIMENTS.md)
SURE_MAX_MISFIT = 1.5


def _stage_on(eng: Engine, kind: str) -> bool:
    """Whether a learned stage runs (``hybrid``: HybridSTU's correction; ``refined``: the sampler)."""
    return float(eng.hybrid.correction) > 0 if kind == "hybrid" else eng.refine_cfg.steps_2d > 0


class _Judge(NamedTuple):
    """How a gate scores its stages: ``risk(x)``, the blend weight of least risk ``weight(a, b)``
    and the blend ``mix(a, b, w)`` of two stages' outputs ``x`` (whatever the gate measures them by)."""

    risk: Callable
    weight: Callable
    mix: Callable


def _blend_stages(eng: Engine, kinds, cur, run, judge: _Judge, out: dict, margin: float | None) -> None:
    """Each learned stage of ``kinds`` (``hybrid``, ``refined``) in turn: run at full weight
    (``run(kind)``), blended with the estimate so far (``cur``) by the weight of least risk, and kept
    at that weight only if the blend lowers the risk by ``margin`` (None: kept whatever the margin).
    The stages' risks, weights and blended risks go into ``out``, their weights into the engine."""
    for kind in kinds:
        _set_stage(eng, kind, 1.0)
        t = run(kind)
        w = judge.weight(cur, t)
        mixed = judge.mix(cur, t, w)
        out[kind], out["weights"][kind], out["blended"][kind] = judge.risk(t), w, judge.risk(mixed)
        # a stage must lower the risk by the margin: the simpler one wins ties
        if margin is not None and not out["blended"][kind] < (1.0 - margin) * judge.risk(cur):
            w = 0.0
        _set_stage(eng, kind, w)
        if w > 0.0:
            cur = mixed
    out.update(use_correction=_stage_on(eng, "hybrid"), use_refinement=_stage_on(eng, "refined"))


def _set_stage(eng: Engine, kind: str, weight: float) -> None:
    """Run a learned stage with this blend weight (0: off)."""
    if kind == "hybrid":
        eng.hybrid.correction.fill_(float(weight))
        return
    rc = eng.refine_cfg
    rc.blend_2d = float(weight)
    if weight <= 0.0:
        rc.steps_2d = 0
    elif rc.steps_2d <= 0:
        rc.steps_2d = RefineConfig.from_dict(EngineConfig.preset("default").refine).steps_2d
    eng.cfg.refine = rc.to_dict()


@torch.no_grad()
def scene_validate(eng: Engine, cubes, sigma: np.ndarray, seed: int = 0, gate: bool = True) -> dict | None:
    """Second gate, on the scene itself: each learned stage blended with the one before it by the
    weight that minimises the SURE, and kept only if that lowers the SURE by the margin.

    :func:`self_validate` judges the stages on synthetic patches, which can
    miss what they do to the real scene. Here the prior, HybridSTU and
    HybridSTU + posterior sampling are run on windows of the scene and scored
    by their SURE in abundance space (:func:`sure_terms`), an unbiased estimate of their
    abundance error that needs no reference (the same probes for every stage,
    so their differences are what is compared). Each stage's output is blended
    with the stage before it, ``a + w (b − a)`` (a convex blend: it stays on the
    simplex), ``w`` in [0, 1] the SURE-optimal weight (:func:`blend_weight`):
    a stage that helps on part of the scene's error is taken in part. A stage
    is switched off (``w = 0``) when even its best blend does not lower the risk
    by :data:`SCENE_GATE_MARGIN` below the stages before it. Linear mixing model
    only: in the scaled model a per-pixel scale absorbs part of every
    abundance error, and the synthetic gate decides; so it does where the
    prior misfits the scene far beyond noise (:data:`SURE_MAX_MISFIT`). (Why
    abundance space and not signal space: docs/EXPERIMENTS.md.)

    Args:
        eng: fitted engine (its stages' weights are updated in place).
        cubes: ``[(cube, valid), ...]`` windows of the scene, data units.
        sigma: per-band noise std (B,), data units.
        seed: seed of the probes and of the DDIM noise.
        gate: False runs every fitted stage with its SURE-optimal weight, margin or not (also
            those the synthetic gate turned off): the accuracy benchmark's forced-on ablation.

    Returns:
        ``{"prior", "hybrid", "refined": risk of the stage at full weight or None, "weights":
        {"hybrid", "refined": the SURE-optimal blend weight}, "blended": {"hybrid", "refined": the
        risk at that weight}, "margin", "use_correction", "use_refinement"}``, or None when not
        applicable (scaled model, a model misfit beyond :data:`SURE_MAX_MISFIT`, no window).
    """
    if eng.mixing != "linear" or eng.refine_cfg.likelihood_scale > SURE_MAX_MISFIT or not cubes:
        return None
    hyb = eng.hybrid

    def stage(kind):
        def fn(cube, valid):
            if kind == "prior":
                return hyb.prior(eng._prepare(cube, valid))[0].float().cpu().numpy()
            g = torch.Generator().manual_seed(seed)  # the same noise for the probe's two passes
            return eng.abundances(cube, valid, stages=kind, generator=g)
        return fn

    cur = sure_terms(stage("prior"), cubes, eng.E, sigma, seed=seed)
    out = {"prior": sure_of(cur), "hybrid": None, "refined": None, "weights": {}, "blended": {},
           "margin": SCENE_GATE_MARGIN}
    trained = {"hybrid": "hybridstu" in eng.trained, "refined": "abundance-diffusion" in eng.trained}
    kinds = [k for k in ("hybrid", "refined") if _stage_on(eng, k) or (not gate and trained[k])]
    judge = _Judge(sure_of, lambda a, b: blend_weight(a["h"], b["h"], a["Ty"], b["div"] - a["div"]), _blend_terms)
    run = {"hybrid": "hybrid", "refined": "full"}
    _blend_stages(eng, kinds, cur, lambda kind: sure_terms(stage(run[kind]), cubes, eng.E, sigma, seed=seed), judge,
                  out, SCENE_GATE_MARGIN if gate else None)
    return out


@torch.no_grad()
def describe_gate(gate: dict) -> str:
    """A validation gate's decisions in words (the raw risks stay in the report).

    Args:
        gate: ``{"use_correction", "use_refinement", and per-stage risks}``, as from
            :func:`self_validate` or :func:`scene_validate` (with ``weights``: the blends').
    """
    weights = gate.get("weights") or {}

    def kept(key, kind):
        if not gate.get(key):
            return "dropped (it did not lower the error)"
        w = weights.get(kind)
        return "kept" if w is None or w >= 1.0 else f"kept at weight {w:.2f} (blended with the stage before it)"

    return (f"the CNN correction is {kept('use_correction', 'hybrid')}, "
            f"the diffusion refinement is {kept('use_refinement', 'refined')}")


@torch.no_grad()
def self_validate(eng: Engine, gen, batches=None, n_batches: int = 4) -> dict:
    """Blend each fitted stage with the one before it by the weight that minimises the error on
    held-out patches; a stage that does not lower it is switched off.

    Fresh synthetic patches (same generator, unseen draws; or crops of the
    reference in supervised mode) are unmixed by FCLS (the prior), HybridSTU
    and HybridSTU + DDIM refinement. Each stage's output is blended with the
    stage before it by the least-squares weight in [0, 1] (:func:`blend_weight`
    against the truth); at weight 0 the stage is off, so a stage that did not
    learn anything useful on this scene cannot degrade it.

    Returns:
        ``{"fcls", "hybrid", "refined": MSE (the learned stages at full weight), "weights",
        "blended": the weights and the MSE at that weight, "use_correction", "use_refinement"}``.
    """
    draw = batches or gen.batch
    data = [draw(8) for _ in range(n_batches)]
    hyb = eng.hybrid
    truth = np.concatenate([A for _, A, _ in data])  # (patches, P, h, w)

    def run(kind):  # the stage's abundances of every patch, in the order of ``truth``
        parts = []
        for Y, _, _ in data:
            if kind == "prior":
                parts.append(hyb.prior(torch.from_numpy(Y).to(eng.device)).float().cpu().numpy())
            elif kind == "hybrid":
                parts.append(hyb(torch.from_numpy(Y).to(eng.device)).float().cpu().numpy())
            else:
                g = torch.Generator().manual_seed(0)
                parts.append(np.stack([eng.abundances(Y[i] * eng.scale, generator=g) for i in range(Y.shape[0])]))
        return np.concatenate(parts)

    judge = _Judge(lambda h: float(np.mean((h - truth) ** 2)), lambda a, b: blend_weight(a, b, truth),
                   lambda a, b, w: a + w * (b - a))
    cur = run("prior")
    out = {"fcls": judge.risk(cur), "hybrid": 0.0, "refined": 0.0, "weights": {}, "blended": {}}
    _blend_stages(eng, [k for k in ("hybrid", "refined") if _stage_on(eng, k)], cur, run, judge, out, 0.0)
    return out
