"""Raster-level driver of the deep engine (imported lazily: it needs torch).

``fit_scene``: sample → P → E0 (VCA / library) → noise estimate → fit the
networks → calibrate the endmembers on a few windows (abundances → E by
constrained least squares → ResUNet1D refinement, optionally alternated).
``run_full``: ``fit_scene`` (or a saved model) → tiled, streamed abundance
pass → outputs. ``train_model``: ``fit_scene`` → checkpoint.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from .checkpoint import check_compatible, load_checkpoint, save_checkpoint
from .engine import STAGES, Engine, EngineConfig, RefineConfig, fit_engine, pick_device, seed_everything
from .errors import UnmixError
from .pipeline import (StagedOutputs, estimate_start, finish_outputs, library_names, load_library_for,
                       reconstruction_rmse)
from .raster import RasterReader, RasterWriter
from .tiling import process_tiled, tile_starts


def set_threads() -> None:
    """Use the cores we have (torch defaults can oversubscribe small machines).

    ``DIFFUNMIX_THREADS`` overrides the count (e.g. 1 per process when several
    runs share a machine: OpenMP threads that outnumber free cores spin-wait).
    """
    env = os.environ.get("DIFFUNMIX_THREADS", "")
    n = int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def calibration_windows(width: int, height: int, size: int, count: int = 4) -> list:
    """Up to ``count`` windows of ``size`` px spread over the raster (the whole raster if small)."""
    if width * height <= count * size * size:
        ys, xs = tile_starts(height, size, 0), tile_starts(width, size, 0)
    else:
        k = int(np.ceil(np.sqrt(count)))
        ys = sorted({int(v) for v in np.linspace(0, max(height - size, 0), k)})
        xs = sorted({int(v) for v in np.linspace(0, max(width - size, 0), k)})
    return [(x, y, min(size, width), min(size, height)) for y in ys for x in xs][: max(count, 1) * 4]


#: pixels of scene windows the noise-robust endmembers are estimated on (four 256² windows)
ROBUST_WINDOW_PIXELS = 262144


def window_cubes(reader, max_pixels: int = 40000, size: int = 256) -> list:
    """``(cube, valid)`` of :func:`calibration_windows` holding a valid pixel, until ``max_pixels``."""
    cubes, n = [], 0
    for x, y, w, h in calibration_windows(reader.info.width, reader.info.height, size):
        cube, valid = reader.read(x, y, w, h)
        if valid.any():
            cubes.append((cube, valid))
            n += int(valid.sum())
        if n >= max_pixels:
            break
    return cubes


def first_pixels(cubes: list, max_pixels: int) -> list:
    """The windows :func:`window_cubes` with ``max_pixels`` would return, taken from a longer list."""
    n = 0
    for i, (_, valid) in enumerate(cubes):
        n += int(valid.sum())
        if n >= max_pixels:
            return cubes[: i + 1]
    return cubes


def calibrate(engine: Engine, reader, lib, max_pixels: int = 40000, progress=None, generator=None):
    """Endmembers from refined abundances on a few windows, refined by ResUNet1D.

    Returns:
        (E (P, B), names, matched library spectra or None, library angles or None)
    """
    rc = engine.refine_cfg
    cubes = window_cubes(reader, max_pixels)
    if not cubes or engine.mixing != "linear":  # LS endmembers assume the linear model
        return engine.E, engine.names, None, None
    for _ in range(1 + rc.alternations):
        if progress is not None:
            progress.check()
        Ys, As = [], []
        for cube, valid in cubes:
            A = engine.abundances(cube, valid, generator=generator)
            Ys.append(cube[:, valid].T)
            As.append(A[:, valid].T)
        Y, A = np.concatenate(Ys), np.concatenate(As)
        # purity-weighted least squares: near-pure pixels say most about their endmember
        w = np.sqrt(A.max(axis=1) ** 4)[:, None]
        E_ls = engine.endmembers_from_abundances(Y * w, A * w)
        engine.E = engine.refine_endmembers(E_ls, generator=generator) if rc.steps_1d > 0 else E_ls
    match, angles = None, None
    if lib is not None:
        engine.names, match, angles = library_names(engine.E, lib)
    return engine.E, engine.names, match, angles


def gate_on_scene(engine, cubes, sigma, seed, prog) -> None:
    """Keep a learned stage only if it lowers the SURE on the scene's own windows
    (:func:`core.engine.scene_validate`); the decisions go into ``engine.validation``."""
    from .engine import scene_validate

    sure = scene_validate(engine, first_pixels(cubes, 40000), sigma, seed=seed)
    if sure is not None:
        prog.info(f"scene validation (SURE of each stage on the scene's windows): {sure}")
        engine.validation = {**(engine.validation or {}), "scene_sure": sure,
                             "use_correction": sure["use_correction"], "use_refinement": sure["use_refinement"]}


def fit_scene(input_path, opts, prog, info, bands, wl, fwhm, reader, supervised=None,
              calibrate_endmembers=True, robust_start=True, scene_gate=True, stages=STAGES):
    """Fit an engine to the scene (see module doc). Returns (engine, context dict).

    With ``calibrate_endmembers=False`` the engine keeps the initial endmembers
    E0 (used by the accuracy benchmark's ablation). With ``robust_start`` (the
    default) E0 and the mixing model come from :func:`core.robust.robust_endmembers`,
    otherwise from plain VCA with the linear model. With ``scene_gate`` (the
    default) :func:`core.engine.scene_validate` then keeps a learned stage only
    if it lowers the scene's SURE.
    """
    from .robust import noise_sigma, robust_endmembers

    t0 = time.perf_counter()
    device = pick_device(opts.device)
    set_threads()
    gen = seed_everything(opts.seed)
    st = estimate_start(reader, input_path, opts, wl, fwhm, len(bands), prog.sub(0, 4))
    Y, p, p_est, lib, E0, names = st["Y"], st["p"], st["p_est"], st["lib"], st["E"], st["names"]
    lib_match, angles = st["lib_match"], st["angles"]
    mixing, robust = "linear", None
    cubes = window_cubes(reader, ROBUST_WINDOW_PIXELS)  # read once: robust start and scene gate
    if robust_start:
        prog.info("noise-robust endmembers: denoised VCA, variability test, minimum-volume simplex or "
                  "representative spectra, scale test")
        robust = robust_endmembers(cubes, p, seed=opts.seed, progress=prog)
        if robust is not None:
            E0, mixing, sigma = robust["E"], robust["mixing"], robust["sigma"]
            prog.info(f"mixing model: {mixing} (abundance-sum spread {robust['scale_ratio']:.1f}× noise); "
                      f"energy outside the {p}-endmember subspace {robust['model_excess']:.2f}× noise: "
                      + ("within-material variability, representative endmembers" if robust["variability"]
                         else "no within-material variability"))
            if lib is not None:
                names, lib_match, angles = library_names(E0, lib)
    if robust is None:  # the robust start estimates the noise on its windows; otherwise from the sample
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
                        scale_std=0.0 if robust is None else robust["scale_std"], stages=stages)
    if scene_gate and supervised is None:  # with a reference, the supervised gate is the better judge
        gate_on_scene(engine, cubes, sigma, opts.seed, prog)
    t_fit = time.perf_counter() - t0 - t_est
    lib_match2, angles2 = lib_match, angles
    if calibrate_endmembers and engine.refine_cfg.calibrate:
        prog.info("calibrating the endmembers")
        _, _, m2, a2 = calibrate(engine, reader, lib, progress=prog, generator=gen)
        if m2 is not None:
            lib_match2, angles2 = m2, a2
    ctx = {"p": p, "p_est": p_est, "lib": lib, "E0": E0, "generator": gen,
           "lib_match": lib_match2 if lib is not None else None,
           "angles": angles2 if lib is not None else None, "noise_sigma": sigma, "device": str(device),
           "validation": getattr(engine, "validation", None), "mixing": engine.mixing,
           "scale_ratio": None if robust is None else robust["scale_ratio"],
           "model_excess": None if robust is None else robust["model_excess"],
           "timings": {"estimation_s": t_est, "fitting_s": t_fit,
                       "calibration_s": time.perf_counter() - t0 - t_est - t_fit}}
    prog.set_progress(85)
    return engine, ctx


def engine_from_checkpoint(path: str, n_bands: int, wl, device, bands=None) -> Engine:
    ck = load_checkpoint(path)
    meta = ck["meta"]
    check_compatible(meta, n_bands, wl, path, band_indices=bands)
    try:
        cfg = EngineConfig.from_dict(meta["config"])
        eng = Engine(n_bands, ck["E"], meta["names"], cfg, float(meta["scale"]), device)
        eng.load_state(ck["state"])
        eng.trained = [st for st in meta.get("stages", STAGES) if st in STAGES]  # older checkpoints: all
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise UnmixError(f"not a valid DiffUnmix checkpoint (model does not match its config): {path}") from exc
    return eng


def checkpoint_payload(engine: Engine, bands, wl, ctx: dict) -> dict:
    meta = {"bands": engine.B, "band_indices": [int(b) for b in bands],
            "wavelengths_nm": None if wl is None else [float(w) for w in wl],
            "names": list(engine.names), "scale": engine.scale, "config": engine.cfg.to_dict(),
            "noise_sigma": [float(s) for s in ctx.get("noise_sigma", [])], "stages": list(engine.trained)}
    return {"meta": meta, "E": engine.E, "state": engine.state()}


def uncertainty_steps(engine) -> int:
    """DDIM steps of the stochastic refinements drawn for ``--uncertainty``: the engine's own,
    or the default when its self-validation turned the refinement off (the trained ResUNet2D's
    posterior spread is the uncertainty either way; a deterministic stage has none)."""
    return engine.refine_cfg.steps_2d if engine.refine_cfg.steps_2d > 0 else RefineConfig().steps_2d


def _uncertainty(engine, cube, valid, n, seed):
    g = torch.Generator(device="cpu").manual_seed(seed)
    steps = uncertainty_steps(engine)
    draws = np.stack([engine.abundances(cube, valid, eta=1.0, generator=g, steps_2d=steps) for _ in range(n)])
    return draws.std(axis=0)


def run_full(input_path, abundances_path, endmembers_path, opts, plot_path, report_path, residual_path, prog,
             info, bands, wl, fwhm, t0, uncertainty_path=None):
    """The deep engine on a raster; see :func:`core.pipeline.unmix` for the arguments."""
    staged = StagedOutputs({"A": abundances_path, "E": endmembers_path, "plot": plot_path,
                            "report": report_path, "res": residual_path, "unc": uncertainty_path})
    writers = []
    try:
        with RasterReader(input_path, bands=bands) as reader:
            if opts.model:
                device = pick_device(opts.device)
                set_threads()
                engine = engine_from_checkpoint(opts.model, len(bands), wl, device, bands=bands)
                if opts.endmembers and opts.endmembers != engine.P:
                    raise UnmixError(f"the saved model has {engine.P} endmembers, not the {opts.endmembers} "
                                     f"requested: leave the number of endmembers at 0 (or {engine.P})")
                seed_everything(opts.seed)
                ctx = {"p": engine.P, "p_est": None, "lib_match": None, "angles": None, "device": str(device),
                       "timings": {}}
                lib = load_library_for(opts.library, wl, fwhm, len(bands))
                if lib is not None:
                    engine.names, ctx["lib_match"], ctx["angles"] = library_names(engine.E, lib)
            else:
                engine, ctx = fit_scene(input_path, opts, prog, info, bands, wl, fwhm, reader)
            P = engine.P
            if uncertainty_path and opts.uncertainty > 0 and "abundance-diffusion" not in engine.trained:
                raise UnmixError("the abundance uncertainty samples the abundance diffusion, which this model "
                                 "has not fitted (train it with --stage abundance-diffusion --resume)")
            t1 = time.perf_counter()
            geo = info.georef()
            writers.append((RasterWriter(staged.path("A"), info.width, info.height, P, band_names=engine.names,
                                         **geo), 0, P))
            ch = P
            if residual_path:
                writers.append((RasterWriter(staged.path("res"), info.width, info.height, 1,
                                             band_names=["reconstruction_rmse"], **geo), ch, ch + 1))
                ch += 1
            if uncertainty_path and opts.uncertainty > 0:
                writers.append((RasterWriter(staged.path("unc"), info.width, info.height, P,
                                             band_names=[f"{n} std" for n in engine.names], **geo), ch, ch + P))
                ch += P
            E = engine.E
            from .progress import CancelOnly

            tile_check = CancelOnly(prog)  # DDIM steps inside a tile are cancellation points too
            run_gen = torch.Generator(device="cpu").manual_seed(opts.seed)  # this run's own noise

            def fn(cube, valid):
                A = engine.abundances(cube, valid, generator=run_gen, progress=tile_check)
                parts = [A]
                if residual_path:
                    b, h, w = cube.shape
                    pix = np.nan_to_num(cube).reshape(b, -1).T
                    parts.append(reconstruction_rmse(pix, A.reshape(P, -1).T, E).T.reshape(1, h, w))
                if uncertainty_path and opts.uncertainty > 0:
                    parts.append(_uncertainty(engine, cube, valid, opts.uncertainty, opts.seed))
                return np.concatenate(parts, axis=0)

            # a GPU is fed larger tiles: per-call overhead, not arithmetic, bounds it at 128 px
            tile = engine.cfg.tile if engine.device.type != "cuda" else max(engine.cfg.tile, 512)
            overlap = max(engine.cfg.overlap, 4)
            margin = min(int(engine.hybrid.receptive_field), (overlap - 1) // 2)
            stats = process_tiled(reader, fn, ch, writers, tile=tile, overlap=overlap, progress=prog.sub(85, 98),
                                  margin=margin)
            for w, _, _ in writers:
                w.close()
            ctx["timings"]["inference_s"] = time.perf_counter() - t1
            ctx["timings"]["inference_pixels_per_s"] = stats["valid_pixels"] / max(ctx["timings"]["inference_s"],
                                                                                    1e-9)
        result = finish_outputs(staged, input_path, info, bands, wl, engine.E, engine.names, ctx["lib_match"],
                                ctx["angles"], opts, engine.P, ctx["p_est"], ctx["timings"], t0,
                                extra={"valid_pixels": stats["valid_pixels"], "device": ctx["device"],
                                       "mixing_model": engine.mixing, "scale_ratio": ctx.get("scale_ratio"),
                                       "model_excess": ctx.get("model_excess"),
                                       "self_validation": ctx.get("validation"),
                                       "uncertainty": ({"draws": opts.uncertainty,
                                                        "ddim_steps": uncertainty_steps(engine), "eta": 1.0}
                                                       if uncertainty_path and opts.uncertainty > 0 else None),
                                       "engine_config": engine.cfg.to_dict()})
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
    """Fit the engine to a raster and save it as a checkpoint (``python -m core train``).

    Args:
        stages: the networks to fit (of :data:`core.engine.STAGES`), in order; by default all.
        resume: a checkpoint to go on from (same bands): its endmembers, mixing model and
            fitted networks are kept, the ``stages`` are fitted (further) on this raster.
            Fitting a later stage without an earlier one needs it.
    """
    from .pipeline import check_outputs, open_input
    from .progress import ensure

    prog = ensure(progress)
    opts.validate()
    stages = [st for st in STAGES if st in set(stages)]
    if not stages:
        raise UnmixError(f"no stage to fit (choose from {', '.join(STAGES)})")
    if resume is None and stages[0] != STAGES[0]:
        raise UnmixError(f"fitting {stages[0]} without {STAGES[0]} needs a checkpoint to resume from "
                         f"(--resume), one whose HybridSTU is fitted")
    check_outputs([model_path], [input_path, opts.library, reference_abundances, resume])
    info, bands, wl, fwhm = open_input(input_path, opts.bands)
    if resume is not None:
        return _resume_training(input_path, model_path, opts, prog, info, bands, wl, fwhm, stages, resume,
                                reference_abundances)
    supervised = None
    with RasterReader(input_path, bands=bands) as reader:
        if reference_abundances:
            from .raster import read_cube

            A_ref, valid_a, ainfo = read_cube(reference_abundances)
            if (ainfo.width, ainfo.height) != (info.width, info.height):
                raise UnmixError("reference abundances and input raster differ in size")
            cube, _ = reader.read(0, 0, info.width, info.height)
            opts.endmembers = opts.endmembers or A_ref.shape[0]
            if opts.endmembers != A_ref.shape[0]:
                raise UnmixError(f"{opts.endmembers} endmembers requested but the reference abundances have "
                                 f"{A_ref.shape[0]} bands")
            supervised = (np.nan_to_num(cube), np.nan_to_num(A_ref))
        engine, ctx = fit_scene(input_path, opts, prog, info, bands, wl, fwhm, reader, supervised=supervised,
                                stages=stages)
    prog.check()
    save_checkpoint(model_path, checkpoint_payload(engine, bands, wl, ctx))
    prog.set_progress(100)
    return engine, ctx


def _resume_training(input_path, model_path, opts, prog, info, bands, wl, fwhm, stages, resume,
                     reference_abundances):
    """``train --resume``: load the checkpoint, fit ``stages`` on this raster, gate, save."""
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
    lib = load_library_for(opts.library, wl, fwhm, len(bands))
    with RasterReader(input_path, bands=bands) as reader:
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
            calibrate(engine, reader, lib, progress=prog, generator=seed_everything(opts.seed))
    ctx = {"p": engine.P, "noise_sigma": sigma, "validation": engine.validation, "device": str(device),
           "timings": {"fitting_s": time.perf_counter() - t0}}
    prog.check()
    save_checkpoint(model_path, checkpoint_payload(engine, bands, wl, ctx))
    prog.set_progress(100)
    return engine, ctx
