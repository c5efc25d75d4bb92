"""Scale-out of DiffUnmix on Dask (``--scheduler``): throughput, overhead, memory, projection.

Measures, on this machine:

* ``apply`` of an S×S×200 raster (``--size``, default 2048; int16 GeoTIFF as benchmarks/speed.py
  writes it) with a default-preset engine (DDIM refinement on): in process (torch on every core)
  vs ``--scheduler local:1`` vs ``local:2`` (single-thread worker processes). Each run is
  ``python -m core apply`` in a fresh process; throughput = valid pixels / the tile phase's wall
  time (the report's ``inference_s``: the cluster's start-up is reported apart, it is paid once
  per session); the process tree is sampled every 0.2 s for the peak RSS of the client and of
  each worker;
* a batch of ``--batch`` rasters of ``--batch-size``² (default 8 × 512²; in process vs ``local:2``);
* the per-task overhead: tiles whose function does nothing, in process vs on ``local:2``;
* client and worker peak memory of ``unmix --method vca-fcls --scheduler local:2`` on
  1024² / 2048² / 4096² × 50 bands (``--memory-sizes``): flat if the client does not grow;
* a projection of 1,000 scenes of 1000×1000×224 on 16 / 64 / 256 CPU worker cores and on 8 GPUs,
  from the measured per-tile CPU cost and per-task overhead (assumptions in the JSON).

The engine is an unfitted default-preset engine saved as a real checkpoint (the networks, tile
size and DDIM steps of a fitted one, so the same arithmetic): fitting is not what is scaled out.

Writes benchmarks/results/scale.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import speed  # noqa: E402  (benchmarks/: the raster writer and machine record)


def save_default_model(path: str, bands: int = speed.B) -> str:
    """An unfitted engine of the default preset (DDIM refinement on) as a real checkpoint."""
    import torch

    from core.deep.checkpoint import save_checkpoint
    from core.deep.engine import Engine, EngineConfig
    from core.deep.run import checkpoint_payload

    torch.manual_seed(0)
    cfg = EngineConfig.preset("default")
    E = speed.endmembers()[:, :bands]
    eng = Engine(bands, E, [f"EM{i + 1}" for i in range(E.shape[0])], cfg, float(E.mean()), "cpu")
    eng.trained = ["hybridstu", "abundance-diffusion"]
    wl = np.linspace(400, 2500, bands)
    save_checkpoint(path, checkpoint_payload(eng, range(bands), wl, {}))
    return path


class TreeMemory:
    """Peak RSS (MB) of a process (the client) and of each descendant, sampled every 0.2 s."""

    def __init__(self, pid: int):
        import psutil

        self.proc = psutil.Process(pid)
        self.client_mb, self.children_mb = 0.0, {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        import psutil

        while not self._stop.is_set():
            try:
                self.client_mb = max(self.client_mb, self.proc.memory_info().rss / 2**20)
                for c in self.proc.children(recursive=True):
                    try:
                        rss = c.memory_info().rss / 2**20
                        cmd = " ".join(c.cmdline())
                    except psutil.Error:
                        continue
                    kind = "worker" if "spawn_main" in cmd else "resource_tracker" if "resource_tracker" in cmd \
                        else "other"
                    key = f"{kind} {c.pid}"
                    self.children_mb[key] = max(self.children_mb.get(key, 0.0), rss)
            except psutil.Error:
                pass
            time.sleep(0.2)

    def stop(self):
        self._stop.set()
        self._t.join()
        workers = {k: round(v, 1) for k, v in self.children_mb.items() if k.startswith("worker")}
        return {"client_peak_mb": round(self.client_mb, 1), "worker_peak_mb": workers,
                "max_worker_peak_mb": max(workers.values(), default=None)}


def run_cli(args, env=None) -> dict:
    """``python -m core ARGS`` in a fresh process: wall seconds and memory of its process tree."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "core", *map(str, args), "-q"], cwd=ROOT,
                            env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    mem = TreeMemory(proc.pid)
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    m = mem.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({proc.returncode}): {err[-2000:]}")
    return {"wall_s": round(wall, 2), **m}


def apply_run(raster, model, out, scheduler=None) -> dict:
    args = ["apply", raster, "--model", model, "--out", out, "--device", "cpu"]
    if scheduler:
        args += ["--scheduler", scheduler]
    r = run_cli(args)
    rep = json.load(open(os.path.join(out, "report.json")))
    t = rep["timings_s"]
    r.update(inference_s=t["inference_s"], total_s=t["total_s"], valid_pixels=rep["valid_pixels"],
             px_s=round(rep["valid_pixels"] / t["inference_s"], 1), distributed=rep.get("distributed"))
    d = rep.get("distributed")
    if d:
        r["tiles"] = sum(w.get("windows", w["tasks"]) for w in d["per_worker"].values())
        r["tasks"] = sum(w["tasks"] for w in d["per_worker"].values())
        r["worker_cpu_s"] = round(sum(w["cpu_s"] for w in d["per_worker"].values()), 2)
        r["startup_s"] = round(t["total_s"] - t["inference_s"], 2)
        r["cluster_start_s"] = round(t.get("cluster_start_s", 0.0), 2)
    shutil.rmtree(out, ignore_errors=True)
    return r


def per_task_overhead(tmp, n_tiles: int = 300) -> dict:
    """Seconds per task of tiles whose function does (almost) nothing: the cost of the scheduling."""
    from core.io.raster import RasterReader, RasterWriter
    from core.run.distributed import session, tile_runner
    from core.run.tiling import process_tiled, tile_grid

    path = os.path.join(tmp, "tiny.tif")
    side = 16 * int(np.ceil(np.sqrt(n_tiles)))
    speed.make_raster(path, side)
    out = {}
    with RasterReader(path) as r:
        n = len(tile_grid(side, side, 16, 0))
        for name in ("in_process", "local:2"):
            w = RasterWriter(os.path.join(tmp, f"o_{name}.tif"), side, side, 1)
            t0 = time.perf_counter()
            if name == "in_process":
                process_tiled(r, _nothing, 1, [(w, 0, 1)], tile=16, overlap=0)
                dt = time.perf_counter() - t0
            else:
                with session(name) as client:
                    client.wait_for_workers(2)
                    tiles = tile_runner(client, _nothing, path, list(range(len(r.bands))))
                    t0 = time.perf_counter()
                    process_tiled(r, _nothing, 1, [(w, 0, 1)], tile=16, overlap=0, tiles=tiles)
                    dt = time.perf_counter() - t0
            w.close()
            out[name] = {"tiles": n, "s": round(dt, 3), "ms_per_tile": round(1000 * dt / n, 2)}
    out["overhead_ms_per_task"] = round(out["local:2"]["ms_per_tile"] - out["in_process"]["ms_per_tile"], 2)
    return out


def _nothing(cube, valid):
    return np.zeros((1,) + valid.shape, np.float32)


def project(px_s_per_core: float, overhead_s: float, gpu_px_s: float | None) -> dict:
    """Wall hours of 1,000 scenes of 1000×1000×224 from a per-core rate and a per-task overhead."""
    scenes, px = 1000, 1000 * 1000
    bands_factor = 224 / 200  # the first layers, FCLS and the reads scale with the bands
    tiles_per_scene = 81  # 1000 px in 128-px windows with a 16-px overlap: 9×9
    core_s = px * bands_factor / px_s_per_core + tiles_per_scene * overhead_s
    eff = 0.9
    out = {"core_s_per_scene": round(core_s, 1), "assumptions": [
        f"per-core rate {px_s_per_core:.0f} valid px/s at 200 bands (local:1 tile phase here, overlap included), "
        f"×224/200 for 224 bands",
        f"{tiles_per_scene} tasks per scene (128-px tiles, overlap 16), {overhead_s * 1000:.1f} ms scheduling "
        f"overhead per task (measured here)",
        "single-thread worker processes, one per core, each as fast as one core of this machine; a saved model "
        "applied (apply / batch --model: no fitting); the shared file system delivers ≈ 0.9 GB int16 per scene",
        f"parallel efficiency {eff} (last wave of tasks, stragglers, scheduler)"]}
    for cores in (16, 64, 256):
        out[f"cpu_{cores}_cores_h"] = round(scenes * core_s / cores / eff / 3600, 2)
    if gpu_px_s:
        out["gpu_8_h"] = round(scenes * px * bands_factor / gpu_px_s / 8 / eff / 3600, 2)
        out["assumptions"].append(
            f"GPU: {gpu_px_s:.0f} px/s per GPU = the tile phase of apply on one H200 in "
            f"benchmarks/results/speed_cuda_h200_apply.json (512-px tiles, read-bound); one worker per GPU "
            f"(CUDA_VISIBLE_DEVICES); not measured in this session: no GPU was lent to it")
    return out


def gpu_rate() -> float | None:
    """The tile-phase rate of apply on a GPU recorded by benchmarks/speed.py (largest size), or None."""
    try:
        d = json.load(open(os.path.join(ROOT, "benchmarks", "results", "speed_cuda_h200_apply.json")))
        sizes = d["sizes"]
        return float(sizes[max(sizes, key=int)]["apply"]["cuda"]["ddim"]["inference_px_s"])
    except (OSError, ValueError, KeyError):
        return None


def save(path, res):
    """Write what is measured so far (a long run stopped half-way keeps its parts)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(res, fh, indent=1)


def quiet_cpu_rate() -> float | None:
    """Per-core apply rate on a quiet machine: benchmarks/results/speed_2048.json's in-process apply
    (DDIM on, 2 threads on this 2-core VM) halved, or None."""
    try:
        d = json.load(open(os.path.join(ROOT, "benchmarks", "results", "speed_2048.json")))
        sizes = d["sizes"]
        S = max(sizes, key=int)
        return int(S) ** 2 / float(sizes[S]["apply"]["cpu"]["ddim"]["inference_s"]) / 2
    except (OSError, ValueError, KeyError):
        return None


def projections(res) -> dict:
    """The projection from this run's local:1 rate and from the quiet-machine rate (when recorded)."""
    over = res["per_task"]["overhead_ms_per_task"] / 1000
    one = res["apply"]["local:1"]
    out = {"from_this_run_local1_wall": project(one["valid_pixels"] / max(one["inference_s"], 1e-9), over, gpu_rate()),
           "from_this_run_local1_cpu": project(one["valid_pixels"] / max(one["worker_cpu_s"], 1e-9), over, gpu_rate())}
    out["from_this_run_local1_cpu"]["assumptions"].insert(
        0, "per-core rate: valid pixels / CPU seconds of the worker thread that ran the tiles (local:1): what a "
           "core gives when nothing else runs on it")
    q = quiet_cpu_rate()
    if q:
        out["from_quiet_machine_speed_2048"] = project(q, over, gpu_rate())
        out["from_quiet_machine_speed_2048"]["assumptions"].insert(
            0, "per-core rate: speed_2048.json apply 2048² in process (2 threads, quiet VM) / 2 cores")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048, help="apply raster side (default 2048)")
    ap.add_argument("--batch", type=int, default=8, help="rasters in the batch (default 8)")
    ap.add_argument("--batch-size", type=int, default=512, help="side of the batch's rasters (default 512)")
    ap.add_argument("--memory-sizes", default="1024,2048,4096")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: apply,batch,overhead,memory")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "scale.json"))
    ap.add_argument("--reproject", action="store_true", help="only recompute the projection of --out")
    a = ap.parse_args()
    if a.reproject:
        res = json.load(open(a.out))
        res["projection_1000_scenes"] = projections(res)
        save(a.out, res)
        print(json.dumps(res["projection_1000_scenes"], indent=1))
        return
    skip = set(filter(None, a.skip.split(",")))
    import torch
    from osgeo import gdal

    res = {"machine": speed.machine_info(torch, gdal), "metric": {
        "px_s": "valid pixels / wall seconds of the tile phase (report inference_s), cluster start-up excluded",
        "client_peak_mb / worker_peak_mb": "peak RSS of the client process / each worker process, sampled 0.2 s",
        "worker_cpu_s": "CPU seconds of the threads that ran the tile functions, summed over workers"}}
    parts = {"apply": "apply", "batch": "batch", "overhead": "per_task", "memory": "memory"}
    if skip and os.path.exists(a.out):  # keep the parts measured earlier
        prev = json.load(open(a.out))
        res.update({key: prev[key] for part, key in parts.items() if part in skip and key in prev})
        res["machine_of_kept_parts"] = prev.get("machine")
    res["machine"]["note"] = ("load averages recorded at the start, the end and after each run (this benchmark's own "
                              "processes count in them): wall-time ratios are pessimistic when other jobs take a core")
    tmp = tempfile.mkdtemp(prefix="diffunmix-scale-")
    try:
        model = save_default_model(os.path.join(tmp, "model.pt"))
        if "apply" not in skip:
            raster = os.path.join(tmp, f"r{a.size}.tif")
            speed.make_raster(raster, a.size)
            res["apply"] = {"size": a.size, "bands": speed.B}
            for name, sched in (("in_process", None), ("local:1", "local:1"), ("local:2", "local:2")):
                res["apply"][name] = r = apply_run(raster, model, os.path.join(tmp, "o"), sched)
                r["load_avg"] = list(os.getloadavg())
                print(f"apply {a.size}² {name:10s} {r['px_s']:9.0f} px/s  tile phase {r['inference_s']:7.1f} s  "
                      f"client {r['client_peak_mb']:6.0f} MB  workers {r['max_worker_peak_mb']} MB", flush=True)
            ap_ = res["apply"]
            res["apply"]["ratios"] = {"local2_over_local1": round(ap_["local:2"]["px_s"] / ap_["local:1"]["px_s"], 3),
                                      "local2_over_in_process": round(ap_["local:2"]["px_s"]
                                                                      / ap_["in_process"]["px_s"], 3)}
            os.remove(raster)
        save(a.out, res)
        if "batch" not in skip:
            folder = os.path.join(tmp, "scenes")
            os.makedirs(folder)
            for i in range(a.batch):
                speed.make_raster(os.path.join(folder, f"s{i}.tif"), a.batch_size, seed=i)
            res["batch"] = {"rasters": a.batch, "size": a.batch_size}
            for name, sched in (("in_process", None), ("local:2", "local:2")):
                args = ["batch", os.path.join(folder, "*.tif"), "--model", model, "--out", os.path.join(tmp, name),
                        "--device", "cpu"] + (["--scheduler", sched] if sched else [])
                r = run_cli(args)
                doc = json.load(open(os.path.join(tmp, name, "batch.json")))
                r.update(counts=doc["counts"], batch_total_s=doc["total_s"],
                         scenes_per_min=round(60 * a.batch / doc["total_s"], 2), load_avg=list(os.getloadavg()))
                res["batch"][name] = r
                print(f"batch {a.batch}×{a.batch_size}² {name:10s} {doc['total_s']:7.1f} s  "
                      f"client {r['client_peak_mb']:6.0f} MB  workers {r['max_worker_peak_mb']} MB", flush=True)
        save(a.out, res)
        if "overhead" not in skip:
            res["per_task"] = per_task_overhead(tmp)
            print(f"per-task overhead {res['per_task']['overhead_ms_per_task']} ms", flush=True)
        save(a.out, res)
        if "memory" not in skip:
            res["memory"] = {"command": "unmix --method vca-fcls -p 5 --scheduler local:2", "bands": 50}
            for S in map(int, a.memory_sizes.split(",")):
                raster = os.path.join(tmp, f"m{S}.tif")
                speed.B = 50
                try:
                    speed.make_raster(raster, S)
                finally:
                    speed.B = 200
                r = run_cli(["unmix", raster, "--method", "vca-fcls", "-p", "5", "--out", os.path.join(tmp, "m"),
                             "--scheduler", "local:2"])
                r["load_avg"] = list(os.getloadavg())
                res["memory"][str(S)] = r
                print(f"memory {S}² client {r['client_peak_mb']:6.0f} MB  workers {r['max_worker_peak_mb']} MB  "
                      f"{r['wall_s']} s", flush=True)
                os.remove(raster)
                shutil.rmtree(os.path.join(tmp, "m"), ignore_errors=True)
        if "apply" in res and "per_task" in res:
            res["projection_1000_scenes"] = projections(res)
        res["machine"]["load_avg_at_end"] = list(os.getloadavg())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    save(a.out, res)
    print(json.dumps(res.get("projection_1000_scenes"), indent=1))
    print(f"→ {a.out}")


if __name__ == "__main__":
    main()
