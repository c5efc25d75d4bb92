"""End-to-end speed of DiffUnmix on this machine: I/O floor, FCLS, engine apply, VCA+FCLS.

Generates int16 reflectance×10000 GeoTIFFs (scale 1e-4, 256-px tiles) of
S×S×200 bands mixing 5 endmembers (``core.synth.abundance_field`` 'grf', 30 dB
noise) in a temporary folder; fits one engine (quality 'fast') on the 256²
raster; then per size measures pixels/s of a windowed read, a plain GDAL copy
to Float32 (the I/O floor), streamed FCLS, ``apply`` (``unmix`` with the saved
model) and VCA+FCLS end to end, each ``unmix`` in a fresh subprocess whose
peak resident memory is read from its own /proc VmHWM. Also per-stage
kernel numbers on one 256×256 tile and the cost of the tile overlap. Prints a
table and writes JSON (default benchmarks/results/speed.json, or --out).
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


def endmembers():
    x = np.linspace(0, 1, B)
    return np.stack([0.05 + 0.5 * np.abs(np.sin(3 * x * (k + 1) + k)) for k in range(P)])


def make_raster(path, S, seed=0):
    """S×S×200 int16 GeoTIFF (reflectance×10000, scale 1e-4, tiled 256), written in row bands."""
    from osgeo import gdal

    from core.synth import abundance_field

    rng = np.random.default_rng(seed)
    E = endmembers()
    A = abundance_field(P, S, S, "grf", rng, purity=0.5).astype(np.float32)
    sig_pow = float(np.mean(np.einsum("pb,phw->bhw", E, A[:, :64, :64]) ** 2))
    sigma = np.sqrt(sig_pow / 10 ** (SNR_DB / 10))
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
    step = 256
    for y0 in range(0, S, step):
        h = min(step, S - y0)
        Y = np.einsum("pb,phw->bhw", E, A[:, y0:y0 + h]).astype(np.float32)
        Y += (sigma * rng.standard_normal(Y.shape)).astype(np.float32)
        raw = np.clip(np.round(Y / SCALE), -32768, 32767).astype(np.int16)
        ds.WriteRaster(0, y0, S, h, raw.tobytes(), S, h, gdal.GDT_Int16)
    ds.FlushCache()
    ds = None
    return E


def once(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


_CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
from core.pipeline import UnmixOptions, unmix
opts = UnmixOptions(**json.loads({opts!r}))
t = time.perf_counter()
unmix({inp!r}, {abund!r}, {csv!r}, opts)
print("ELAPSED", time.perf_counter() - t)
print([ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")][0].strip())
"""

_BASELINE = """
import sys
sys.path.insert(0, {root!r})
import core.pipeline, core.engine_run, torch  # noqa
print([ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")][0].strip())
"""


def run_child(code):
    """Run ``python -c code`` in a fresh process; returns (seconds printed by it or wall, peak RSS MiB)."""
    with tempfile.TemporaryFile("w+") as out:
        t = time.perf_counter()
        p = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, ru = os.wait4(p.pid, 0)  # rusage of this child only (ru_maxrss in KiB on Linux)
        wall = time.perf_counter() - t
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    if p.returncode != 0:
        raise RuntimeError(f"child failed ({p.returncode}):\n{text[-3000:]}")
    elapsed = [float(line.split()[1]) for line in text.splitlines() if line.startswith("ELAPSED ")]
    # VmHWM is the peak RSS of the exec'd image alone; ru_maxrss also counts the parent's RSS
    # inherited at fork (Linux keeps the high-water mark across exec), so it is only a fallback
    hwm = [float(line.split()[1]) for line in text.splitlines() if line.startswith("VmHWM:")]
    return (elapsed[-1] if elapsed else wall), (hwm[-1] if hwm else ru.ru_maxrss) / 1024.0


def unmix_child(inp, tmp, tag, **opts):
    code = _CHILD.format(root=ROOT, opts=json.dumps(opts), inp=inp, abund=os.path.join(tmp, f"A_{tag}.tif"),
                         csv=os.path.join(tmp, f"E_{tag}.csv"))
    return run_child(code)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="256,1024", help="comma-separated raster sizes S (S×S px); 2048 is slow")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "speed.json"))
    ap.add_argument("--overlap-size", type=int, default=0,
                    help="raster size for the overlap test (default: 1024 if measured, else the largest size)")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    if 256 not in sizes:
        sizes = [256] + sizes
    sizes = sorted(set(sizes))

    import torch
    from osgeo import gdal

    from core.engine import fcls_prior, pick_device
    from core.engine_run import engine_from_checkpoint, set_threads, train_model
    from core.fcls import fcls
    from core.pipeline import UnmixOptions
    from core.raster import RasterReader, RasterWriter
    from core.tiling import process_tiled

    gdal.UseExceptions()
    set_threads()
    device = pick_device(a.device)
    cuda = device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    res = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                       "torch_threads": torch.get_num_threads(), "gdal": gdal.__version__,
                       "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
           "device": str(device), "bands": B, "endmembers": P, "snr_db": SNR_DB, "storage": "int16 x1e-4, tiled 256",
           "sizes": {}, "notes": []}
    print(f"# {res['machine']['platform']}  cpus={res['machine']['cpus']}  torch threads={torch.get_num_threads()}"
          f"  device={device}  gpu={res['machine']['gpu']}", flush=True)
    tmp = tempfile.mkdtemp(prefix="diffunmix_speed_")
    try:
        paths, Es = {}, {}
        for S in sizes:
            paths[S] = os.path.join(tmp, f"scene_{S}.tif")
            t = once(lambda S=S: Es.__setitem__(S, make_raster(paths[S], S)))
            print(f"generated {S}x{S}x{B} int16 in {t:.1f}s", flush=True)

        model = os.path.join(tmp, "model.pt")
        torch.manual_seed(0)
        t_fit = once(lambda: train_model(paths[256], model, UnmixOptions(endmembers=P, method="full", quality="fast",
                                                                         device=a.device)))
        res["fit_256_fast_s"] = t_fit
        print(f"fit (quality fast, 256², {device}): {t_fit:.1f}s", flush=True)

        base_s, base_mb = run_child(_BASELINE.format(root=ROOT))
        res["child_import_baseline_rss_mb"] = base_mb
        print(f"fresh process after importing core + torch: peak RSS {base_mb:.0f} MiB", flush=True)

        rows = []
        for S in sizes:
            n = S * S
            src = paths[S]
            r = {"pixels": n, "file_mb": os.path.getsize(src) / 2 ** 20}

            def read_all(src=src):
                with RasterReader(src) as rd:
                    for w in rd.windows():
                        rd.read(*w)

            r["read_px_s"] = n / best_of(read_all, reps=2)

            def gdal_copy(src=src, S=S):
                dst = os.path.join(tmp, f"copy_{S}.tif")
                gdal.Translate(dst, src, outputType=gdal.GDT_Float32, creationOptions=["TILED=YES", "BIGTIFF=IF_SAFER"])
                gdal.Unlink(dst)

            r["gdal_copy_px_s"] = n / best_of(gdal_copy, reps=1)

            E = Es[S]

            def fcls_all(src=src, E=E):
                with RasterReader(src) as rd:
                    for w in rd.windows():
                        cube, _ = rd.read(*w)
                        fcls(cube.reshape(B, -1).T, E)

            r["read_fcls_px_s"] = n / best_of(fcls_all, reps=1)

            t_apply, rss_apply = unmix_child(src, tmp, f"apply{S}", model=model, method="full", device=a.device)
            r["apply_px_s"], r["apply_s"], r["apply_peak_rss_mb"] = n / t_apply, t_apply, rss_apply
            t_vca, rss_vca = unmix_child(src, tmp, f"vca{S}", endmembers=P, method="vca-fcls")
            r["vca_fcls_px_s"], r["vca_fcls_s"], r["vca_fcls_peak_rss_mb"] = n / t_vca, t_vca, rss_vca
            res["sizes"][str(S)] = r
            rows.append((S, r))
            print(f"{S:5d}²  read {r['read_px_s']:11,.0f}  gdal copy {r['gdal_copy_px_s']:11,.0f}"
                  f"  read+FCLS {r['read_fcls_px_s']:11,.0f}  apply {r['apply_px_s']:9,.0f} px/s"
                  f" ({t_apply:.1f}s, {rss_apply:.0f} MiB)  VCA+FCLS {r['vca_fcls_px_s']:9,.0f} px/s"
                  f" ({t_vca:.1f}s, {rss_vca:.0f} MiB)", flush=True)

        # per-stage kernel numbers on one 256×256 tile
        eng = engine_from_checkpoint(model, B, None, device)
        with RasterReader(paths[256]) as rd:
            cube, valid = rd.read(0, 0, 256, 256)
        n = 256 * 256
        y = eng._prepare(cube, valid)
        Et = torch.as_tensor(eng.E / eng.scale, dtype=torch.float32, device=device)

        def k_prior():
            fcls_prior(y, Et)
            sync()

        def k_hybrid():
            eng.abundances(cube, valid, stages="hybrid")
            sync()

        def k_full():
            eng.abundances(cube, valid)
            sync()

        x = torch.randn(1, P, 256, 256, device=device)
        cond = torch.randn(1, P, 256, 256, device=device)
        t_step = torch.tensor([int(eng.refine_cfg.start_2d)], device=device)

        @torch.no_grad()
        def k_step():
            eng.unet2d(x, t_step, cond)
            sync()

        kern = {"tile": [256, 256], "ddim_steps": int(eng.refine_cfg.steps_2d),
                "fcls_prior_px_s": n / best_of(k_prior), "hybrid_px_s": n / best_of(k_hybrid),
                "hybrid_ddim_px_s": n / best_of(k_full), "unet2d_step_px_s": n / best_of(k_step)}
        kern["unet2d_step_ms"] = n / kern["unet2d_step_px_s"] * 1e3
        res["kernel_256"] = kern
        print(f"kernel 256² tile: FCLS prior {kern['fcls_prior_px_s']:,.0f}  HybridSTU {kern['hybrid_px_s']:,.0f}"
              f"  HybridSTU+DDIM({kern['ddim_steps']}) {kern['hybrid_ddim_px_s']:,.0f}"
              f"  one ResUNet2D step {kern['unet2d_step_px_s']:,.0f} px/s ({kern['unet2d_step_ms']:.0f} ms)",
              flush=True)

        # tile overlap overhead: process_tiled with the engine's tile fn at the default overlap vs 0
        So = a.overlap_size or (1024 if 1024 in sizes else max(sizes))
        if So not in paths:
            paths[So] = os.path.join(tmp, f"scene_{So}.tif")
            make_raster(paths[So], So)
        ov_default = max(eng.cfg.overlap, 4)  # what run_full uses
        ov = {"size": So, "tile": eng.cfg.tile}
        for o in (ov_default, 0):
            margin = max(0, min(int(eng.hybrid.receptive_field), (o - 1) // 2))

            def tiled(o=o, margin=margin):
                with RasterReader(paths[So]) as rd:
                    info = rd.info
                    with RasterWriter(os.path.join(tmp, f"ov{o}.tif"), info.width, info.height, P) as wr:
                        st = process_tiled(rd, lambda c, v: eng.abundances(c, v), P, [(wr, 0, P)],
                                           tile=eng.cfg.tile, overlap=o, margin=margin)
                return st

            stats = {}
            tt = once(lambda tiled=tiled, stats=stats: stats.update(tiled()))
            ov[f"overlap_{o}"] = {"s": tt, "px_s": So * So / tt, "tiles": stats.get("tiles")}
        ov["overhead"] = ov[f"overlap_{ov_default}"]["s"] / ov["overlap_0"]["s"] - 1.0
        res["overlap"] = ov
        print(f"overlap ({So}², tile {eng.cfg.tile}): overlap {ov_default}: {ov[f'overlap_{ov_default}']['s']:.1f}s"
              f" ({ov[f'overlap_{ov_default}']['tiles']} tiles) vs overlap 0: {ov['overlap_0']['s']:.1f}s"
              f" ({ov['overlap_0']['tiles']} tiles) → +{100 * ov['overhead']:.0f} %", flush=True)

        res["notes"].append("apply and VCA+FCLS times are unmix() inside a fresh process (imports excluded); "
                            "peak RSS is that process's VmHWM (includes the import baseline); getrusage ru_maxrss "
                            "(RUSAGE_CHILDREN / wait4) is not used: on Linux it keeps the parent's RSS inherited "
                            "at fork across exec.")
        print()
        print("| size | read px/s | GDAL copy px/s | read+FCLS px/s | apply px/s | apply s | apply RSS MiB "
              "| VCA+FCLS px/s | VCA+FCLS s | VCA+FCLS RSS MiB |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for S, r in rows:
            print(f"| {S}² | {r['read_px_s']:,.0f} | {r['gdal_copy_px_s']:,.0f} | {r['read_fcls_px_s']:,.0f} "
                  f"| {r['apply_px_s']:,.0f} | {r['apply_s']:.1f} | {r['apply_peak_rss_mb']:.0f} "
                  f"| {r['vca_fcls_px_s']:,.0f} | {r['vca_fcls_s']:.1f} | {r['vca_fcls_peak_rss_mb']:.0f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=1)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
