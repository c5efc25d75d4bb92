"""The engine's start on scenes it was not tuned on: robust endmembers + mixing model vs VCA + FCLS.

The accuracy suite's two variability scenes, Samson and MUUFL Gulfport are where the robust
start's rules were chosen (docs/EXPERIMENTS.md). This benchmark adds scenes generated with
other seeds, families, endmember counts, SNRs and variability levels (some with illumination
too) that were not used to choose anything, and scores what the start gives before any
network: the robust endmembers (``core.deep.robust.robust_endmembers``) with the least-squares
prior in the mixing model it picks (3×3 bilateral-filtered pixels, FCLS or NNLS normalised),
against VCA + FCLS on the raw pixels. No training: about 3 minutes on one core.

Metrics as in ``accuracy.py``: pooled aRMSE (HySUPP) and mean SAD (rad) after matching the
endmembers by SAD; abundances as estimated.

Usage: .venv/bin/python benchmarks/robust_start.py [--out benchmarks/results/robust_start.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks.accuracy import DATA, SPLIB, SUITE, armse_pooled  # noqa: E402

# (P, family, SNR dB, illumination, purity, variability, seed): none of these seeds is in the suite
HELD_OUT = [(3, "grf", 30, 0.0, 0.6, 0.05, 11), (4, "grf", 30, 0.0, 0.6, 0.05, 12),
            (3, "legendre", 25, 0.0, 0.5, 0.08, 13), (5, "mosaic", 30, 0.0, 0.7, 0.05, 14),
            (3, "grf", 30, 0.0, 0.6, 0.10, 15), (4, "mosaic", 25, 0.0, 0.7, 0.10, 16),
            (4, "grf", 30, 0.1, 0.5, 0.05, 17), (3, "legendre", 30, 0.1, 0.5, 0.03, 20),
            (4, "legendre", 30, 0.0, 0.5, 0.06, 21), (5, "grf", 25, 0.0, 0.6, 0.05, 22),
            (3, "mosaic", 30, 0.0, 0.7, 0.08, 23), (6, "grf", 30, 0.0, 0.6, 0.05, 24)]
TUNED_ON = ["grf-p3-30db-var05", "mosaic-p4-30db-var10", "samson", "muufl"]


def scene(spec):
    """(name, Y (B, H, W), A (P, H, W), E (P, B)) of a suite name, a real scene or a HELD_OUT tuple."""
    from core.classical.synth import SceneConfig, generate

    if isinstance(spec, str) and spec in ("samson", "muufl"):
        from benchmarks import datasets

        Y, A, E, _ = (datasets.load_samson if spec == "samson" else datasets.load_muufl)(DATA)
        return spec, Y, A, E
    if isinstance(spec, str):
        size, p, fam, snr, ill, pur, *var = SUITE[spec]
        cfg = SceneConfig(height=size, width=size, p=p, family=fam, snr_db=snr, illumination=ill, purity=pur,
                          seed=100 + list(SUITE).index(spec), variability=var[0] if var else 0.0)
        name = spec
    else:
        p, fam, snr, ill, pur, var, seed = spec
        cfg = SceneConfig(height=96, width=96, p=p, family=fam, snr_db=float(snr), illumination=ill, purity=pur,
                          seed=seed, variability=var)
        name = f"{fam}-p{p}-{snr}db-var{var:g}" + (f"-illum{ill:g}" if ill else "") + f"-seed{seed}"
    with tempfile.TemporaryDirectory() as sd:
        g = generate(sd, cfg, library_path=SPLIB)
    return name, g["Y"], g["A"], g["E"]


def evaluate(Y, A, E) -> dict:
    from core.classical.endmembers import vca
    from core.classical.fcls import fcls
    from core.classical.metrics import match_endmembers, sad
    from core.deep import robust

    p = A.shape[0]
    pix = Y.reshape(Y.shape[0], -1).T.astype(np.float64)

    def score(E_est, A_est):
        perm = match_endmembers(E, E_est)
        return {"armse_pooled": armse_pooled(A, A_est.T.reshape(p, *A.shape[1:])[perm]),
                "sad_rad": float(np.mean(sad(E, E_est[perm])))}

    E_v = np.clip(vca(pix, p, seed=0)[0], 0.0, None)
    got = robust.robust_endmembers([(Y.astype(np.float32), np.ones(Y.shape[1:], bool))], p, seed=0)
    filt = robust.bilateral_np(Y.astype(np.float64), got["sigma"], radius=1).reshape(Y.shape[0], -1).T
    prior = robust.scaled_abundances(filt, got["E"]) if got["mixing"] == robust.SCALED else fcls(filt, got["E"])
    return {"VCA+FCLS": score(E_v, fcls(pix, E_v)), "robust start + prior": score(got["E"], prior),
            "mixing": got["mixing"], "variability": got["variability"], "scale_ratio": got["scale_ratio"],
            "scale_share": got["scale_share"], "cores_replaced": got["cores_replaced"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "robust_start.json"))
    a = ap.parse_args()
    results = {}
    for group, specs in (("held_out", HELD_OUT), ("tuned_on", TUNED_ON)):
        for spec in specs:
            name, Y, A, E = scene(spec)
            r = evaluate(Y, A, E)
            results[name] = {"group": group, **r}
            v, s = r["VCA+FCLS"], r["robust start + prior"]
            share = r["scale_share"] if r["scale_share"] is None else round(r["scale_share"], 2)
            print(f"{name:36s} VCA+FCLS {v['armse_pooled']:.4f} / {v['sad_rad']:.3f}   start {s['armse_pooled']:.4f} / "
                  f"{s['sad_rad']:.3f}  {r['mixing']:6s} share {share} cores moved {r['cores_replaced']}", flush=True)
    held = [r for r in results.values() if r["group"] == "held_out"]
    summary = {"held_out_scenes": len(held),
               "held_out_below_vca_fcls": sum(r["robust start + prior"]["armse_pooled"] < r["VCA+FCLS"]["armse_pooled"]
                                              for r in held),
               **{f"held_out_mean_armse_pooled_{m}": float(np.mean([r[m]["armse_pooled"] for r in held]))
                  for m in ("VCA+FCLS", "robust start + prior")}}
    print(json.dumps(summary))
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as fh:
        json.dump({"machine": {"platform": platform.platform(), "cpus": os.cpu_count()}, "results": results,
                   "summary": summary}, fh, indent=1)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
