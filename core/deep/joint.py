"""Semi-blind unmixing: the endmembers and the abundances re-estimated alternately.

After the abundance stages are fitted and gated, each round unmixes windows of the scene with
the engine's least-squares prior (the start of its learned stages, which then run with the new
endmembers), re-estimates the endmembers from those abundances (least squares on the
bilateral-filtered pixels, weighted towards near-pure pixels; in the scaled model from the
per-pixel coefficients, the abundances times each pixel's scale), and refines them with the endmember
diffusion (ResUNet1D, trained on the library resampled to the sensor) where the quality fits it.

The judge is a simulation of the scene (:func:`simulate`): the least-squares prior's abundance
maps of its windows, mixed by the engine's endmembers, plus the scene's noise, or, in the scaled
model, the scene's own residuals moved between pixels of the same kind. On it the
truth is known. The engine's start (:func:`core.deep.robust.robust_endmembers`, or whatever
``start`` is given) runs on the simulation, then the rounds; the number of rounds that brings the
simulation's abundances closest to their truth runs on the scene, if it lowers that error by
:data:`JOINT_MARGIN` and the alternation does not run away (its last round still below the start;
else none: the simpler choice, the start, wins ties).

A data-fit judge cannot see what the rounds change. The signal-space SURE of the prior with each
endmember set agreed in sign with the true change on 3 of 7 linear scenes: endmembers that
differ within the data's span reconstruct the pixels equally well (docs/EXPERIMENTS.md).

:func:`core.deep.run.fit_scene` runs the rounds wherever the start found no within-material
variability, in the linear model (Gaussian noise in the simulation) and in the scaled model (the
scene's residuals: illumination). Under variability the residual bootstrap could not tell: it
kept two rounds on a held-out 5 % scene where they raised the aRMSE by 23 %.
"""

from __future__ import annotations

import numpy as np
import torch

from .engine import Engine
from .robust import bilateral, pixel_scale

#: the rounds run on the scene only if they lower the simulation's pooled abundance error by this
#: share (half a per cent: the verdict's spread over the simulation's noise draws)
JOINT_MARGIN = 0.005


@torch.no_grad()
def endmember_step(engine: Engine, cubes, generator: torch.Generator | None = None) -> np.ndarray:
    """One endmember update on windows ``[(cube, valid), ...]``: weighted least squares of the
    bilateral-filtered pixels on the least-squares prior's abundances of them.

    From the learned stages' own abundances (forced on), the rounds raised the aRMSE on 9 of 12
    scenes of ``benchmarks/accuracy.py``; from the prior's they lower it on 8 (docs/EXPERIMENTS.md).
    The filtered pixels are what the prior was computed from. ``generator``: the endmember
    diffusion's random stream, where it refines the update.

    Returns:
        E (P, B) in data units (the engine's endmembers are not changed).
    """
    Ys, Cs, Ws = [], [], []
    for cube, valid in cubes:
        x = engine._prepare(cube, valid)
        filt = bilateral(x, engine.hybrid.noise)
        A = engine.hybrid.unmix(filt)[0].double().cpu().numpy()
        y = filt[0].double().cpu().numpy()[:, valid].T * engine.scale
        a = A[:, valid].T
        coef = a
        if engine.mixing != "linear":  # y ≈ s·aE: the per-pixel coefficients s·a reconstruct it
            coef = a * pixel_scale(a @ engine.E, y, axis=1)
        Ys.append(y)
        Cs.append(coef)
        Ws.append(a.max(axis=1) ** 2)  # near-pure pixels say most about their endmember
    w = np.concatenate(Ws)[:, None]
    E_ls = engine.endmembers_from_abundances(np.concatenate(Ys) * w, np.concatenate(Cs) * w)
    return engine.refine_endmembers(E_ls, generator=generator)


@torch.no_grad()
def prior_maps(engine: Engine, cube, valid) -> np.ndarray:
    """The engine's least-squares prior of one window (B, h, w) in data units: A (P, h, w) float64."""
    return engine.hybrid.prior(engine._prepare(cube, valid))[0].double().cpu().numpy()


def simulate(engine: Engine, cubes, sigma: np.ndarray, seed: int = 0, residuals: bool = False):
    """A copy of the windows ``cubes`` with known truth: the engine's least-squares prior maps of
    them mixed by its endmembers (times each pixel's scale in the scaled model), plus noise.

    The noise is Gaussian of std ``sigma`` (B,) (data units) where the model is taken to fit the
    scene. With ``residuals`` (the scaled model: the scene misfits the linear one beyond noise)
    it is the scene's own residuals instead, each moved to another pixel of the same
    kind (the same dominant endmember and purity quartile), so the simulation misfits the model as
    the scene does (a residual bootstrap). Where the model fits, those residuals would also carry
    the endmembers' own error, which the rounds are there to remove.

    Returns:
        ([(cube float32, valid), ...], [A (P, h, w) float64, ...]).
    """
    rng = np.random.default_rng([seed, 0x51A])
    sims, truth = [], []
    for cube, valid in cubes:
        A = prior_maps(engine, cube, valid)
        y = np.asarray(cube, np.float64)[:, valid].T
        a = A[:, valid].T
        clean = a @ engine.E
        if engine.mixing != "linear":
            clean *= pixel_scale(clean, y, axis=1).reshape(-1, 1)
        if residuals:
            res = y - clean
            kind = a.argmax(axis=1) * 4 + np.minimum((a.max(axis=1) * 4).astype(int), 3)
            for k in np.unique(kind):
                idx = np.flatnonzero(kind == k)
                res[idx] = res[rng.permutation(idx)]
        else:
            res = np.asarray(sigma, np.float64)[None, :] * rng.standard_normal(clean.shape)
        Y = np.array(cube, np.float32)
        Y[:, valid] = (clean + res).T
        sims.append((Y, valid))
        truth.append(A)
    return sims, truth


def abundance_error(engine: Engine, cubes, truth, E: np.ndarray, E_true: np.ndarray) -> float:
    """Pooled RMSE of the least-squares prior's abundances of ``cubes`` with endmembers ``E``
    against ``truth`` (valid pixels; endmembers matched to ``E_true`` by SAD). Sets ``engine.E``."""
    from ..classical.metrics import match_endmembers

    engine.E = E
    perm = match_endmembers(E_true, E)
    se, n = 0.0, 0
    for (cube, valid), A in zip(cubes, truth):
        se += float(((prior_maps(engine, cube, valid)[perm] - A)[:, valid] ** 2).sum())
        n += int(valid.sum()) * A.shape[0]
    return float(np.sqrt(se / max(n, 1)))


def robust_start(cubes, p: int, seed: int = 0) -> np.ndarray:
    """The engine's start on windows: :func:`core.deep.robust.robust_endmembers`' endmembers."""
    from .robust import robust_endmembers

    return robust_endmembers(cubes, p, seed=seed)["E"]


def joint_endmembers(engine: Engine, cubes, sigma: np.ndarray, rounds: int, seed: int = 0,
                     generator: torch.Generator | None = None, gate: bool = True, progress=None,
                     start=robust_start, model_error: bool = False) -> dict:
    """Up to ``rounds`` endmember updates (see module doc), as many as the simulation keeps.

    Args:
        engine: fitted engine; its endmembers are updated in place when rounds are kept.
        cubes: ``[(cube, valid), ...]`` windows of the scene, data units.
        sigma: per-band noise std (B,), data units.
        rounds: most endmember updates.
        seed: seed of the simulation's noise and start.
        generator: the endmember diffusion's random stream.
        gate: False runs every round without the simulation (the benchmark's forced-on ablation).
        progress: checked between rounds.
        start: ``(cubes, p, seed) -> E (p, B)``, the start the engine's endmembers came from.
        model_error: the model misfits the scene beyond noise (the scaled model): the simulation
            then carries the scene's residuals (:func:`simulate`).

    Returns:
        ``{"risks": [the simulation's error from the start, then after each round] (empty without
        the gate), "kept": rounds run on the scene, "margin": JOINT_MARGIN, "judge": ...}``.
    """
    from ..progress import ensure

    prog = ensure(progress)
    noise = "its residuals moved between pixels of the same kind" if model_error else "its noise"
    out = {"risks": [], "kept": int(rounds), "margin": JOINT_MARGIN,
           "judge": f"a simulation of the scene (the prior's maps mixed by the endmembers, plus {noise}): the "
                    "pooled abundance error after the engine's start and each round; margin: its relative drop"}
    E_scene = engine.E.copy()
    if gate:
        sims, truth = simulate(engine, cubes, sigma, seed, residuals=model_error)
        E = np.asarray(start(sims, engine.P, seed), np.float64)
        try:
            out["risks"] = [abundance_error(engine, sims, truth, E, E_scene)]
            for _ in range(max(0, int(rounds))):
                prog.check()
                engine.E = E
                E = endmember_step(engine, sims, generator)
                out["risks"].append(abundance_error(engine, sims, truth, E, E_scene))
        finally:
            engine.E = E_scene
        risks = out["risks"]
        best = int(np.argmin(risks[1:])) + 1 if len(risks) > 1 else 0
        # kept only if it lowers the error by the margin and the alternation does not run away from the
        # truth within the rounds tried (its last round still below the start)
        out["kept"] = best if best and risks[best] < (1.0 - JOINT_MARGIN) * risks[0] and risks[-1] < risks[0] else 0
    for _ in range(out["kept"]):
        prog.check()
        engine.E = endmember_step(engine, cubes, generator)
    return out
