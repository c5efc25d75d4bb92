"""Semi-blind unmixing: the endmembers and the abundances re-estimated alternately.

After the abundance stages are fitted and gated, each round unmixes windows of the scene with
the engine's least-squares prior (the start of its learned stages, which then run with the new
endmembers), re-estimates the endmembers from those abundances (least squares on the
bilateral-filtered pixels, weighted towards near-pure pixels; in the scaled model from the
per-pixel coefficients, the abundances times each pixel's scale), refines them with the endmember
diffusion (ResUNet1D, trained on the library resampled to the sensor) where the quality fits it, and keeps them only
if the scene says they explain it better.

The judge is the signal-space SURE of the least-squares prior with each set of endmembers
(:func:`core.deep.engine.sure_risk`): an unbiased estimate of how far the reconstructed spectra
are from the noise-free ones, which needs no reference. Endmembers that miss the data cloud
leave a bias; a simplex larger than the data lets the abundances follow the noise, which its
divergence term charges for: both raise it. A round that does not lower it by
:data:`JOINT_MARGIN` of the noise variance (its natural unit: the risk of a good prior is a
small fraction of it, and the estimate can even fall below 0) is dropped and the alternation
stops (the simpler choice, the endmembers already there, wins ties). Each endmember set is
judged on the pixels it was estimated from; a pixel's share in a least-squares fit over tens
of thousands is negligible, so the SURE is treated as if the endmembers were fixed.

A data-fit judge is only valid where the mixing model fits the scene: :func:`core.deep.run.fit_scene`
runs the rounds on the linear model without within-material variability. Where the start chose
representative spectra or the scaled model, endmembers that fit the data better explain the
variability instead, and the SURE kept rounds that raised the aRMSE (docs/EXPERIMENTS.md).
"""

from __future__ import annotations

import numpy as np
import torch

from .engine import Engine, sure_risk
from .robust import bilateral, pixel_scale

#: an endmember update stays only if it lowers the scene's signal SURE by this share of the mean
#: noise variance per band
JOINT_MARGIN = 0.01


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


def prior_risk(engine: Engine, cubes, E: np.ndarray, sigma: np.ndarray, seed: int = 0) -> float:
    """Signal-space SURE of the engine's least-squares prior with endmembers ``E`` on ``cubes``
    (the engine's endmembers are restored afterwards)."""
    keep = engine.E.copy()
    engine.E = E
    try:
        def prior(cube, valid):
            with torch.no_grad():
                return engine.hybrid.prior(engine._prepare(cube, valid))[0].double().cpu().numpy()

        return sure_risk(prior, cubes, E, sigma, scaled=engine.mixing != "linear", seed=seed, space="signal")
    finally:
        engine.E = keep


def joint_endmembers(engine: Engine, cubes, sigma: np.ndarray, rounds: int, seed: int = 0,
                     generator: torch.Generator | None = None, gate: bool = True, progress=None) -> dict:
    """Alternate abundances and endmembers for up to ``rounds`` rounds (see module doc).

    Args:
        engine: fitted engine; its endmembers are updated in place when a round is kept.
        cubes: ``[(cube, valid), ...]`` windows of the scene, data units.
        sigma: per-band noise std (B,), data units.
        rounds: most endmember updates.
        seed: seed of the SURE probes.
        generator: the abundance sampler's random stream.
        gate: False keeps every round whatever its risk (the benchmark's forced-on ablation).
        progress: checked between rounds.

    Returns:
        ``{"risks": [risk of the start, then of each round tried], "kept": rounds kept,
        "margin": JOINT_MARGIN, "margin_abs": the same in data units², "judge": ...}``.
    """
    from ..progress import ensure

    prog = ensure(progress)
    best = prior_risk(engine, cubes, engine.E, sigma, seed)
    step = JOINT_MARGIN * float(np.mean(np.asarray(sigma, np.float64) ** 2))
    out = {"risks": [best], "kept": 0, "margin": JOINT_MARGIN, "margin_abs": step,
           "judge": "signal-space SURE of the least-squares prior on the scene's windows (per pixel and "
                    "band, data units²); margin: a share of the mean noise variance"}
    for _ in range(max(0, int(rounds))):
        prog.check()
        E_new = endmember_step(engine, cubes, generator)
        risk = prior_risk(engine, cubes, E_new, sigma, seed)
        out["risks"].append(risk)
        if gate and not risk < best - step:
            break
        engine.E, best = E_new, risk
        out["kept"] += 1
    return out
