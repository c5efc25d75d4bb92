"""FCLS speed and accuracy benchmark.

Measures ``core.classical.fcls.fcls`` throughput (pixels/s) at B = 200 bands for
P = 3, 5, 8 endmembers on N = 200,000 float32 pixels (Dirichlet mixtures of
real USGS spectra when ../shared/data is present, else smooth random spectra;
30 dB white noise, so many pixels lie just outside the simplex), and the max
abs difference to a per-pixel reference — scipy NNLS on the classic augmented
system ``[Eᵀ; δ1ᵀ] a ≈ [y; δ]`` — on a 2,000-pixel subsample.

With ``--torch``, also :func:`core.deep.fcls_torch.fcls_torch` on the CPU and, when
present, on CUDA (pixels already on the device; float32 in, float32 out), and
its max abs difference to ``core.classical.fcls.fcls``.

Run from the repository root::

    .venv/bin/python benchmarks/fcls_speed.py [--pixels 200000] [--repeats 3] [--torch]

Prints a table and writes ``benchmarks/results/fcls_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
from scipy.optimize import nnls as scipy_nnls

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from core.classical.fcls import ENUMERATE_MAX_P, fcls  # noqa: E402

LIB = os.path.join(
    ROOT, "..", "shared", "data", "spectral_libraries", "usgs_1995_aviris224_mat",
    "USGS_pruned_10_deg.mat",
)
BANDS = 200


def endmembers(p: int, seed: int) -> tuple[np.ndarray, str]:
    """``E (p, 200)``: USGS spectra (first 200 bands) if available, else synthetic."""
    rng = np.random.default_rng(seed)
    if os.path.exists(LIB):
        from scipy.io import loadmat

        lib = loadmat(LIB)["datalib"].T[:, :BANDS]
        return lib[rng.choice(lib.shape[0], p, replace=False)], "USGS 1995 (10° pruned)"
    t = np.linspace(0.0, 1.0, BANDS)
    E = np.stack([
        sum(rng.uniform(0.1, 0.5) * np.exp(-0.5 * ((t - rng.uniform()) / rng.uniform(0.05, 0.3)) ** 2)
            for _ in range(4)) + rng.uniform(0.05, 0.3)
        for _ in range(p)
    ])
    return E, "smooth random"


def reference(Y: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Per-pixel FCLS via scipy NNLS on the augmented system (large δ)."""
    p = E.shape[0]
    delta = 1e3 * np.abs(E).max() * np.sqrt(E.shape[1])
    M = np.vstack([E.T, delta * np.ones((1, p))])
    return np.array([scipy_nnls(M, np.append(y, delta), maxiter=50 * p)[0] for y in Y])


def machine() -> dict:
    info = {
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "threads_env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        info["cpu_model"] = names[0] if names else None
    except OSError:
        info["cpu_model"] = None
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    return info


def torch_speed(Y: np.ndarray, E: np.ndarray, A_ref: np.ndarray, repeats: int) -> dict:
    """Pixels/s of fcls_torch per device (input resident on it) and max |diff| to ``A_ref``."""
    import torch

    from core.deep.fcls_torch import fcls_torch

    out = {}
    for dev in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
        Yt, Et = torch.from_numpy(Y).to(dev), torch.from_numpy(E).to(dev)
        fcls_torch(Yt[:1000], Et)  # warm-up: operators built and cached
        times = []
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            A = fcls_torch(Yt, Et)
            sync()
            times.append(time.perf_counter() - t0)
        out[dev] = {"device_name": torch.cuda.get_device_name(0) if dev == "cuda" else "cpu",
                    "seconds_median": float(np.median(times)), "pixels_per_s": float(len(Y) / np.median(times)),
                    "max_abs_diff_vs_fcls": float(np.abs(A.cpu().numpy() - A_ref).max())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pixels", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ref-pixels", type=int, default=2000)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "fcls_speed.json"))
    ap.add_argument("--torch", action="store_true", help="also time core.deep.fcls_torch (CPU, and CUDA if present)")
    args = ap.parse_args()

    info = machine()
    print(f"os.cpu_count() = {info['cpu_count']}  (affinity {info['affinity']})")
    print(f"{info['cpu_model']} | {info['platform']} | numpy {info['numpy']} | torch {info.get('torch')}")
    rows = []
    for p in (3, 5, 8):
        E, source = endmembers(p, seed=p)
        rng = np.random.default_rng(100 + p)
        A = rng.dirichlet(np.ones(p), args.pixels)
        X = A @ E
        sigma = np.sqrt(np.mean(X**2) / 10 ** (30.0 / 10))
        Y = (X + rng.normal(0.0, sigma, X.shape)).astype(np.float32)
        E32 = E.astype(np.float32)
        fcls(Y[:1000], E32)  # warm-up: builds the cached per-support operators
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            A_hat = fcls(Y, E32)
            times.append(time.perf_counter() - t0)
        sub = np.random.default_rng(7).choice(args.pixels, args.ref_pixels, replace=False)
        t0 = time.perf_counter()
        ref = reference(Y[sub].astype(np.float64), E32.astype(np.float64))
        t_ref = time.perf_counter() - t0
        row = {
            "P": p,
            "B": BANDS,
            "N": args.pixels,
            "method": "enumerate" if p <= ENUMERATE_MAX_P else "active-set",
            "seconds_median": float(np.median(times)),
            "pixels_per_s": float(args.pixels / np.median(times)),
            "max_abs_diff_vs_nnls": float(np.abs(A_hat[sub] - ref).max()),
            "nnls_reference_pixels_per_s": float(args.ref_pixels / t_ref),
            "boundary_fraction": float(np.mean(A_hat.min(axis=1) <= 1e-7)),
            "abundance_rmse_vs_truth": float(np.sqrt(np.mean((A_hat - A) ** 2))),
            "spectra": source,
        }
        if args.torch:
            row["fcls_torch"] = torch_speed(Y, E32, A_hat, args.repeats)
        rows.append(row)

    for r in rows:
        for dev, t in r.get("fcls_torch", {}).items():
            print(f"P={r['P']} fcls_torch on {dev} ({t['device_name']}): {t['pixels_per_s']:,.0f} px/s "
                  f"(core.classical.fcls {r['pixels_per_s']:,.0f}), "
                  f"max |diff| to core.classical.fcls {t['max_abs_diff_vs_fcls']:.1e}")
    hdr = (
        f"{'P':>2} {'method':>10} {'N':>8} {'s (median)':>10} {'pixels/s':>12} "
        f"{'max|Δ| nnls':>12} {'ref px/s':>9} {'boundary':>8}"
    )
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        print(
            f"{r['P']:>2} {r['method']:>10} {r['N']:>8} {r['seconds_median']:>10.3f} "
            f"{r['pixels_per_s']:>12,.0f} {r['max_abs_diff_vs_nnls']:>12.2e} "
            f"{r['nnls_reference_pixels_per_s']:>9,.0f} {r['boundary_fraction']:>8.2f}"
        )
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump({"benchmark": "fcls_speed", "machine": info, "results": rows}, fh, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
