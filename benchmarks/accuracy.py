"""Accuracy benchmark: scenes × methods → aRMSE, mean SAD, reconstruction PSNR, seconds.

Scenes: a fixed synthetic suite generated with core/synth.py from the shared
USGS splib07 library (three spatial families, P = 3…6, SNR 20/30/40 dB, one
with illumination variability, one 256×256, two with within-material spectral
variability) plus the real Samson scene.
Methods: VCA+FCLS; FCLS with the true endmembers (oracle, synthetic only);
the engine's noise-robust endmembers with its denoised least-squares prior
(core/robust.py, no network); HybridSTU and HybridSTU + 2D diffusion, both
forced on (the ablation: what each learned stage does to this scene); the
full engine as ``unmix`` ships it (its two gates decide which stages run:
self-validation on synthetic patches, then SURE on the scene itself,
core.deep.engine.scene_validate); then, as in quality best, LS endmember
calibration from the refined abundances, and that plus the 1D endmember
diffusion. On Samson, whose reference uses max-normalised endmembers, the
full engine is also scored in that convention (see to_max_convention). One
engine fit per scene; the ablation evaluates its stages. Prints a table,
writes benchmarks/results/accuracy.json (after every scene; --resume skips
the scenes already there).

Usage: .venv/bin/python benchmarks/accuracy.py [--quality default] [--scenes s1,s2] [--resume]
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
DATA = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))
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


CAL = "+ LS endmember calibration"  # quality best
CAL_1D = "+ LS calibration + 1D diffusion"


def scores(A_ref, E_ref, A_est, E_est, Y, angle_only=False):
    """aRMSE and mean SAD after Hungarian matching on SAD; reconstruction PSNR."""
    perm = match_endmembers(E_ref, E_est)
    P = A_ref.shape[0]
    a = armse(A_ref.reshape(P, -1).T, A_est[perm].reshape(P, -1).T)
    s = float(np.mean(sad(E_ref, E_est[perm])))
    rec = np.einsum("pb,phw->bhw", E_est, A_est)
    return {"armse": float(a), "sad_rad": s, "psnr_db": float(psnr(Y, rec))}


REF_CONV = "full engine, reference's endmember scale"


def to_max_convention(A, E):
    """Scaled-model abundances re-expressed for endmembers normalised to a maximum of 1.

    In the scaled model y = s·Σ aᵢeᵢ, each endmember's scale is a convention:
    eᵢ/mᵢ with coefficient aᵢmᵢ is the same fit. Zhu's Samson reference uses
    max-normalised endmembers (../shared/data/samson/SOURCE.txt); the engine
    keeps the data's scale. This converts (A (P, H, W), E (P, B)) exactly.
    """
    m = E.max(axis=1)
    Am = A * m[:, None, None]
    return Am / np.clip(Am.sum(axis=0, keepdims=True), 1e-12, None), E / m[:, None]


def run_scene(name, scene_dir, A_ref, E_ref, quality, seed, oracle=True, with_1d=True, max_convention=False):
    from core.deep.run import calibrate, fit_scene
    from core.classical.fcls import fcls
    from core.options import UnmixOptions
    from core.run.start import initial_endmembers
    from core.run.inputs import open_input, sample_pixels
    from core.progress import Progress
    from core.io.raster import RasterReader, read_cube

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
    out["VCA+FCLS"] = {**scores(A_ref, E_ref, A_v, E_v, Y), "seconds": time.perf_counter() - t}
    if oracle:
        t = time.perf_counter()
        A_o = fcls(pix, E_ref).T.reshape(P, *Y.shape[1:])
        out["oracle FCLS"] = {**scores(A_ref, E_ref, A_o, E_ref, Y), "seconds": time.perf_counter() - t}
    opts = UnmixOptions(endmembers=P, method="full", seed=seed, quality=quality, device="cpu")
    info, bands, wl, fwhm = open_input(path, None)
    t = time.perf_counter()
    with RasterReader(path, bands=bands) as reader:
        eng, ctx = fit_scene(path, opts, Progress(), info, bands, wl, fwhm, reader, calibrate_endmembers=False)
        t_fit = time.perf_counter() - t
        t = time.perf_counter()
        import torch

        with torch.no_grad():
            A_p = eng.hybrid.prior(eng._prepare(Y, valid))[0].cpu().numpy()
        out["robust E + denoised LS prior"] = {**scores(A_ref, E_ref, A_p, eng.E, Y),
                                               "seconds": t_fit + time.perf_counter() - t}
        out["_mixing"] = eng.mixing
        out["_gates"] = eng.validation
        # the ablation runs every stage, whatever the gates decided; "full engine" is what ships
        from core.deep.engine import EngineConfig, RefineConfig

        hyb, rc = eng.hybrid, eng.refine_cfg
        gated = (float(hyb.correction), rc.steps_2d)
        hyb.correction.fill_(1.0)
        rc.steps_2d = RefineConfig.from_dict(EngineConfig.preset(quality).refine).steps_2d
        g = torch.Generator().manual_seed(seed)
        t = time.perf_counter()
        A_h = eng.abundances(Y, valid, stages="hybrid")
        out["HybridSTU"] = {**scores(A_ref, E_ref, A_h, eng.E, Y), "seconds": t_fit + time.perf_counter() - t}
        t = time.perf_counter()
        A_2 = eng.abundances(Y, valid, generator=g)
        out["HybridSTU+2D diffusion"] = {**scores(A_ref, E_ref, A_2, eng.E, Y),
                                         "seconds": t_fit + time.perf_counter() - t}
        hyb.correction.fill_(gated[0])
        rc.steps_2d = gated[1]
        t = time.perf_counter()
        A_f = eng.abundances(Y, valid, generator=torch.Generator().manual_seed(seed))
        out["full engine"] = {**scores(A_ref, E_ref, A_f, eng.E, Y), "seconds": t_fit + time.perf_counter() - t}
        if max_convention and eng.mixing == "scaled":
            out[REF_CONV] = {**scores(A_ref, E_ref, *to_max_convention(A_f, eng.E), Y),
                             "seconds": out["full engine"]["seconds"]}
        t = time.perf_counter()
        E_start = eng.E.copy()
        calibrate(eng, reader, None, generator=ctx["generator"])
        A_f = eng.abundances(Y, valid)
        out[CAL] = {**scores(A_ref, E_ref, A_f, eng.E, Y), "seconds": t_fit + time.perf_counter() - t}
        if with_1d:  # the endmember diffusion stage (quality best): same calibration + ResUNet1D DDIM
            from core.deep.training import FitConfig, fit_unet1d

            t = time.perf_counter()
            fc = FitConfig.from_dict(eng.cfg.fit)
            fc.unet1d_iters = 250
            fit_unet1d(eng.unet1d, E_start / eng.scale, eng.schedule, fc, eng.device, seed=seed + 1,
                       noise=0.05)
            eng.E = E_start
            eng.refine_cfg.steps_1d = 2
            calibrate(eng, reader, None, generator=ctx["generator"])
            A_1 = eng.abundances(Y, valid)
            out[CAL_1D] = {**scores(A_ref, E_ref, A_1, eng.E, Y),
                                          "seconds": t_fit + time.perf_counter() - t}
    out["_fit_seconds"] = t_fit
    return out


def _save(a, results, summary, torch):
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as fh:
        json.dump({"quality": a.quality, "seed": a.seed, "machine": {"platform": platform.platform(),
                   "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
                   "results": results, "summary": summary}, fh, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quality", default="default", choices=["fast", "default", "best"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenes", default=None, help="comma-separated subset (names, or 'samson')")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "accuracy.json"))
    ap.add_argument("--resume", action="store_true",
                    help="keep the scenes already in --out (same quality and seed) and run only the others")
    a = ap.parse_args()
    import torch

    from benchmarks.datasets import samson_to_geotiff
    from core.classical.synth import SceneConfig, generate

    from core.deep.run import set_threads

    set_threads()
    wanted = a.scenes.split(",") if a.scenes else list(SUITE) + ["samson"]
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
            if name == "samson":
                paths = samson_to_geotiff(DATA, sd)
                from core.io.raster import read_cube

                A_ref = read_cube(paths["abundances"])[0]
                E_ref = np.loadtxt(paths["endmembers"], delimiter=",", skiprows=1)[:, 1:].T
                res = run_scene(name, sd, A_ref, E_ref, a.quality, a.seed, oracle=False, max_convention=True)
            else:
                size, P, fam, snr, ill, pur, *var = SUITE[name]
                cfg = SceneConfig(height=size, width=size, p=P, family=fam, snr_db=snr, illumination=ill,
                                  purity=pur, seed=100 + list(SUITE).index(name), variability=var[0] if var else 0.0)
                g = generate(sd, cfg, library_path=SPLIB)
                res = run_scene(name, sd, g["A"], g["E"], a.quality, a.seed)
            results[name] = res
            _save(a, results, {}, torch)  # after every scene, so a long run can be resumed
            row = "  ".join(f"{m}: {v['armse']:.4f}/{v['sad_rad']:.4f}" for m, v in res.items() if m[0] != "_")
            print(f"{name:22s} {row}  fit {res['_fit_seconds']:.0f}s", flush=True)
    methods = ["VCA+FCLS", "oracle FCLS", "robust E + denoised LS prior", "HybridSTU", "HybridSTU+2D diffusion",
               "full engine", CAL, CAL_1D, REF_CONV]
    print("\naRMSE (mean SAD rad) [PSNR dB] seconds")
    print(f"{'scene':22s}" + "".join(f"{m:>30s}" for m in methods))
    for name, res in results.items():
        cells = []
        for m in methods:
            v = res.get(m)
            cells.append(f"{v['armse']:.4f} ({v['sad_rad']:.3f}) [{v['psnr_db']:.1f}] {v['seconds']:.0f}s"
                         if v else "-")
        print(f"{name:22s}" + "".join(f"{c:>30s}" for c in cells))
    # the suite: scenes of P fixed spectra; the variability scenes are reported apart
    synth = [n for n in results if n != "samson" and len(SUITE[n]) == 6]
    varied = [n for n in results if n != "samson" and len(SUITE[n]) > 6]
    summary = {}
    if synth:
        base = np.array([results[n]["VCA+FCLS"]["armse"] for n in synth])
        full = np.array([results[n]["full engine"]["armse"] for n in synth])
        summary = {"mean_armse_vca_fcls": float(base.mean()), "mean_armse_full": float(full.mean()),
                   "mean_reduction_pct": float(100 * (1 - full.mean() / base.mean())),
                   "full_below_vca_on_every_scene": bool(np.all(full < base)),
                   "full_below_oracle_at_20db": {
                       n: results[n]["full engine"]["armse"] < results[n]["oracle FCLS"]["armse"]
                       for n in synth if "20db" in n}}
    if varied:
        summary["within_material_variability"] = {
            n: {"full": results[n]["full engine"]["armse"], "vca_fcls": results[n]["VCA+FCLS"]["armse"],
                "oracle": results[n]["oracle FCLS"]["armse"]} for n in varied}
    if "samson" in results:
        summary["samson"] = {"armse": results["samson"]["full engine"]["armse"],
                             "armse_reference_scale": results["samson"].get(REF_CONV, {}).get("armse"),
                             "sad_rad": results["samson"]["full engine"]["sad_rad"]}
    if summary:
        print("\n" + json.dumps(summary, indent=1))
    _save(a, results, summary, torch)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
