"""The deep engine on a raster (imported lazily: it needs torch).

``fit_scene``: sample → P → E0 (robust start, library names) → noise estimate →
fit the networks → gate each stage on the scene → the semi-blind stage on a few
windows (the start's bias correction by indirect inference, kept where it stands out of its own
noise, then rounds of abundances → E by constrained least squares → ResUNet1D refinement where
fitted, kept only if they lower the abundance error on a simulation of the scene; :mod:`core.deep.joint`).
``run_full``: ``fit_scene`` (or a saved model) → tiled, streamed abundance pass
→ outputs. ``train_model``: ``fit_scene`` → checkpoint. Both hold the
one-engine-at-a-time lock (:func:`core.run.context.engine_turn`) while they run.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from ..errors import UnmixError
from ..io.raster import RasterReader, RasterWriter, read_cube
from ..options import STAGES
from ..progress import CancelOnly, ensure
from ..run.context import RunContext, engine_turn
from ..run.inputs import ROBUST_WINDOW_PIXELS, SCENE_WINDOW_PIXELS, first_pixels, open_input, window_cubes
from ..run.outputs import check_outputs, check_solved, finish_outputs, reconstruction_rmse
from ..run.start import estimate_start, library_names, load_library_for
from ..run.distributed import maybe_session, maybe_tile_runner
from ..run.tiling import process_tiled
from .checkpoint import check_compatible, load_checkpoint, save_checkpoint
from .engine import Engine, EngineConfig, RefineConfig, fit_engine, pick_device, seed_everything


@dataclass
class SceneFit:
    """What fitting the engine to a scene found besides the engine itself.

    Attributes:
        p: endmember count; p_est: HySime's estimate or None; lib: the resampled library or None;
        E0: the initial endmembers (P, B); generator: the run's torch generator (seeded);
        lib_match / angles: matched library spectra (P, B) and angles (P,), or None;
        noise_sigma: per-band noise std (B,); device: where the engine runs;
        validation: the gates' decisions; mixing: "linear" or "scaled"; variability: the start
        found within-material variability (representative endmembers);
        scale_ratio / scale_share / model_excess: the robust start's tests (None without it;
        scale_share also None when the sums vary no more than noise makes them);
        cores_replaced: representative endmembers moved off a material another one already held;
        timings: seconds per phase.
    """

    p: int
    p_est: Optional[int] = None
    lib: object = None
    E0: Optional[np.ndarray] = None
    generator: Optional[torch.Generator] = None
    lib_match: Optional[np.ndarray] = None
    angles: Optional[np.ndarray] = None
    noise_sigma: Optional[np.ndarray] = None
    device: str = "cpu"
    validation: Optional[dict] = None
    mixing: str = "linear"
    variability: bool = False
    scale_ratio: Optional[float] = None
    scale_share: Optional[float] = None
    model_excess: Optional[float] = None
    cores_replaced: int = 0
    start_check: Optional[dict] = None
    timings: dict = field(default_factory=dict)


def set_threads() -> None:
    """Use the cores we have (torch defaults can oversubscribe small machines).

    ``DIFFUNMIX_THREADS`` overrides the count (e.g. 1 per process when several
    runs share a machine: OpenMP threads that outnumber free cores spin-wait).
    """
    env = os.environ.get("DIFFUNMIX_THREADS", "")
    n = int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


#: windows computed at once in process (each holds its cube and the networks' activations in memory)
MAX_TILE_THREADS = 8


@contextlib.contextmanager
def tile_threads(engine: Engine):
    """How many windows the tile phase computes at once in this process (:func:`process_tiled`'s
    ``threads``): on the CPU, one window per engine thread (at most :data:`MAX_TILE_THREADS`, the
    engine's threads shared among them), each on a single torch thread where there are no more
    (the engine's small convolutions gain less from torch's threads than whole windows side by
    side do); torch's thread count is restored on exit. One on a GPU."""
    n = torch.get_num_threads()
    if engine.device.type != "cpu" or n <= 1:
        yield 1
        return
    k = min(n, MAX_TILE_THREADS)
    torch.set_num_threads(max(1, n // k))
    try:
        yield k
    finally:
        torch.set_num_threads(n)


def calibrate(engine: Engine, cubes, lib, seed: int = 0, progress=None, generator=None, gate: bool = True):
    """The semi-blind stage: the start's bias correction where it stands out of its noise, then endmembers
    and abundances alternated on windows of the scene, as far as a simulation of the scene shows to help
    (:func:`core.deep.joint.joint_endmembers`); the endmembers are then named from the library.

    Args:
        cubes: ``[(cube, valid), ...]`` windows of the scene, data units.
        gate: False keeps the correction and every round (the accuracy benchmark's forced-on column).

    Returns:
        (names, matched library spectra or None, library angles or None, the stage's record)
    """
    from .joint import joint_endmembers

    rc = engine.refine_cfg
    record = joint_endmembers(engine, cubes, engine.noise_sigma(), 1 + rc.alternations, seed=seed,
                              generator=generator, gate=gate, progress=progress,
                              model_error=engine.mixing != "linear")
    match, angles = None, None
    if lib is not None:
        engine.names, match, angles = library_names(engine.E, lib)
    return engine.names, match, angles, record


def gate_on_scene(engine, cubes, sigma, seed, prog) -> None:
    """Keep a learned stage only if it lowers the SURE on the scene's own windows
    (:func:`core.deep.engine.scene_validate`); the decisions go into ``engine.validation``."""
    from .engine import SURE_MAX_MISFIT, describe_gate, scene_validate

    sure = scene_validate(engine, first_pixels(cubes, SCENE_WINDOW_PIXELS), sigma, seed=seed)
    misfit = engine.refine_cfg.likelihood_scale
    if sure is None and engine.mixing == "linear" and misfit > SURE_MAX_MISFIT:
        prog.info(f"scene validation skipped: the prior misfits the scene {misfit:.1f}× the noise (model error, "
                  "which SURE would count against every stage alike); the synthetic gate decides")
    if sure is not None:
        prog.info(f"scene validation (SURE on the scene's own windows): {describe_gate(sure)}")
        engine.validation = {**(engine.validation or {}), "scene_sure": sure,
                             "use_correction": sure["use_correction"], "use_refinement": sure["use_refinement"]}


def fit_scene(rc: RunContext, reader, supervised=None, calibrate_endmembers=True, stages=STAGES,
              draw_endmembers=False):
    """Fit an engine to the scene of ``rc`` (see module doc).

    E0 and the mixing model come from :func:`core.deep.robust.robust_endmembers`
    (plain VCA with the linear model when it cannot run); :func:`gate_on_scene`
    then keeps a learned stage only if it lowers the scene's SURE. With
    ``calibrate_endmembers=False`` the engine keeps E0 (the accuracy benchmark's
    ablation). With ``draw_endmembers`` (an uncertainty is asked for, or a model is saved for
    later runs) the engine also gets the block bootstrap's endmember draws
    (:func:`core.deep.robust.endmember_draws`), unless the endmembers come from a reference.

    Returns:
        (engine, :class:`SceneFit`)
    """
    from .robust import noise_sigma

    opts, prog, bands = rc.options, rc.progress, rc.bands
    t0 = time.perf_counter()
    device = pick_device(opts.device)
    set_threads()
    gen = seed_everything(opts.seed)
    st = estimate_start(reader, rc.input_path, opts, rc.wavelengths_nm, rc.fwhm_nm, len(bands), prog.sub(0, 4))
    Y, p, lib, E0, names = st.Y, st.p, st.lib, st.E, st.names
    lib_match, angles = st.lib_match, st.angles
    mixing, robust = "linear", None
    cubes = window_cubes(reader, ROBUST_WINDOW_PIXELS)  # read once: robust start and scene gate
    robust = _robust_start(cubes, p, opts.seed, prog)
    if robust is not None:
        E0, mixing, sigma = robust["E"], robust["mixing"], robust["sigma"]
        if lib is not None:
            names, lib_match, angles = library_names(E0, lib)
    else:  # the robust start estimates the noise on its windows; otherwise from the sample
        sigma = noise_sigma(Y)
    if supervised is not None:
        # the reference abundances fix the endmembers and their order: the spectra that explain the
        # scene with them (least squares), band k of the reference being endmember k
        cube, A_ref = supervised
        ok = cube.any(axis=0) & (A_ref.sum(axis=0) > 0.5)  # nodata arrives as zeros (spectrum or abundances)
        E0 = Engine.endmembers_from_abundances(cube[:, ok].T, A_ref[:, ok].T)
        names, lib_match, angles = library_names(E0, lib)
        prog.info("supervised: endmembers from the reference abundances (least squares), in their band order")
    t_est = time.perf_counter() - t0
    cfg = EngineConfig.preset(opts.quality)
    engine = fit_engine(Y, E0, names, sigma, cfg, device, seed=opts.seed,
                        library=None if lib is None else lib.spectra, progress=prog.sub(4, 80),
                        supervised=supervised, mixing=mixing,
                        scale_std=0.0 if robust is None else robust["scale_std"], stages=stages,
                        scene=first_pixels(cubes, SCENE_WINDOW_PIXELS))
    if supervised is None:  # with a reference, the supervised gate is the better judge
        gate_on_scene(engine, cubes, sigma, opts.seed, prog)
    t_fit = time.perf_counter() - t0 - t_est
    variability = bool(robust and robust["variability"])
    if calibrate_endmembers and engine.refine_cfg.calibrate and supervised is None and not variability:
        matched = _semi_blind(engine, first_pixels(cubes, SCENE_WINDOW_PIXELS), lib, opts.seed, prog, gen)
        if matched is not None:
            lib_match, angles = matched
    t_draw = time.perf_counter()
    if draw_endmembers and supervised is None:
        from .robust import endmember_draws

        prog.info("endmember uncertainty: re-estimating the endmembers on block-bootstrap resamples of the scene")
        engine.E_draws = endmember_draws(cubes, engine.E, seed=opts.seed, progress=prog)
    t_draw = time.perf_counter() - t_draw
    fit = SceneFit(p=p, p_est=st.p_est, lib=lib, E0=E0, generator=gen,
                   lib_match=lib_match if lib is not None else None,
                   angles=angles if lib is not None else None, noise_sigma=sigma, device=str(device),
                   validation=getattr(engine, "validation", None), mixing=engine.mixing, variability=variability,
                   scale_ratio=None if robust is None else robust["scale_ratio"],
                   scale_share=None if robust is None else robust["scale_share"],
                   cores_replaced=0 if robust is None else robust["cores_replaced"],
                   model_excess=None if robust is None else robust["model_excess"],
                   start_check=None if robust is None else robust.get("start_check"),
                   timings={"estimation_s": t_est, "fitting_s": t_fit,
                            "calibration_s": time.perf_counter() - t0 - t_est - t_fit - t_draw,
                            "endmember_draws_s": t_draw})
    prog.set_progress(85)
    return engine, fit


def _robust_start(cubes, p: int, seed: int, prog):
    """:func:`core.deep.robust.robust_endmembers` on the scene's windows, its choices reported."""
    from .robust import robust_endmembers

    prog.info("noise-robust endmembers: denoised VCA, variability test, minimum-volume simplex or "
              "representative spectra, scale test")
    robust = robust_endmembers(cubes, p, seed=seed, progress=prog)
    if robust is not None:
        share = "" if robust["scale_share"] is None else \
            f", a per-pixel scale explains {100 * robust['scale_share']:.0f} % of the linear misfit"
        prog.info(f"mixing model: {robust['mixing']} (abundance-sum spread {robust['scale_ratio']:.1f}× noise{share}); "
                  f"energy outside the {p}-endmember subspace {robust['model_excess']:.2f}× noise: "
                  + ("within-material variability, representative endmembers" if robust["variability"]
                     else "no within-material variability"))
    return robust


def _semi_blind(engine: Engine, cubes, lib, seed: int, prog, gen):
    """The gated semi-blind stage of :func:`fit_scene` (:func:`calibrate`), recorded in
    ``engine.validation``; returns the library match of the kept endmembers, or None."""
    prog.info("semi-blind: the start's bias correction (linear model, where it stands out of its noise), then "
              "re-estimating the endmembers from the least-squares prior's abundances, as far as a simulation of "
              "the scene shows to help")
    _, match, angles, joint = calibrate(engine, cubes, lib, seed=seed, progress=prog, generator=gen)
    engine.validation = {**(engine.validation or {}), "joint_endmembers": joint}
    if joint["bias_noise"] is not None:
        prog.info(f"start's bias correction {'kept' if joint['bias_corrected'] else 'dropped'} (its noise is "
                  f"{joint['bias_noise']:.2f} of its energy, at most {joint['bias_noise_max']:.2f} kept)")
    prog.info(f"endmember updates kept: {joint['kept']} (the simulation's abundance error "
              + " → ".join(f"{r:.3g}" for r in joint["risks"]) + ")")
    return None if match is None else (match, angles)


def _json_number(x):
    """A float for report.json, None for none or a non-finite one (∞ is not JSON)."""
    return float(x) if x is not None and np.isfinite(x) else None


def stage_report(engine: Engine, fit: SceneFit) -> list:
    """Each choice the engine made on this scene, its measured risk and whether it ran (report.json).

    Risks: the start check's reconstruction residual in noise units
    (:func:`core.deep.robust.start_check`), the scene SURE of the abundances
    (:func:`core.deep.engine.scene_validate`, linear model) or else the
    self-validation MSE on held-out synthetic patches. A learned stage's output is
    blended with the stage before it by the weight (``weight``) that minimises that
    risk (``blended_risk``; ``risk`` is the stage's at full weight); it runs only if
    that blend beats the stage before it by the gate's margin.
    """
    v = engine.validation or {}
    sure = v.get("scene_sure")
    judge = "scene SURE (abundance MSE)" if sure else "synthetic self-validation (abundance MSE)"
    risk = sure or {"prior": v.get("fcls"), "hybrid": v.get("hybrid"), "refined": v.get("refined")}
    out = []
    if fit.start_check:
        out.append({"stage": "robust start", "ran": fit.start_check["chosen"] != "plain VCA",
                    "judge": "reconstruction residual / noise on pixels the fit did not use",
                    "risk": fit.start_check["fit_ratio"], "margin": fit.start_check["margin"],
                    "chosen": fit.start_check["chosen"]})
    if fit.model_excess is not None:
        out.append({"stage": "representative endmembers (within-material variability)",
                    "ran": fit.start_check is None, "judge": "energy outside the P-subspace / noise",
                    "risk": fit.model_excess, "cores_replaced": fit.cores_replaced})
    if fit.scale_ratio is not None:
        from .robust import MIN_SCALE_SHARE

        out.append({"stage": "scaled mixing model", "ran": engine.mixing != "linear",
                    "judge": "spread of the abundance sums / noise's (> 2), then the share of the linear "
                             f"model's misfit that a per-pixel scale explains (≥ {MIN_SCALE_SHARE})",
                    "risk": fit.scale_ratio, "scale_share": fit.scale_share})
    rc = engine.refine_cfg
    out.append({"stage": "least-squares prior", "ran": True, "judge": judge, "risk": risk.get("prior")})
    blended = (sure or v).get("blended") or {}
    hyb_on = "hybridstu" in engine.trained and float(engine.hybrid.correction) > 0
    out.append({"stage": "hybridstu", "ran": hyb_on, "judge": judge, "risk": risk.get("hybrid"),
                "blended_risk": blended.get("hybrid"), "margin": (sure or {}).get("margin", 0.0),
                "weight": float(engine.hybrid.correction) if hyb_on else 0.0})
    out.append({"stage": "abundance-diffusion", "ran": rc.steps_2d > 0, "judge": judge, "risk": risk.get("refined"),
                "blended_risk": blended.get("refined"), "margin": (sure or {}).get("margin", 0.0),
                "weight": float(rc.blend_2d) if rc.steps_2d > 0 else 0.0, "draws": rc.draws,
                "ddim_steps": rc.steps_2d, "start_step": rc.start_2d})
    joint = v.get("joint_endmembers")
    out.append({"stage": "joint endmembers (semi-blind)",
                "ran": bool(joint and (joint["kept"] > 0 or joint["bias_corrected"])),
                "judge": joint["judge"] if joint else (
                    "off at this quality (fast)" if not rc.calibrate else
                    "not run: representative endmembers (within-material variability), where the simulation "
                    "cannot tell the rounds' effect (docs/EXPERIMENTS.md)" if fit.variability else
                    "not run (supervised, or a saved model)"),
                "risk": joint["risks"] if joint else None, "margin": joint["margin"] if joint else None,
                "rounds_kept": joint["kept"] if joint else 0,
                "bias_corrected": bool(joint and joint["bias_corrected"]),
                "bias_noise": _json_number(joint["bias_noise"]) if joint else None,
                "bias_noise_max": joint["bias_noise_max"] if joint else None,
                "bias_risks": joint["bias_risks"] if joint else None})
    out.append({"stage": "endmember-diffusion", "ran": rc.steps_1d > 0 and "endmember-diffusion" in engine.trained,
                "judge": "off by default (docs/EXPERIMENTS.md)", "risk": None})
    return out


def engine_from_checkpoint(path: str, n_bands: int, wl, device, bands=None) -> Engine:
    ck = load_checkpoint(path)
    meta = ck["meta"]
    check_compatible(meta, n_bands, wl, path, band_indices=bands)
    try:
        cfg = EngineConfig.from_dict(meta["config"])
        eng = Engine(n_bands, ck["E"], meta["names"], cfg, float(meta["scale"]), device)
        eng.load_state(ck["state"])
        eng.trained = [st for st in meta.get("stages", STAGES) if st in STAGES]  # older checkpoints: all
        if meta.get("endmember_draws"):
            eng.E_draws = np.asarray(meta["endmember_draws"], np.float64)
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise UnmixError(f"not a valid DiffUnmix checkpoint (model does not match its config): {path}") from exc
    return eng


def checkpoint_payload(engine: Engine, bands, wl, noise_sigma=()) -> dict:
    """The checkpoint of ``engine`` fitted on ``bands`` (0-based) at wavelengths ``wl``, with the
    fit's per-band noise estimate ``noise_sigma`` (B,)."""
    meta = {"bands": engine.B, "band_indices": [int(b) for b in bands],
            "wavelengths_nm": None if wl is None else [float(w) for w in wl],
            "names": list(engine.names), "scale": engine.scale, "config": engine.cfg.to_dict(),
            "noise_sigma": [float(s) for s in (() if noise_sigma is None else noise_sigma)],
            "stages": list(engine.trained)}
    if engine.E_draws is not None:  # (K, P, B): a few thousand numbers
        meta["endmember_draws"] = np.asarray(engine.E_draws, np.float64).tolist()
    return {"meta": meta, "E": engine.E, "state": engine.state()}


def uncertainty_steps(engine) -> int:
    """DDIM steps of the stochastic refinements drawn for ``--uncertainty``: the engine's own,
    or the default when its self-validation turned the refinement off (the trained ResUNet2D's
    posterior spread is the uncertainty either way; a deterministic stage has none)."""
    return engine.refine_cfg.steps_2d if engine.refine_cfg.steps_2d > 0 else RefineConfig().steps_2d


def tile_generator(seed: int, origin) -> torch.Generator:
    """The random stream of the tile at ``origin`` = (y0, x0): it depends on the seed and the tile's
    position only, so tiles never share noise, and a tile draws the same noise whichever process
    computes it, in any order (in process or on a Dask worker)."""
    key = np.random.SeedSequence([int(seed), int(origin[0]), int(origin[1])]).generate_state(1)[0]
    return torch.Generator(device="cpu").manual_seed(int(key))


@torch.no_grad()
def posterior_parts(engine, cube, valid, n, generator, progress=None):
    """(estimate, draws' std, endmember spread or None), each (P, h, w), from ``n`` posterior draws
    of one tile. The estimate is HybridSTU's blended with the draws' mean as the gates decided
    (:meth:`Engine.refined`: HybridSTU's alone where they turned the sampler off); the endmember
    spread is what the endmember draws add where the engine has them (:meth:`Engine.endmember_spread`).
    The accuracy benchmark's calibration scores these parts."""
    y = engine._prepare(cube, valid)
    A0 = engine.hybrid(y)
    d = engine.posterior_draws(cube, valid, n, generator=generator, progress=progress,
                               steps_2d=uncertainty_steps(engine), y=y, start=A0)
    return engine.refined(A0[0].float().cpu().numpy(), d.mean(axis=0)), d.std(axis=0), engine.endmember_spread(y)


def _posterior(engine, cube, valid, n, generator, progress=None):
    """(estimate (P, h, w), std (P, h, w)) of one tile (:func:`posterior_parts`): the draws' spread
    combined with the endmember draws' by the law of total variance."""
    A, sd, sd_e = posterior_parts(engine, cube, valid, n, generator, progress)
    return A, sd if sd_e is None else np.sqrt(sd ** 2 + sd_e ** 2)


class TileFn:
    """The engine's tile function of :func:`core.run.tiling.process_tiled` (``origin=True``):
    abundances (P), then the reconstruction RMSE (1) if ``residual``, then the std over
    ``uncertainty`` posterior draws (P) if > 0. Picklable (the progress stays behind), so a Dask
    cluster receives it, the engine inside, once per worker."""

    def __init__(self, engine, residual: bool, uncertainty: int, seed: int, progress=None):
        self.engine, self.residual, self.uncertainty, self.seed = engine, residual, uncertainty, seed
        self.progress = progress

    def __getstate__(self):
        return {**self.__dict__, "progress": None}

    def __call__(self, cube, valid, origin):
        """(channels, h, w) of the window at ``origin`` (y0, x0); cube (B, h, w), valid (h, w)."""
        engine = self.engine
        if self.progress is None:  # on a worker: its own thread count (DIFFUNMIX_THREADS)
            set_threads()
        gen = tile_generator(self.seed, origin)
        if self.uncertainty:  # K posterior draws: their mean enters the estimate where the sampler runs
            A, A_std = _posterior(engine, cube, valid, self.uncertainty, gen, self.progress)
        else:
            A = engine.abundances(cube, valid, generator=gen, progress=self.progress)
        parts = [A]
        if self.residual:
            b, h, w = cube.shape
            pix = np.nan_to_num(cube).reshape(b, -1).T
            parts.append(reconstruction_rmse(pix, A.reshape(engine.P, -1).T, engine.E).T.reshape(1, h, w))
        if self.uncertainty:
            parts.append(A_std)
        return np.concatenate(parts, axis=0)


def _engine_for(rc: RunContext, reader):
    """The engine of a run: the saved model of ``rc.options.model`` or one fitted to the scene."""
    opts, bands, wl = rc.options, rc.bands, rc.wavelengths_nm
    if not opts.model:
        return fit_scene(rc, reader, draw_endmembers=rc.wants("unc") and opts.uncertainty > 0)
    device = pick_device(opts.device)
    set_threads()
    engine = engine_from_checkpoint(opts.model, len(bands), wl, device, bands=bands)
    if opts.endmembers and opts.endmembers != engine.P:
        raise UnmixError(f"the saved model has {engine.P} endmembers, not the {opts.endmembers} "
                         f"requested: leave the number of endmembers at 0 (or {engine.P})")
    seed_everything(opts.seed)
    fit = SceneFit(p=engine.P, device=str(device))
    lib = load_library_for(opts.library, wl, rc.fwhm_nm, len(bands))
    if lib is not None:
        engine.names, fit.lib_match, fit.angles = library_names(engine.E, lib)
    return engine, fit


def run_full(rc: RunContext):
    """The deep engine on the raster of ``rc`` (see :func:`core.pipeline.unmix`): fit (or load),
    then one tiled, streamed pass writing abundances, residual and uncertainty; every output staged
    and committed together. Holds the engine lock while it runs."""
    with engine_turn(rc.progress):
        return _run_full(rc)


def _run_full(rc: RunContext):
    opts, prog, info = rc.options, rc.progress, rc.info
    want_unc = rc.wants("unc") and opts.uncertainty > 0
    staged = rc.staged()
    writers = []
    try:
        with RasterReader(rc.input_path, bands=rc.bands) as reader, contextlib.ExitStack() as cluster:
            engine, fit = _engine_for(rc, reader)
            P = engine.P
            if opts.scheduler:  # started (workers importing this module: torch) apart from the tile phase,
                t0 = time.perf_counter()  # as a batch pays it once for all its rasters
                cluster.enter_context(maybe_session(opts.scheduler, prog, warm=(__name__,)))
                fit.timings["cluster_start_s"] = time.perf_counter() - t0
            if want_unc and "abundance-diffusion" not in engine.trained:
                raise UnmixError("the abundance uncertainty samples the abundance diffusion, which this model "
                                 "has not fitted (train it with --stage abundance-diffusion --resume)")
            t1 = time.perf_counter()
            geo = info.georef()
            writers.append((RasterWriter(staged.path("A"), info.width, info.height, P, band_names=engine.names,
                                         **geo), 0, P))
            ch = P
            if rc.wants("res"):
                writers.append((RasterWriter(staged.path("res"), info.width, info.height, 1,
                                             band_names=["reconstruction_rmse"], **geo), ch, ch + 1))
                ch += 1
            if want_unc:
                writers.append((RasterWriter(staged.path("unc"), info.width, info.height, P,
                                             band_names=[f"{n} std" for n in engine.names], **geo), ch, ch + P))
                ch += P
            tile_fn = TileFn(engine, rc.wants("res"), opts.uncertainty if want_unc else 0, opts.seed,
                             CancelOnly(prog))  # DDIM steps inside a tile are cancellation points too

            # a GPU is fed larger tiles: per-call overhead, not arithmetic, bounds it at 128 px
            tile = engine.cfg.tile if engine.device.type != "cuda" else max(engine.cfg.tile, 512)
            overlap = max(engine.cfg.overlap, 4)
            margin = min(int(engine.hybrid.receptive_field), (overlap - 1) // 2)
            with maybe_tile_runner(opts.scheduler, tile_fn, rc.input_path, rc.bands, prog, origin=True) as tiles, \
                    tile_threads(engine) as threads:
                stats = process_tiled(reader, tile_fn, ch, writers, tile=tile, overlap=overlap,
                                      progress=prog.sub(85, 98), margin=margin, origin=True, tiles=tiles,
                                      threads=threads)
            for w, _, _ in writers:
                w.close()
            fit.timings["inference_s"] = time.perf_counter() - t1
            fit.timings["inference_pixels_per_s"] = stats["valid_pixels"] / max(fit.timings["inference_s"], 1e-9)
        result = finish_outputs(rc, staged, engine.E, engine.names, fit.lib_match, fit.angles, engine.P, fit.p_est,
                                fit.timings,
                                extra={"valid_pixels": stats["valid_pixels"], "device": fit.device,
                                       **check_solved(stats["valid_pixels"], stats["unsolved"], rc.input_path, prog),
                                       "mixing_model": engine.mixing, "scale_ratio": fit.scale_ratio,
                                       "scale_share": fit.scale_share,
                                       "model_excess": fit.model_excess,
                                       "self_validation": fit.validation,
                                       "stages": stage_report(engine, fit),
                                       "uncertainty": ({"draws": opts.uncertainty,
                                                        "ddim_steps": uncertainty_steps(engine), "eta": 1.0,
                                                        "endmember_draws": 0 if engine.E_draws is None
                                                        else len(engine.E_draws)}
                                                       if want_unc else None),
                                       "engine_config": engine.cfg.to_dict(),
                                       "distributed": stats.get("distributed"),
                                       "tile_threads": stats.get("threads")})
        staged.commit(prog)
    except BaseException:
        for w, _, _ in writers:
            w.abort()
        staged.abort()
        raise
    prog.set_progress(100)
    return result


def train_model(input_path, model_path, opts, progress=None, reference_abundances=None, stages=STAGES,
                resume=None):
    """Fit the engine to a raster and save it as a checkpoint (``python -m core train``, Processing's
    train). Holds the engine lock while it runs.

    Args:
        stages: the networks to fit (of :data:`core.options.STAGES`), in order; by default all.
        resume: a checkpoint to go on from (same bands): its endmembers, mixing model and
            fitted networks are kept, the ``stages`` are fitted (further) on this raster.
            Fitting a later stage without an earlier one needs it.

    Returns:
        (engine, :class:`SceneFit`)
    """
    prog = ensure(progress)
    with engine_turn(prog):
        return _train_model(input_path, model_path, opts, prog, reference_abundances, stages, resume)


def _train_model(input_path, model_path, opts, prog, reference_abundances, stages, resume):
    opts.validate()
    stages = [st for st in STAGES if st in set(stages)]
    if not stages:
        raise UnmixError(f"no stage to fit (choose from {', '.join(STAGES)})")
    if resume is None and stages[0] != STAGES[0]:
        raise UnmixError(f"fitting {stages[0]} without {STAGES[0]} needs a checkpoint to resume from "
                         f"(--resume), one whose HybridSTU is fitted")
    check_outputs([model_path], [input_path, opts.library, reference_abundances, resume])
    info, bands, wl, fwhm = open_input(input_path, opts.bands)
    rc = RunContext(input_path, {"model": model_path}, opts, prog, info, bands, wl, fwhm)
    if resume is not None:
        return _resume_training(rc, stages, resume, reference_abundances)
    supervised = None
    with RasterReader(input_path, bands=bands) as reader:
        if reference_abundances:
            A_ref, valid_a, ainfo = read_cube(reference_abundances)
            if (ainfo.width, ainfo.height) != (info.width, info.height):
                raise UnmixError("reference abundances and input raster differ in size")
            cube, _ = reader.read(0, 0, info.width, info.height)
            opts.endmembers = opts.endmembers or A_ref.shape[0]
            if opts.endmembers != A_ref.shape[0]:
                raise UnmixError(f"{opts.endmembers} endmembers requested but the reference abundances have "
                                 f"{A_ref.shape[0]} bands")
            supervised = (np.nan_to_num(cube), np.nan_to_num(A_ref))
        engine, fit = fit_scene(rc, reader, supervised=supervised, stages=stages, draw_endmembers=True)
    prog.check()
    save_checkpoint(model_path, checkpoint_payload(engine, bands, wl, fit.noise_sigma))
    prog.set_progress(100)
    return engine, fit


def _resume_training(rc: RunContext, stages, resume, reference_abundances):
    """``train --resume``: load the checkpoint, fit ``stages`` on this raster, gate, save."""
    opts, prog, bands, wl = rc.options, rc.progress, rc.bands, rc.wavelengths_nm
    if reference_abundances:
        raise UnmixError("supervised fitting (reference abundances) starts from scratch: drop --resume")
    t0 = time.perf_counter()
    device = pick_device(opts.device)
    set_threads()
    engine = engine_from_checkpoint(resume, len(bands), wl, device, bands=bands)
    if opts.endmembers and opts.endmembers != engine.P:
        raise UnmixError(f"the checkpoint has {engine.P} endmembers, not the {opts.endmembers} requested")
    missing = [st for st in STAGES[:STAGES.index(stages[0])] if st not in engine.trained]
    if missing:
        raise UnmixError(f"the checkpoint's {', '.join(missing)} is not fitted yet: fit it first "
                         f"(--stage {missing[0]})")
    if stages == ["endmember-diffusion"] and not EngineConfig.preset(opts.quality).fit.get("unet1d_iters", 0):
        raise UnmixError(f"the endmember diffusion is fitted at quality 'best' only (it is off at "
                         f"'{opts.quality}'): add --quality best")
    sigma = engine.noise_sigma()  # the fit's noise estimate, kept in the prior's state
    lib = load_library_for(opts.library, wl, rc.fwhm_nm, len(bands))
    with RasterReader(rc.input_path, bands=bands) as reader:
        cubes = window_cubes(reader, ROBUST_WINDOW_PIXELS)
        prog.info(f"resuming from {os.path.basename(resume)} (fitted: {', '.join(engine.trained)}); "
                  f"fitting {', '.join(stages)}")
        cfg = EngineConfig.preset(opts.quality)
        fit_engine(None, engine.E, engine.names, sigma, cfg, device, seed=opts.seed,
                   library=None if lib is None else lib.spectra, progress=prog.sub(0, 90), engine=engine,
                   stages=stages)
        gate_on_scene(engine, cubes, sigma, opts.seed, prog)
        if "endmember-diffusion" in stages and engine.refine_cfg.calibrate:
            prog.info("calibrating the endmembers")  # what the endmember diffusion is for
            calibrate(engine, first_pixels(cubes, SCENE_WINDOW_PIXELS), lib, seed=opts.seed, progress=prog,
                      generator=seed_everything(opts.seed))
    fit = SceneFit(p=engine.P, noise_sigma=sigma, validation=engine.validation, device=str(device),
                   timings={"fitting_s": time.perf_counter() - t0})
    prog.check()
    save_checkpoint(rc.outputs["model"], checkpoint_payload(engine, bands, wl, fit.noise_sigma))
    prog.set_progress(100)
    return engine, fit
