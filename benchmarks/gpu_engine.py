"""Engine throughput on CPU and CUDA without GDAL (runs on a bare GPU machine).

Fits a small engine (quality 'fast') to a synthetic 200-band, 5-endmember
mixture, then measures pixels/s of the tile kernel: HybridSTU alone (with its
bilateral-filtered FCLS prior) and HybridSTU + DDIM refinement (2 steps, forced
on even if the self-validation gate switched it off), on square tiles of each
``--tiles`` size; and checks that CUDA and CPU agree. Prints a table and writes JSON (default
benchmarks/results/gpu_engine.json, or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from timing import best_of  # noqa: E402  (benchmarks/ is the script's folder)


def scene(B=200, P=5, H=256, W=256, seed=0):
    from core.classical.synth import abundance_field

    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, B)
    E = np.stack([0.2 + 0.6 * np.abs(np.sin(3 * x * (k + 1) + k)) for k in range(P)])
    A = abundance_field(P, H, W, "grf", rng, purity=0.5)
    Y = np.einsum("pb,phw->bhw", E, A).astype(np.float32)
    sigma = 0.01 * np.ones(B)
    Y += (sigma[:, None, None] * rng.standard_normal(Y.shape)).astype(np.float32)
    return Y, A, E, sigma


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "gpu_engine.json"))
    ap.add_argument("--tiles", default="256,1024", help="tile sizes (px) to time")
    a = ap.parse_args()
    tiles = [int(v) for v in a.tiles.split(",")]
    import torch

    from core.deep.engine import EngineConfig, fit_engine
    from core.deep.engine import fcls_prior

    Y, A, E, sigma = scene(H=max(tiles), W=max(tiles))
    B = Y.shape[0]
    pix = Y[:, :256, :256].reshape(B, -1).T
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    res = {"machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__,
                       "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None},
           "tiles": tiles, "bands": B, "endmembers": E.shape[0], "devices": {}}
    outs = {}
    small = Y[:, :256, :256]
    for dev in devices:
        torch.manual_seed(0)
        t = time.perf_counter()
        eng = fit_engine(pix, E * 1.02, [f"EM{i}" for i in range(5)], sigma, EngineConfig.preset("fast"),
                         torch.device(dev), seed=0)
        if dev == "cuda":
            torch.cuda.synchronize()
        t_fit = time.perf_counter() - t
        gate = dict(eng.validation)
        eng.refine_cfg.steps_2d = 2  # time the default DDIM refinement even where the gate turned it off
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
        res["devices"][dev] = {"fit_s": t_fit, "self_validation": gate, "ddim_steps": 2, "tiles": {}}
        for size in tiles:
            if dev == "cpu" and size > 256:
                continue  # the CPU figures at scale come from benchmarks/speed.py
            Yt = np.ascontiguousarray(Y[:, :size, :size])

            def hyb(eng=eng, sync=sync, Yt=Yt):
                eng.abundances(Yt, stages="hybrid")
                sync()

            def full(eng=eng, sync=sync, Yt=Yt):
                eng.abundances(Yt)
                sync()

            y = torch.from_numpy(Yt)[None].to(dev)
            Et = torch.as_tensor(E, dtype=torch.float32, device=dev)
            t_prior = best_of(lambda y=y, Et=Et, sync=sync: (fcls_prior(y, Et), sync()))
            t_h, t_f = best_of(hyb), best_of(full)
            n = size * size
            res["devices"][dev]["tiles"][size] = {"fcls_prior_px_s": n / t_prior, "hybrid_px_s": n / t_h,
                                                  "hybrid_ddim_px_s": n / t_f}
            print(f"{dev:5s} tile {size:5d} fit {t_fit:6.1f}s  FCLS prior {n / t_prior:12,.0f} px/s"
                  f"  HybridSTU {n / t_h:12,.0f} px/s  HybridSTU+DDIM {n / t_f:12,.0f} px/s", flush=True)
        outs[dev] = (eng, eng.abundances(small))
    if "cuda" in outs:  # same weights on both devices: load the CUDA engine's state into a CPU engine
        eng_gpu = outs["cuda"][0]
        from core.deep.engine import Engine

        cpu = Engine(B, eng_gpu.E, eng_gpu.names, eng_gpu.cfg, eng_gpu.scale, "cpu")
        cpu.load_state({k: {n: v.cpu() for n, v in sd.items()} for k, sd in eng_gpu.state().items()})
        cpu.refine_cfg.steps_2d = eng_gpu.refine_cfg.steps_2d
        diff = float(np.abs(cpu.abundances(small) - outs["cuda"][1]).max())
        res["cuda_vs_cpu_max_abs_diff"] = diff
        print(f"same weights, CUDA vs CPU abundances: max |diff| = {diff:.2e}")
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=1)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
