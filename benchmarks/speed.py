"""End-to-end speed and memory of DiffUnmix on this machine, stage by stage.

One run, on CPU and on CUDA when present (``--device auto``), measures:

* per stage, pixels/s on one engine tile (128²): FCLS (the engine's CPU
  prior and :func:`core.deep.fcls_torch.fcls_torch` on the device), HybridSTU, one
  ResUNet2D DDIM step, the whole abundance refinement, HybridSTU +
  refinement, and the endmember refinement (ResUNet1D DDIM; ms per call, it
  runs on the P spectra, not per pixel);
* per raster, pixels/s of the windowed reads ``apply`` does (its windows,
  engine tiles on the CPU and 512 px on CUDA, with overlap) and of its
  writes (P float32 bands in strips);
* ``apply`` (``unmix`` with a saved model) end to end, with the DDIM
  refinement forced on and forced off, and two references in the same run: a
  plain GDAL copy of the raster (the I/O floor) and VCA+FCLS; each ``unmix``
  runs in a fresh process whose wall time (imports excluded) and peak
  resident memory (its own /proc VmHWM) are recorded, on rasters of
  ``--sizes`` (default 256², 1024², 2048²) × 200 bands, int16;
* the tile overlap overhead (same tiles, default overlap vs none);
* the default ``unmix`` (method full: fitting included) of a 100×100×200
  scene (and of larger ones with ``--unmix-sizes``: fitting samples at most
  262,144 pixels, so its memory stops growing at 512²), split into
  estimation / fitting / calibration / inference from the timings its report
  records.

Rasters are int16 reflectance×10000 GeoTIFFs (scale 1e-4, 256-px tiles)
mixing 5 endmembers (``core.classical.synth.abundance_field`` 'grf', 30 dB noise),
generated into a temporary folder that is removed afterwards. One engine is
fitted (quality 'fast') on the 256² raster; its self-validation gate may
switch the DDIM refinement off, so the checkpoint is saved twice with
``refine.steps_2d`` set to the default (on) and to 0 (off).

``--stages-only`` skips everything that needs GDAL (an engine is fitted on an
in-memory scene), for GPU machines without GDAL.

Prints tables and writes JSON (default benchmarks/results/speed.json, or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from timing import best_of  # noqa: E402  (benchmarks/ is the script's folder)

B, P, SNR_DB, SCALE = 200, 5, 30.0, 1e-4
GDAL_CACHE_MB = 256  # what the CLI sets (core.cli._limit_gdal_cache); GDAL's default is 5 % of RAM


# --------------------------------------------------------------------------- scenes
def endmembers():
    x = np.linspace(0, 1, B)
    return np.stack([0.05 + 0.5 * np.abs(np.sin(3 * x * (k + 1) + k)) for k in range(P)])


def mixture(S, rng):
    """Abundances (P, S, S) and the noise std of the 30 dB scene."""
    from core.classical.synth import abundance_field

    A = abundance_field(P, S, S, "grf", rng, purity=0.5).astype(np.float32)
    sig_pow = float(np.mean(np.einsum("pb,phw->bhw", endmembers(), A[:, :64, :64]) ** 2))
    return A, np.sqrt(sig_pow / 10 ** (SNR_DB / 10))


def make_raster(path, S, seed=0):
    """S×S×200 int16 GeoTIFF (reflectance×10000, scale 1e-4, tiled 256), written in row bands."""
    from osgeo import gdal

    rng = np.random.default_rng(seed)
    E = endmembers()
    A, sigma = mixture(S, rng)
    ds = gdal.GetDriverByName("GTiff").Create(path, S, S, B, gdal.GDT_Int16,
                                              ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "BIGTIFF=IF_SAFER"])
    ds.SetGeoTransform((300000.0, 30.0, 0.0, 5000000.0, 0.0, -30.0))
    wl = np.linspace(400, 2500, B)
    for b in range(B):
        band = ds.GetRasterBand(b + 1)
        band.SetScale(SCALE)
        band.SetOffset(0.0)
        band.SetMetadataItem("wavelength", f"{wl[b]:.2f}")
        band.SetMetadataItem("wavelength_units", "Nanometers")
    for y0 in range(0, S, 256):
        h = min(256, S - y0)
        Y = np.einsum("pb,phw->bhw", E, A[:, y0:y0 + h]).astype(np.float32)
        Y += (sigma * rng.standard_normal(Y.shape)).astype(np.float32)
        raw = np.clip(np.round(Y / SCALE), -32768, 32767).astype(np.int16)
        ds.WriteRaster(0, y0, S, h, raw.tobytes(), S, h, gdal.GDT_Int16)
    ds.FlushCache()
    ds = None


def once(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


# --------------------------------------------------------------------------- fresh-process runs
_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from core.options import UnmixOptions
from core.pipeline import unmix
opts = UnmixOptions(**json.loads({opts!r}))
t = time.perf_counter()
res = unmix({inp!r}, {abund!r}, {csv!r}, opts)
print("ELAPSED", time.perf_counter() - t)
print("REPORT", json.dumps({{k: res.report.get(k) for k in ("timings_s", "endmember_count", "self_validation",
                                                            "device")}}, default=str))
print([ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")][0].strip())
"""

_BASELINE = """
import sys
sys.path.insert(0, {root!r})
import core.pipeline, core.deep.run, torch  # noqa
print([ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")][0].strip())
"""


def run_child(code):
    """Run ``python -c code`` in a fresh process (GDAL cache as the CLI sets it).

    Returns:
        dict: ``s`` (seconds printed by the child, else wall), ``rss_mb`` (its peak RSS),
        ``report`` (what it printed after REPORT, if anything).
    """
    env = dict(os.environ)
    env.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))
    with tempfile.TemporaryFile("w+") as out:
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        _, status, ru = os.wait4(p.pid, 0)  # rusage of this child only (ru_maxrss in KiB on Linux)
        wall = time.perf_counter() - t
        rc = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if rc != 0:
        raise RuntimeError(f"child failed ({rc}):\n{text[-3000:]}")
    lines = text.splitlines()
    elapsed = [float(ln.split()[1]) for ln in lines if ln.startswith("ELAPSED ")]
    report = [json.loads(ln.split(" ", 1)[1]) for ln in lines if ln.startswith("REPORT ")]
    # VmHWM is the peak RSS of the exec'd image alone; ru_maxrss also counts the parent's RSS
    # inherited at fork (Linux keeps the high-water mark across exec), so it is only a fallback
    hwm = [float(ln.split()[1]) for ln in lines if ln.startswith("VmHWM:")]
    return {"s": elapsed[-1] if elapsed else wall, "rss_mb": (hwm[-1] if hwm else ru.ru_maxrss) / 1024.0,
            "report": report[-1] if report else None}


def unmix_child(inp, tmp, tag, **opts):
    code = _CHILD.format(root=ROOT, opts=json.dumps(opts), inp=inp, abund=os.path.join(tmp, f"A_{tag}.tif"),
                         csv=os.path.join(tmp, f"E_{tag}.csv"))
    r = run_child(code)
    for f in os.listdir(tmp):  # outputs are not needed; keep the disk footprint small
        if f.startswith((f"A_{tag}.", f"E_{tag}.")):
            os.remove(os.path.join(tmp, f))
    return r


# --------------------------------------------------------------------------- models
def with_refinement(src, dst, steps_2d):
    """Copy of checkpoint ``src`` with ``refine.steps_2d`` set (the gate's decision overridden)."""
    from core.deep.checkpoint import load_checkpoint, save_checkpoint

    ck = load_checkpoint(src)
    ck["meta"]["config"]["refine"]["steps_2d"] = int(steps_2d)
    save_checkpoint(dst, ck)
    return dst


def fit_in_memory(device):
    """GDAL-free fit (``--stages-only``): engine fitted on an in-memory 256² scene; returns (engine, cube)."""
    from core.deep.engine import EngineConfig, fit_engine

    rng = np.random.default_rng(0)
    A, sigma = mixture(256, rng)
    E = endmembers()
    cube = np.einsum("pb,phw->bhw", E, A) + sigma * rng.standard_normal((B, 256, 256))
    cube = cube.astype(np.float32)
    eng = fit_engine(cube.reshape(B, -1).T, E * 1.02, [f"EM{i + 1}" for i in range(P)], np.full(B, sigma),
                     EngineConfig.preset("fast"), device, seed=0)
    return eng, cube


def engine_on(eng, device, steps_2d):
    """A copy of the fitted engine ``eng`` on ``device`` with ``steps_2d`` DDIM steps (GDAL-free)."""
    from core.deep.engine import Engine

    out = Engine(eng.B, eng.E, eng.names, eng.cfg, eng.scale, device)
    out.load_state({k: {n: v.to(device) for n, v in sd.items()} for k, sd in eng.state().items()})
    out.refine_cfg.steps_2d = steps_2d
    return out


# --------------------------------------------------------------------------- stage kernels
def stage_kernels(fitted, cube, valid, device, steps_2d):
    """Pixels/s of each engine stage on one tile ``cube (B, t, t)`` (DDIM forced to ``steps_2d`` steps).

    The refinement alone is ``abundances`` with HybridSTU's output cached (the ``forward`` of the
    engine's ``hybrid`` module replaced by a function returning it); one DDIM step is one ResUNet2D
    evaluation.
    """
    import torch

    from core.deep.engine import fcls_prior
    from core.deep.fcls_torch import fcls_torch

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    eng = engine_on(fitted, device, steps_2d)
    rc = eng.refine_cfg
    n = cube.shape[1] * cube.shape[2]
    y = torch.from_numpy(np.nan_to_num(cube) / np.float32(eng.scale))[None].to(device)  # network units
    Et = torch.as_tensor(eng.E / eng.scale, dtype=torch.float32, device=device)
    pix = y[0].reshape(B, -1).T.contiguous()
    x = torch.randn(1, eng.P, *cube.shape[1:], device=device)
    t_step = torch.tensor([int(rc.start_2d)], device=device)

    def timed(fn):
        def run():
            with torch.no_grad():
                fn()
            sync()
        return best_of(run)

    t_hyb = timed(lambda: eng.abundances(cube, valid, stages="hybrid"))
    t_full = timed(lambda: eng.abundances(cube, valid))
    with torch.no_grad():
        A0 = eng.hybrid(y)
    eng.hybrid.forward = lambda _y: A0
    try:
        t_ref = timed(lambda: eng.abundances(cube, valid))
    finally:
        del eng.hybrid.forward  # back to the class's forward
    r = {"device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
         "tile": list(cube.shape[1:]), "ddim_steps_2d": steps_2d,
         "fcls_prior_px_s": n / timed(lambda: fcls_prior(y, Et)),  # the engine's prior: core.classical.fcls on the CPU
         "fcls_torch_px_s": n / timed(lambda: fcls_torch(pix, Et)),
         "hybrid_px_s": n / t_hyb,
         "unet2d_step_px_s": n / timed(lambda: eng.unet2d(x, t_step, x)),
         "refinement_px_s": n / t_ref,
         "hybrid_refined_px_s": n / t_full}
    rc.steps_1d = max(rc.steps_1d, 2)
    r["endmember_refinement_ms"] = 1e3 * timed(lambda: eng.refine_endmembers(eng.E))
    r["endmember_refinement_steps"] = rc.steps_1d
    return r


def print_stages(stages):
    keys = [("fcls_prior_px_s", "FCLS prior (numpy)"), ("fcls_torch_px_s", "FCLS fcls_torch"),
            ("hybrid_px_s", "HybridSTU"), ("unet2d_step_px_s", "1 ResUNet2D step"),
            ("refinement_px_s", "refinement"), ("hybrid_refined_px_s", "HybridSTU+refinement")]
    devs = list(stages)
    print(f"\nstages on one {'x'.join(map(str, stages[devs[0]]['tile']))} tile, pixels/s "
          f"(refinement = {stages[devs[0]]['ddim_steps_2d']} DDIM steps)")
    print("| stage | " + " | ".join(devs) + " |")
    print("|---|" + "---|" * len(devs))
    for k, label in keys:
        print(f"| {label} | " + " | ".join(f"{stages[d][k]:,.0f}" for d in devs) + " |")
    print("| endmember refinement (ms/call) | " + " | ".join(
        f"{stages[d]['endmember_refinement_ms']:.1f}" for d in devs) + " |")


# --------------------------------------------------------------------------- main
def machine_info(torch, gdal):
    cpu = None
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), None)
    except OSError:
        pass
    try:  # which code was measured
        git = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                             timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        git = None
    return {"platform": platform.platform(), "cpu_model": cpu, "cpus": os.cpu_count(), "git": git,
            "load_avg_at_start": list(os.getloadavg()), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "gdal": gdal.__version__ if gdal else None,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="256,1024,2048", help="comma-separated raster sizes S (S×S px)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                    help="auto: CPU, and CUDA too when present")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "speed.json"))
    ap.add_argument("--overlap-size", type=int, default=0,
                    help="raster size for the overlap test (default: 1024 if measured, else the largest size)")
    ap.add_argument("--stages-only", action="store_true", help="stage kernels only, without GDAL")
    ap.add_argument("--apply-only", action="store_true",
                    help="per size only the I/O and apply runs (no VCA+FCLS, overlap test or default unmix): "
                         "for a short GPU lease")
    ap.add_argument("--unmix-sizes", default="100",
                    help="comma-separated sizes S of the default-unmix measurement (S×S×200)")
    ap.add_argument("--unmix-only", action="store_true", help="only the default-unmix measurements")
    ap.add_argument("--default-quality", default="default", choices=("fast", "default", "best"),
                    help="quality of the default-unmix measurement (fast for a quick check of this script)")
    ap.add_argument("--note", action="append", default=[], help="free text recorded in the JSON notes")
    a = ap.parse_args()

    import torch

    from core.deep.engine import pick_device

    gdal = None
    if not a.stages_only:
        from osgeo import gdal

        gdal.UseExceptions()
        gdal.SetCacheMax(GDAL_CACHE_MB * 1024 * 1024)
    torch.set_num_threads(os.cpu_count() or 1)  # as core.deep.run.set_threads (which needs GDAL to import)
    main_dev = pick_device(a.device)
    devices = [main_dev] if a.device != "auto" else [torch.device("cpu")] + (
        [main_dev] if main_dev.type == "cuda" else [])
    res = {"machine": machine_info(torch, gdal), "devices": [str(d) for d in devices], "bands": B,
           "endmembers": P, "snr_db": SNR_DB, "storage": "int16 x1e-4, tiled 256", "notes": list(a.note)}
    print(f"# {res['machine']['cpu_model']}  cpus={os.cpu_count()}  torch threads={torch.get_num_threads()}"
          f"  devices={res['devices']}  gpu={res['machine']['gpu']}  load={os.getloadavg()[0]:.1f}", flush=True)
    tmp = tempfile.mkdtemp(prefix="diffunmix_speed_")
    try:
        run(a, res, tmp, gdal, main_dev, devices)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["machine"]["load_avg_at_end"] = list(os.getloadavg())
    res["notes"].append(
        "apply and VCA+FCLS are unmix() in a fresh process (imports excluded, GDAL_CACHEMAX "
        f"{GDAL_CACHE_MB} MB as the CLI sets it); peak RSS is that process's VmHWM (includes the import "
        "baseline). 'ddim' forces the abundance refinement on (refine.steps_2d = default) whatever the fit's "
        "self-validation gate decided; 'no_ddim' forces it off (HybridSTU only). Stage px/s are per engine "
        "tile; the endmember refinement is per call (it runs once per calibration pass on the P spectra).")
    res["notes"].append("The machine may have been shared with other jobs during the run (see load_avg_at_start "
                        "and load_avg_at_end in machine).")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=1)
    print(f"wrote {a.out}")


def run(a, res, tmp, gdal, main_dev, devices):
    if a.unmix_only:
        return default_unmixes(a, res, tmp, main_dev)
    """All measurements (see the module doc) into ``res``; scratch files under ``tmp``."""
    import torch

    from core.deep.engine import RefineConfig

    sizes = sorted({int(s) for s in a.sizes.split(",") if s.strip()} | {256})
    on_steps = RefineConfig().steps_2d
    torch.manual_seed(0)
    fitted, paths = {}, {}
    if a.stages_only:
        t_fit = once(lambda: fitted.update(zip(("engine", "cube"), fit_in_memory(main_dev))))
        validation = fitted["engine"].validation
    else:
        from core.deep.run import train_model
        from core.options import UnmixOptions

        for S in sizes:
            paths[S] = os.path.join(tmp, f"scene_{S}.tif")
            t = once(lambda S=S: make_raster(paths[S], S))
            print(f"generated {S}x{S}x{B} int16 in {t:.1f}s", flush=True)
        model = os.path.join(tmp, "model.pt")
        opts = UnmixOptions(endmembers=P, method="full", quality="fast", device=main_dev.type)
        t_fit = once(lambda: fitted.update(zip(("engine", "ctx"), train_model(paths[256], model, opts))))
        validation = fitted["ctx"].get("validation")
        model_on = with_refinement(model, os.path.join(tmp, "model_ddim.pt"), on_steps)
        model_off = with_refinement(model, os.path.join(tmp, "model_noddim.pt"), 0)
    res["fit"] = {"size": 256, "quality": "fast", "device": str(main_dev), "s": t_fit,
                  "self_validation": validation}
    print(f"fit (quality fast, 256², {main_dev}): {t_fit:.1f}s; self-validation: {validation}", flush=True)

    # stage kernels on one engine tile, per device
    tile = fitted["engine"].cfg.tile
    if a.stages_only:
        cube = fitted["cube"][:, :tile, :tile]
        valid = np.ones(cube.shape[1:], bool)
    else:
        from core.io.raster import RasterReader

        with RasterReader(paths[256]) as rd:
            cube, valid = rd.read(0, 0, tile, tile)
    res["stages"] = {str(d): stage_kernels(fitted["engine"], cube, valid, d, on_steps) for d in devices}
    print_stages(res["stages"])
    if a.stages_only:
        return

    # per raster size: I/O, references, apply with and without the refinement
    res["import_baseline_rss_mb"] = run_child(_BASELINE.format(root=ROOT))["rss_mb"]
    print(f"\nfresh process after importing core + torch: peak RSS {res['import_baseline_rss_mb']:.0f} MiB",
          flush=True)
    read_tile = max(tile, 512) if main_dev.type == "cuda" else tile  # the windows apply reads (run_full)
    res["read_tile"] = read_tile
    res["sizes"] = {str(S): measure_size(paths[S], S, tmp, devices, model_on, model_off, gdal, read_tile,
                                         references=not a.apply_only) for S in sizes}
    res["scaling"] = scaling(res["sizes"], devices)
    print_sizes(res["sizes"], devices, res["scaling"])
    if a.apply_only:
        return

    So = a.overlap_size or (1024 if 1024 in sizes else max(sizes))
    if So not in paths:
        paths[So] = os.path.join(tmp, f"scene_{So}.tif")
        make_raster(paths[So], So)
    res["overlap"] = overlap_overhead(paths[So], So, model_on, main_dev, tmp)
    default_unmixes(a, res, tmp, main_dev)


def default_unmixes(a, res, tmp, device):
    for S in (int(v) for v in a.unmix_sizes.split(",") if v.strip()):
        res[f"default_unmix_{S}"] = default_unmix(tmp, device, a.default_quality, S)


def default_unmix(tmp, device, quality, S=100):
    """``unmix`` with method full and default options (fitting included) of an S×S scene."""
    path = os.path.join(tmp, f"scene_u{S}.tif")
    make_raster(path, S, seed=1)
    d = unmix_child(path, tmp, f"default{S}", method="full", device=device.type, quality=quality)
    os.remove(path)
    t = d["report"]["timings_s"]
    print(f"\ndefault unmix (method full) of {S}x{S}x{B} on {device}: {d['s']:.1f}s (peak {d['rss_mb']:.0f} MiB)"
          f" = estimation {t.get('estimation_s', 0):.1f} + fitting {t.get('fitting_s', 0):.1f}"
          f" + calibration {t.get('calibration_s', 0):.1f} + inference {t.get('inference_s', 0):.1f} s"
          f" (P = {d['report']['endmember_count']})", flush=True)
    return {"options": f"UnmixOptions(method='full', device, quality={quality!r}), other defaults (P by HySime)",
            "device": str(device), "s": d["s"], "peak_rss_mb": d["rss_mb"], "timings_s": t,
            "endmember_count": d["report"]["endmember_count"], "self_validation": d["report"]["self_validation"]}


def scaling(sizes, devices):
    """Per apply variant: seconds per megapixel and peak RSS at each size (flat memory, linear time)."""
    out = {}
    for d in devices:
        for tag in ("ddim", "no_ddim"):
            runs = {S: r["apply"][str(d)][tag] for S, r in sizes.items()}
            out[f"{d}/{tag}"] = {"s_per_mpx": {S: x["s"] / (sizes[S]["pixels"] / 1e6) for S, x in runs.items()},
                                 "peak_rss_mb": {S: x["peak_rss_mb"] for S, x in runs.items()}}
    return out


def measure_size(src, S, tmp, devices, model_on, model_off, gdal, tile, references=True):
    """I/O floor, windowed read and write, VCA+FCLS and apply (DDIM on/off, per device) of one raster."""
    from core.io.raster import RasterReader, RasterWriter
    from core.run.tiling import tile_grid

    n = S * S
    r = {"pixels": n, "file_mb": os.path.getsize(src) / 2 ** 20}

    def read_tiles():  # the reads apply does: its windows (512 px on CUDA) with the default overlap
        with RasterReader(src) as rd:
            for y0, x0, h, w in tile_grid(S, S, tile, 16):
                rd.read(x0, y0, w, h)

    def write_strips():  # the writes apply does: P float32 bands in strips of tile rows
        A = np.random.default_rng(0).random((P, tile, S), dtype=np.float32)
        with RasterWriter(os.path.join(tmp, f"w_{S}.tif"), S, S, P) as wr:
            for y0 in range(0, S, tile):
                wr.write(A[:, : min(tile, S - y0)], 0, y0)
        os.remove(os.path.join(tmp, f"w_{S}.tif"))

    def gdal_copy():  # plain GDAL read + write of the same raster
        dst = os.path.join(tmp, f"copy_{S}.tif")
        gdal.Translate(dst, src, creationOptions=["TILED=YES", "BIGTIFF=IF_SAFER"])
        gdal.Unlink(dst)

    reps = 1 if S > 1024 else 2
    r["read_px_s"] = n / best_of(read_tiles, reps=reps)
    r["write_px_s"] = n / best_of(write_strips, reps=reps)
    if gdal is not None:  # without GDAL's bindings (benchmarks/gpu_apply.py on rasterio): reads and writes only
        r["gdal_copy_px_s"] = n / best_of(gdal_copy, reps=1, warmup=S <= 1024)
    print(f"{S}²: read {r['read_px_s']:,.0f}  write {r['write_px_s']:,.0f}  GDAL copy "
          f"{r.get('gdal_copy_px_s', float('nan')):,.0f} px/s", flush=True)
    if references:
        v = unmix_child(src, tmp, f"vca{S}", endmembers=P, method="vca-fcls")
        r["vca_fcls"] = {"s": v["s"], "px_s": n / v["s"], "peak_rss_mb": v["rss_mb"]}
        print(f"{S}²: VCA+FCLS {v['s']:.1f}s ({n / v['s']:,.0f} px/s, {v['rss_mb']:.0f} MiB)", flush=True)
    r["apply"] = {}
    for d in devices:
        r["apply"][str(d)] = {}
        for tag, model in (("ddim", model_on), ("no_ddim", model_off)):
            x = unmix_child(src, tmp, f"{tag}{S}", model=model, method="full", device=d.type)
            t_inf = x["report"]["timings_s"].get("inference_s")
            r["apply"][str(d)][tag] = {"s": x["s"], "px_s": n / x["s"], "peak_rss_mb": x["rss_mb"],
                                       "inference_s": t_inf, "inference_px_s": n / t_inf if t_inf else None}
            print(f"{S}²: apply {tag:7s} on {d}: {x['s']:.1f}s ({n / x['s']:,.0f} px/s, {x['rss_mb']:.0f} MiB);"
                  f" tiled pass alone {t_inf or float('nan'):.1f}s ({n / (t_inf or float('nan')):,.0f} px/s)",
                  flush=True)
    return r


def print_sizes(sizes, devices, scal):
    print("\n| size | read px/s | write px/s | GDAL copy px/s | VCA+FCLS s (MiB) | "
          + " | ".join(f"apply {d} {t} s (px/s, MiB)" for d in devices for t in ("ddim", "no_ddim")) + " |")
    print("|---|---|---|---|---|" + "---|" * (2 * len(devices)))
    for S, r in sizes.items():
        v = r.get("vca_fcls", {"s": float("nan"), "peak_rss_mb": float("nan")})
        cells = [f"{x['s']:.1f} ({x['px_s']:,.0f}, {x['peak_rss_mb']:.0f})"
                 for d in devices for x in (r["apply"][str(d)]["ddim"], r["apply"][str(d)]["no_ddim"])]
        print(f"| {S}² | {r['read_px_s']:,.0f} | {r['write_px_s']:,.0f} | {r['gdal_copy_px_s']:,.0f} "
              f"| {v['s']:.1f} ({v['peak_rss_mb']:.0f}) | " + " | ".join(cells) + " |")
    print("\napply scaling (s per megapixel; peak RSS MiB) by size:")
    for k, x in scal.items():
        print(f"  {k:16s} " + "  ".join(f"{S}²: {x['s_per_mpx'][S]:.1f} s/Mpx, {x['peak_rss_mb'][S]:.0f} MiB"
                                        for S in x["s_per_mpx"]))


def overlap_overhead(path, S, model, device, tmp):
    """``process_tiled`` with the engine's tile fn (DDIM on) at run_full's overlap vs none."""
    from core.deep.run import engine_from_checkpoint
    from core.io.raster import RasterReader, RasterWriter
    from core.run.tiling import process_tiled

    eng = engine_from_checkpoint(model, B, None, device)
    ov_default = max(eng.cfg.overlap, 4)  # what run_full uses
    ov = {"size": S, "tile": eng.cfg.tile, "ddim_steps_2d": eng.refine_cfg.steps_2d, "device": str(device)}
    for o in (ov_default, 0):
        margin = max(0, min(int(eng.hybrid.receptive_field), (o - 1) // 2))
        stats = {}

        def tiled(o=o, margin=margin, stats=stats):
            with RasterReader(path) as rd:
                with RasterWriter(os.path.join(tmp, f"ov{o}.tif"), S, S, P) as wr:
                    stats.update(process_tiled(rd, lambda c, v: eng.abundances(c, v), P, [(wr, 0, P)],
                                               tile=eng.cfg.tile, overlap=o, margin=margin))
            os.remove(os.path.join(tmp, f"ov{o}.tif"))

        t = once(tiled)
        ov[f"overlap_{o}"] = {"s": t, "px_s": S * S / t, "tiles": stats.get("tiles")}
    ov["overhead"] = ov[f"overlap_{ov_default}"]["s"] / ov["overlap_0"]["s"] - 1.0
    a, b = ov[f"overlap_{ov_default}"], ov["overlap_0"]
    print(f"\noverlap ({S}², tile {eng.cfg.tile}, DDIM {ov['ddim_steps_2d']} steps, {device}): overlap {ov_default}:"
          f" {a['s']:.1f}s ({a['tiles']} tiles) vs 0: {b['s']:.1f}s ({b['tiles']} tiles) → "
          f"+{100 * ov['overhead']:.0f} %", flush=True)
    return ov


if __name__ == "__main__":
    main()
