"""``apply`` raster to raster on CUDA, end to end, beside the same run's I/O floor (issue 18).

For each ``--sizes`` (default 1024², 2048²) × 200-band int16 GeoTIFF (reflectance×10000, scale 1e-4,
256-px tiles, the rasters of benchmarks/speed.py), with a model fitted once (quality 'fast', 256²)
and saved with the default DDIM refinement forced on (``RefineConfig().steps_2d``):

* ``apply`` (``unmix`` with the saved model) in a fresh process: wall seconds (imports excluded),
  pixels/s, peak host RSS (VmHWM) and peak GPU memory (torch's allocated and reserved);
* inside that run, the busy seconds of its three stages: ``read`` (RasterReader.read), ``compute``
  (the tile function on the device) and ``write`` (RasterWriter.write); they overlap (the tile loop
  prefetches and writes behind), so they do not add up to the wall time;
* the I/O floor: the same windowed reads and P-band float32 writes alone (benchmarks/speed.py's
  ``measure_size``), as ``read_px_s``, ``write_px_s`` and ``floor_s = n/read + n/write``.

Raster I/O goes through whichever backend the machine has (``core.io.raster.backend()``): GDAL's
bindings, else rasterio (a GPU host without GDAL: carry rasterio's wheel, see benchmarks/gpu_apply.sh).

Usage: python benchmarks/gpu_apply.py [--sizes 1024,2048] [--device cuda] [--out FILE]
Writes JSON (default benchmarks/results/gpu_apply.json) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import speed  # noqa: E402  (benchmarks/ is the script's folder)

_CHILD = """
import json, sys, threading, time
sys.path.insert(0, {root!r})
import torch
import core.io.raster as R
import core.run.tiling as T

busy, lock = {{"read_s": 0.0, "compute_s": 0.0, "write_s": 0.0}}, threading.Lock()

def timed(key, fn):
    def wrapper(*a, **k):
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            with lock:
                busy[key] += time.perf_counter() - t
    return wrapper

R.RasterReader.read = timed("read_s", R.RasterReader.read)
R.RasterWriter.write = timed("write_s", R.RasterWriter.write)
_tiled = T.process_tiled
T.process_tiled = lambda reader, fn, *a, **k: _tiled(reader, timed("compute_s", fn), *a, **k)
from core.options import UnmixOptions  # after the patches: deep.run takes process_tiled by name
from core.pipeline import unmix
opts = UnmixOptions(**json.loads({opts!r}))
t = time.perf_counter()
res = unmix({inp!r}, {abund!r}, {csv!r}, opts)
print("ELAPSED", time.perf_counter() - t)
gpu = torch.cuda.is_available()
print("REPORT", json.dumps({{"timings_s": res.report.get("timings_s"), "busy_s": busy, "backend": R.backend().NAME,
                            "gpu_max_allocated_mb": torch.cuda.max_memory_allocated() / 2**20 if gpu else None,
                            "gpu_max_reserved_mb": torch.cuda.max_memory_reserved() / 2**20 if gpu else None}},
                           default=str))
print([ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")][0].strip())
"""


def make_raster(path, S, seed=0):
    """speed.make_raster's raster, written with GDAL's bindings where they import, else with rasterio."""
    try:
        import osgeo.gdal  # noqa: F401
    except ImportError:
        pass
    else:
        return speed.make_raster(path, S, seed)
    import rasterio
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    E = speed.endmembers()
    A, sigma = speed.mixture(S, rng)
    wl = np.linspace(400, 2500, speed.B)
    with rasterio.open(path, "w", driver="GTiff", width=S, height=S, count=speed.B, dtype="int16", tiled=True,
                       blockxsize=256, blockysize=256, bigtiff="IF_SAFER",
                       transform=rasterio.Affine.from_gdal(300000.0, 30.0, 0.0, 5000000.0, 0.0, -30.0)) as ds:
        ds.scales = [speed.SCALE] * speed.B
        ds.offsets = [0.0] * speed.B
        for b in range(speed.B):
            ds.update_tags(b + 1, wavelength=f"{wl[b]:.2f}", wavelength_units="Nanometers")
        for y0 in range(0, S, 256):
            h = min(256, S - y0)
            Y = np.einsum("pb,phw->bhw", E, A[:, y0:y0 + h]).astype(np.float32)
            Y += (sigma * rng.standard_normal(Y.shape)).astype(np.float32)
            ds.write(np.clip(np.round(Y / speed.SCALE), -32768, 32767).astype(np.int16), window=Window(0, y0, S, h))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1024,2048")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "gpu_apply.json"))
    ap.add_argument("--model", help="a saved 200-band model to apply instead of fitting one (a dry run)")
    a = ap.parse_args()
    import torch

    from core.deep.checkpoint import load_checkpoint
    from core.deep.engine import EngineConfig, RefineConfig
    from core.deep.run import train_model
    from core.io.raster import backend
    from core.options import UnmixOptions

    if a.device == "cuda" and not torch.cuda.is_available():
        sys.exit("no CUDA device (use --device cpu to try the script)")
    sizes = [int(s) for s in a.sizes.split(",") if s.strip()]
    io = backend()
    res = {"machine": {**speed.machine_info(torch, None), "raster_backend": f"{io.NAME} {io.version()}"},
           "device": a.device, "bands": speed.B, "endmembers": speed.P,
           "metric": "px/s = pixels / wall seconds of unmix(model=...) in a fresh process, imports excluded; "
                     "busy_s = seconds each stage ran (they overlap); floor_s = n/read_px_s + n/write_px_s "
                     "(the same windows read and P float32 bands written, nothing computed)"}
    with tempfile.TemporaryDirectory(prefix="diffunmix-gpuapply-") as tmp:
        paths = {S: os.path.join(tmp, f"scene_{S}.tif") for S in sorted(set(sizes) | {256})}
        for S, p in paths.items():
            t = time.perf_counter()
            make_raster(p, S)
            print(f"generated {S}²×{speed.B} int16 in {time.perf_counter() - t:.1f}s", flush=True)
        model = a.model or os.path.join(tmp, "model.pt")
        if not a.model:
            torch.manual_seed(0)
            t = time.perf_counter()
            train_model(paths[256], model, UnmixOptions(endmembers=speed.P, method="full", quality="fast",
                                                        device=a.device))
            res["fit"] = {"size": 256, "quality": "fast", "s": time.perf_counter() - t}
        steps = RefineConfig().steps_2d
        model_on = speed.with_refinement(model, os.path.join(tmp, "model_ddim.pt"), steps)
        res["ddim_steps_2d"] = steps
        tile = int(load_checkpoint(model_on)["meta"]["config"].get("tile", EngineConfig().tile))
        read_tile = max(tile, 512) if a.device == "cuda" else tile  # the windows apply reads (deep.run)
        res["sizes"] = {}
        for S in sizes:
            n = S * S
            r = speed.measure_size(paths[S], S, tmp, [], None, None, None, read_tile, references=False)
            r["floor_s"] = n / r["read_px_s"] + n / r["write_px_s"]
            opts = json.dumps({"model": model_on, "method": "full", "device": a.device})
            code = _CHILD.format(root=ROOT, opts=opts, inp=paths[S], abund=os.path.join(tmp, f"A_{S}.tif"),
                                 csv=os.path.join(tmp, f"E_{S}.csv"))
            x = speed.run_child(code)
            r["apply"] = {"s": x["s"], "px_s": n / x["s"], "peak_rss_mb": x["rss_mb"], **(x["report"] or {})}
            res["sizes"][str(S)] = r
            b = r["apply"]["busy_s"]
            print(f"{S}²: apply {x['s']:.1f}s = {n / x['s']:,.0f} px/s; busy read {b['read_s']:.1f}s compute "
                  f"{b['compute_s']:.1f}s write {b['write_s']:.1f}s; I/O floor {r['floor_s']:.1f}s; host "
                  f"{x['rss_mb']:,.0f} MiB, GPU {r['apply'].get('gpu_max_allocated_mb') or 0:,.0f} MiB", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=1, default=str)
    print("| size | apply px/s | wall s | read s | compute s | write s | I/O floor s | host MiB | GPU MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for S, r in res["sizes"].items():
        x, b = r["apply"], r["apply"]["busy_s"]
        print(f"| {S}² | {x['px_s']:,.0f} | {x['s']:.1f} | {b['read_s']:.1f} | {b['compute_s']:.1f} | "
              f"{b['write_s']:.1f} | {r['floor_s']:.1f} | {x['peak_rss_mb']:,.0f} | "
              f"{x.get('gpu_max_allocated_mb') or 0:,.0f} |")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
