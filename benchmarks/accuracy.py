"""Accuracy benchmark: scenes × methods → aRMSE (per-pixel and pooled), mean SAD, PSNR, seconds.

Scenes: a fixed synthetic suite generated with core/synth.py from the shared
USGS splib07 library (three spatial families, P = 3…6, SNR 20/30/40 dB, one
with illumination variability, one 256×256, two with within-material spectral
variability) plus two real scenes: Samson (P = 3) and MUUFL Gulfport (P = 5,
64 bands; its reference is continuous and of unstated provenance, a weak one).

Metrics, endmembers matched to the reference by SAD (Hungarian), abundances as
estimated (sum to one, no rescaling): ``armse`` the mean over pixels of the
per-pixel RMSE across endmembers (core.classical.metrics.armse);
``armse_pooled`` the square root of the mean over all pixels and endmembers of
the squared error (HySUPP's definition; it reads higher); ``sad_rad`` the
mean spectral angle.

Columns (the ablation; each adds one stage, forced on whatever the gates
decide): VCA+FCLS; FCLS with the true endmembers (oracle, synthetic only);
robust start + prior (the engine's start and its denoised least-squares prior,
no network); + HybridSTU; + 2D diffusion (each learned abundance stage blended
with the stage before it by its risk-optimal weight, as the gates blend it, but
kept whatever the margin: ``_forced_weights``); + endmember stage (the semi-blind
stage of core.deep.joint: the start's bias correction in the linear model, kept
whatever its noise, then rounds of endmembers re-estimated from those
abundances, and refined by the 1D endmember diffusion where the quality fits
it; all of it kept); full = the
engine as ``unmix`` ships it (its gates decide which stages run, the semi-blind
stage included). One engine fit per scene. Prints a table, writes
benchmarks/results/accuracy.json (after every scene; --resume skips the
scenes already there).

Usage: .venv/bin/python benchmarks/accuracy.py [--quality default] [--scenes s1,s2] [--resume] [--out F]
(DIFFUNMIX_THREADS=1 lets two runs share a 2-core machine efficiently.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
# the shared data folder beside the checkout (DIFFUNMIX_DATA overrides it, e.g. from a git worktree)
DATA = os.environ.get("DIFFUNMIX_DATA") or os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))
SPLIB = os.path.join(DATA, "spectral_libraries", "usgs_splib07_aviris95_envi", "s07_AV95_envi.hdr")

from core.classical.metrics import armse, match_endmembers, psnr, sad  # noqa: E402

# name: (size, P, family, snr, illumination, purity[, within-material variability])
SUITE = {
    "grf-p3-40db": (96, 3, "grf", 40.0, 0.0, 0.5),
    "legendre-p4-30db": (96, 4, "legendre", 30.0, 0.0, 0.5),
    "mosaic-p5-30db": (96, 5, "mosaic", 30.0, 0.0, 0.6),
    "grf-p6-20db": (96, 6, "grf", 20.0, 0.0, 0.5),
    "mosaic-p4-20db": (96, 4, "mosaic", 20.0, 0.0, 0.6),
    "legendre-p3-20db": (96, 3, "legendre", 20.0, 0.0, 0.4),
    "grf-p4-30db-illum": (96, 4, "grf", 30.0, 0.1, 0.5),
    "grf-p5-40db-256": (256, 5, "grf", 40.0, 0.0, 0.5),
    # real materials vary within a scene: each pixel mixes its own perturbed copies of the spectra
    "grf-p3-30db-var05": (96, 3, "grf", 30.0, 0.0, 0.6, 0.05),
    "mosaic-p4-30db-var10": (96, 4, "mosaic", 30.0, 0.0, 0.7, 0.10),
}


#: the ablation's columns, in order: each adds one stage to the one before (forced on, whatever the
#: gates decide), then the engine as ``unmix`` ships it
VCA, ORACLE = "VCA+FCLS", "oracle FCLS"
PRIOR, HYB, DIFF2D, ESTAGE, FULL = ("robust start + prior", "+ HybridSTU", "+ 2D diffusion",
                                    "+ endmember stage", "full")
METHODS = [VCA, ORACLE, PRIOR, HYB, DIFF2D, ESTAGE, FULL]
REAL = ("samson", "muufl")
UNC_DRAWS = 8  # posterior draws for the uncertainty calibration


def armse_pooled(A_ref: np.ndarray, A_est: np.ndarray) -> float:
    """Pooled aRMSE (HySUPP's definition): ``sqrt(mean over all pixels and endmembers of (a − â)²)``.

    Args:
        A_ref, A_est: (P, H, W) (or (P, N)), endmembers already matched.
    """
    d = np.asarray(A_ref, np.float64).reshape(A_ref.shape[0], -1) - np.asarray(A_est, np.float64).reshape(
        A_ref.shape[0], -1)
    return float(np.sqrt(np.nanmean(d ** 2)))


def scores(A_ref, E_ref, A_est, E_est, Y):
    """Per-pixel aRMSE (``armse``: mean over pixels of the RMSE across endmembers, core.classical.metrics),
    pooled aRMSE (``armse_pooled``) and mean SAD (``sad_rad``), all after Hungarian matching on SAD;
    reconstruction PSNR. Abundances as estimated (sum-to-one), no rescaling."""
    perm = match_endmembers(E_ref, E_est)
    P = A_ref.shape[0]
    a = armse(A_ref.reshape(P, -1).T, A_est[perm].reshape(P, -1).T)
    s = float(np.mean(sad(E_ref, E_est[perm])))
    rec = np.einsum("pb,phw->bhw", E_est, A_est)
    return {"armse": float(a), "armse_pooled": armse_pooled(A_ref, A_est[perm]), "sad_rad": s,
            "psnr_db": float(psnr(Y, rec))}


def run_scene(name, scene_dir, A_ref, E_ref, quality, seed, oracle=True):
    """Every column of :data:`METHODS` on one scene (one engine fit; the ablation evaluates its stages)."""
    import torch

    from core.classical.fcls import fcls
    from core.deep.engine import scene_validate
    from core.deep.robust import endmember_draws
    from core.deep.run import calibrate, fit_scene, posterior_parts
    from core.io.raster import RasterReader, read_cube
    from core.options import UnmixOptions
    from core.progress import Progress
    from core.run.context import RunContext
    from core.run.inputs import (ROBUST_WINDOW_PIXELS, SCENE_WINDOW_PIXELS, first_pixels, open_input, sample_pixels,
                                 window_cubes)
    from core.run.start import initial_endmembers

    path = os.path.join(scene_dir, "scene.tif")
    Y, valid, _ = read_cube(path)
    B = Y.shape[0]
    P = A_ref.shape[0]
    pix = Y.reshape(B, -1).T
    out = {}
    t = time.perf_counter()
    with RasterReader(path) as r:
        sample = sample_pixels(r, 60000, seed)
    E_v, _, _, _ = initial_endmembers(sample, P, None, seed)
    A_v = fcls(pix, E_v).T.reshape(P, *Y.shape[1:])
    out[VCA] = {**scores(A_ref, E_ref, A_v, E_v, Y), "seconds": time.perf_counter() - t}
    if oracle:
        t = time.perf_counter()
        A_o = fcls(pix, E_ref).T.reshape(P, *Y.shape[1:])
        out[ORACLE] = {**scores(A_ref, E_ref, A_o, E_ref, Y), "seconds": time.perf_counter() - t}
    opts = UnmixOptions(endmembers=P, method="full", seed=seed, quality=quality, device="cpu")
    info, bands, wl, fwhm = open_input(path, None)
    rc = RunContext(path, {}, opts, Progress(), info, bands, wl, fwhm)
    t = time.perf_counter()
    with RasterReader(path, bands=bands) as reader:
        eng, fit = fit_scene(rc, reader, calibrate_endmembers=False)
        t_fit = time.perf_counter() - t
        out["_mixing"] = eng.mixing
        out["_gates"] = eng.validation
        from core.deep.run import stage_report

        out["_stages"] = stage_report(eng, fit)
        t = time.perf_counter()
        with torch.no_grad():
            A_p = eng.hybrid.prior(eng._prepare(Y, valid))[0].cpu().numpy()
        out[PRIOR] = {**scores(A_ref, E_ref, A_p, eng.E, Y), "seconds": t_fit + time.perf_counter() - t}
        # the ablation runs every stage, whatever the gates decided, each blended with the stage before it
        # by its risk-optimal weight (as the gates blend it, without their margin); "full" is what ships
        hyb, rcfg = eng.hybrid, eng.refine_cfg
        gated = (float(hyb.correction), rcfg.steps_2d, rcfg.blend_2d)
        cubes = window_cubes(reader, ROBUST_WINDOW_PIXELS)  # read once, as fit_scene does
        windows = first_pixels(cubes, SCENE_WINDOW_PIXELS)
        t = time.perf_counter()
        forced = scene_validate(eng, windows, fit.noise_sigma, seed=seed, gate=False)
        # where the scene SURE does not judge, the synthetic gate's weights stand (it has no margin to waive)
        out["_forced_weights"] = {"hybrid": float(hyb.correction), "refined": rcfg.blend_2d if rcfg.steps_2d else 0.0,
                                  "judge": "scene SURE" if forced else "synthetic self-validation"}
        t_forced = time.perf_counter() - t
        A_h = eng.abundances(Y, valid, stages="hybrid")
        out[HYB] = {**scores(A_ref, E_ref, A_h, eng.E, Y), "seconds": t_fit + t_forced + time.perf_counter() - t}
        t = time.perf_counter()
        A_2 = eng.abundances(Y, valid, generator=torch.Generator().manual_seed(seed))
        out[DIFF2D] = {**scores(A_ref, E_ref, A_2, eng.E, Y), "seconds": t_fit + time.perf_counter() - t}
        E_start = eng.E.copy()
        t = time.perf_counter()
        *_, rec = calibrate(eng, windows, None, seed=seed, generator=torch.Generator().manual_seed(seed), gate=False)
        A_e = eng.abundances(Y, valid, generator=torch.Generator().manual_seed(seed))
        out[ESTAGE] = {**scores(A_ref, E_ref, A_e, eng.E, Y), "seconds": t_fit + time.perf_counter() - t}
        eng.E = E_start
        hyb.correction.fill_(gated[0])
        rcfg.steps_2d, rcfg.blend_2d = gated[1], gated[2]
        t = time.perf_counter()
        if rcfg.calibrate and not fit.variability:  # as fit_scene does
            *_, rec = calibrate(eng, windows, None, seed=seed, generator=fit.generator)
            out["_joint"] = rec
        A_f = eng.abundances(Y, valid, generator=torch.Generator().manual_seed(seed))
        out[FULL] = {**scores(A_ref, E_ref, A_f, eng.E, Y), "seconds": t_fit + time.perf_counter() - t}
        # calibration of the uncertainty of the engine as it ships (what unmix --uncertainty writes, after the
        # semi-blind stage: the posterior draws' spread and the endmember draws' of the block bootstrap, the
        # estimate being run.posterior_parts'): share of true abundances within ±2σ of the estimate
        t_e = time.perf_counter()
        eng.E_draws = endmember_draws(cubes, eng.E, seed=seed)
        t_e = time.perf_counter() - t_e
        t = time.perf_counter()
        m, sd_a, sd_e = posterior_parts(eng, Y, valid, UNC_DRAWS, torch.Generator().manual_seed(seed))
        perm = match_endmembers(E_ref, eng.E)
        m, sd_a = m[perm], sd_a[perm]
        sd = sd_a if sd_e is None else np.sqrt(sd_a ** 2 + sd_e[perm] ** 2)
        out["_uncertainty"] = {"draws": UNC_DRAWS, "endmember_draws": 0 if sd_e is None else len(eng.E_draws),
                               "coverage_2sigma": float(np.mean(np.abs(A_ref - m) <= 2 * sd)),
                               "coverage_2sigma_abundance_draws_only": float(np.mean(np.abs(A_ref - m) <= 2 * sd_a)),
                               "mean_std": float(sd.mean()), "mean_std_abundance_draws_only": float(sd_a.mean()),
                               "armse_pooled_of_estimate": armse_pooled(A_ref, m),
                               "start_step": int(rcfg.start_2d), "seconds": time.perf_counter() - t,
                               "endmember_draws_seconds": t_e}
    out["_fit_seconds"] = t_fit
    return out


def _save(a, results, summary, torch):
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as fh:
        json.dump({"quality": a.quality, "seed": a.seed, "fit_overrides": a.fit,
                   "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                               "torch_threads": torch.get_num_threads()},
                   "results": results, "summary": summary}, fh, indent=1)


def summarise(results: dict) -> dict:
    """The suite's means (the issue's suite: scenes of P fixed spectra), the variability scenes and
    the real scenes apart, each stage's effect (how often it lowers the pooled aRMSE) and how many
    scenes it runs on by default."""
    synth = [n for n in results if n not in REAL and len(SUITE[n]) == 6]
    varied = [n for n in results if n not in REAL and len(SUITE[n]) > 6]
    summary = {}
    if synth:
        base = np.array([results[n][VCA]["armse"] for n in synth])
        full = np.array([results[n][FULL]["armse"] for n in synth])
        summary = {"mean_armse_vca_fcls": float(base.mean()), "mean_armse_full": float(full.mean()),
                   "mean_reduction_pct": float(100 * (1 - full.mean() / base.mean())),
                   "full_below_vca_on_every_scene": bool(np.all(full < base))}
    if varied:
        summary["within_material_variability"] = {
            n: {"full": results[n][FULL]["armse"], "vca_fcls": results[n][VCA]["armse"],
                "oracle": results[n][ORACLE]["armse"]} for n in varied}
    cov = {n: r["_uncertainty"]["coverage_2sigma"] for n, r in results.items() if "_uncertainty" in r}
    if cov:
        summary["uncertainty_coverage_2sigma"] = cov
    for n in REAL:
        if n in results:
            summary[n] = {m: {k: results[n][m][k] for k in ("armse_pooled", "armse", "sad_rad")}
                          for m in (VCA, FULL)}
    steps = list(zip([PRIOR, HYB, DIFF2D, ESTAGE], [HYB, DIFF2D, ESTAGE]))
    summary["stage_effect_pooled"] = {
        after: {"lower": sum(results[n][after]["armse_pooled"] < results[n][before]["armse_pooled"]
                             for n in results),
                "worse_by_more_than_5pct": sum(results[n][after]["armse_pooled"]
                                               > 1.05 * results[n][before]["armse_pooled"] for n in results),
                "scenes": len(results)} for before, after in steps}
    # how many scenes each deep stage runs on as unmix ships it (report.json → stages: "ran"; the
    # semi-blind stage runs after that report here: its record "_joint")
    ran = {n: {st["stage"]: st["ran"] for st in results[n].get("_stages", [])} for n in results}
    for n, r in results.items():
        joint = r.get("_joint") or {}
        ran[n]["semi-blind"] = bool(joint.get("kept") or joint.get("bias_corrected"))
    summary["stage_runs_by_default"] = {
        stage: {"scenes_run": sum(bool(ran[n].get(stage)) for n in results), "scenes": len(results)}
        for stage in ("hybridstu", "abundance-diffusion", "semi-blind")}
    return summary


def override_fit(values: dict) -> None:
    """Every engine fitted from now on uses the preset with these FitConfig fields changed."""
    from core.deep.engine import EngineConfig
    from core.deep.training import FitConfig

    known = FitConfig().to_dict()
    bad = sorted(set(values) - set(known))
    if bad:
        raise SystemExit(f"unknown fitting setting(s): {', '.join(bad)} (known: {', '.join(sorted(known))})")
    preset = EngineConfig.preset.__func__

    def with_overrides(cls, quality="default"):
        cfg = preset(cls, quality)
        cfg.fit = {**cfg.fit, **{k: type(known[k])(v) for k, v in values.items()}}
        return cfg

    EngineConfig.preset = classmethod(with_overrides)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quality", default="default", choices=["fast", "default", "best"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenes", default=None, help="comma-separated subset (names, or 'samson')")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "accuracy.json"))
    ap.add_argument("--resume", action="store_true",
                    help="keep the scenes already in --out (same quality and seed) and run only the others")
    ap.add_argument("--fit", action="append", default=[], metavar="KEY=VALUE",
                    help="override a fitting setting of the preset (core.deep.training.FitConfig), e.g. "
                         "scene_weight=0.1: an ablation of a setting that is not a default")
    a = ap.parse_args()
    import torch

    if a.fit:
        override_fit(dict(kv.split("=", 1) for kv in a.fit))

    from core.classical.synth import SceneConfig, generate

    from core.deep.run import set_threads

    set_threads()
    wanted = a.scenes.split(",") if a.scenes else list(SUITE) + list(REAL)
    results = {}
    if a.resume and os.path.exists(a.out):
        with open(a.out) as fh:
            prev = json.load(fh)
        if (prev.get("quality"), prev.get("seed")) == (a.quality, a.seed):
            results = {k: v for k, v in prev["results"].items() if k in wanted}
    with tempfile.TemporaryDirectory() as tmp:
        for name in wanted:
            if name in results:
                continue
            sd = os.path.join(tmp, name)
            if name in REAL:
                from benchmarks.datasets import muufl_to_geotiff, samson_to_geotiff
                from core.io.raster import read_cube

                paths = (samson_to_geotiff if name == "samson" else muufl_to_geotiff)(DATA, sd)
                A_ref = read_cube(paths["abundances"])[0]
                E_ref = np.loadtxt(paths["endmembers"], delimiter=",", skiprows=1)[:, 1:].T
                res = run_scene(name, sd, A_ref, E_ref, a.quality, a.seed, oracle=False)
            else:
                size, P, fam, snr, ill, pur, *var = SUITE[name]
                cfg = SceneConfig(height=size, width=size, p=P, family=fam, snr_db=snr, illumination=ill,
                                  purity=pur, seed=100 + list(SUITE).index(name), variability=var[0] if var else 0.0)
                g = generate(sd, cfg, library_path=SPLIB)
                res = run_scene(name, sd, g["A"], g["E"], a.quality, a.seed)
            results[name] = res
            _save(a, results, {}, torch)  # after every scene, so a long run can be resumed
            row = "  ".join(f"{m}: {v['armse_pooled']:.4f}/{v['armse']:.4f}/{v['sad_rad']:.4f}"
                            for m, v in res.items() if m[0] != "_")
            print(f"{name:22s} {row}  fit {res['_fit_seconds']:.0f}s", flush=True)
    print("\npooled aRMSE / per-pixel aRMSE (mean SAD rad) seconds")
    print(f"{'scene':22s}" + "".join(f"{m:>30s}" for m in METHODS))
    for name, res in results.items():
        cells = [f"{v['armse_pooled']:.4f}/{v['armse']:.4f} ({v['sad_rad']:.3f}) {v['seconds']:.0f}s"
                 if (v := res.get(m)) else "-" for m in METHODS]
        print(f"{name:22s}" + "".join(f"{c:>30s}" for c in cells))
    summary = summarise(results)
    if summary:
        print("\n" + json.dumps(summary, indent=1))
    _save(a, results, summary, torch)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
