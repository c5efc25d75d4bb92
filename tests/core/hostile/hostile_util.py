"""Helpers of the hostile-input tests (test_hostile_*.py); their fixtures are in conftest.py.

libraries; degenerate rasters (1×1, 1×5000 and 5000×1, ±Inf pixels, a constant image, unsorted
wavelengths in µm, one band, all nodata); a full disk while the outputs are written.

Every case gives a valid result or exit status 2 with one ``error:`` line, and never leaves a
partial file behind nor changes an existing output.

The full engine is fitted here with its iteration counts cut (``tiny_engine``): the code path is
the one of ``--quality fast`` (the same networks, fitting loops, calibration and tiling), only
shorter. Inference of the full engine also runs from a saved model (``model``): an unfitted engine
saved as a real checkpoint, with the HybridSTU correction and the DDIM refinement switched on.
"""

import errno
import os
import subprocess
import sys

import numpy as np
import torch
from osgeo import gdal

from core.cli import main
from core.io.library import bundled_library_path, read_library, resample  # noqa: F401 (re-exported)
from core.io.raster import read_cube  # noqa: F401 (re-exported to the tests)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


WL = np.linspace(450.0, 2400.0, 20)  # a 20-band sensor


NAMES = ("Lawn_Grass GDS91 green", "Concrete GDS375 Lt Gry Road", "Hematite GDS27")


NODATA_OUT = -9999.0


OUTPUTS = ["abundances.tif", "endmembers.csv", "endmembers.png", "report.json"]


def abundances(h, w, seed=0):
    """Dirichlet abundances (3, h, w) whose first three pixels (row-major) are pure."""
    rng = np.random.default_rng(seed)
    A = rng.dirichlet(np.ones(3), size=h * w).T
    if h * w >= 3:
        A[:, :3] = np.eye(3)
    return A.reshape(3, h, w)


def write_scene(path, E, h, w, seed=0, **kw):
    """A noise-free mixture raster (GeoTIFF, 20 bands with wavelengths); returns its abundances."""
    from testutil import make_mixture_raster

    A = abundances(h, w, seed)
    make_mixture_raster(path, E, A, wavelengths=WL, **kw)
    return A


def cli(args, capsys):
    """``python -m core`` in process: (exit status, stderr lines)."""
    rc = main([str(a) for a in args])
    return rc, capsys.readouterr().err.strip().splitlines()


def refused(args, capsys, match):
    """Exit status 2 and exactly one stderr line, an ``error:`` containing ``match``."""
    rc, err = cli(args, capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("error:"), (rc, err)
    assert match in err[0], err
    return err[0]


def module(*args, timeout=120, **kw):
    """``python -m core ARGS`` as a separate process."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env, **kw)


def snapshot(folder):
    """Every file in ``folder`` (hidden ones too) with its bytes."""
    return {n: (folder / n).read_bytes() for n in sorted(os.listdir(folder))}


def check_abundances(path, h, w, invalid=None):
    """Abundances on the simplex where valid, nodata elsewhere; returns (P, h, w)."""
    A = gdal.Open(str(path)).ReadAsArray().reshape(-1, h, w)
    invalid = np.zeros((h, w), bool) if invalid is None else invalid
    assert np.all(A[:, invalid] == NODATA_OUT)
    ok = A[:, ~invalid]
    assert np.all(np.isfinite(ok)) and ok.min() >= -1e-6
    np.testing.assert_allclose(ok.sum(0), 1.0, atol=1e-4)
    return A


def save_model(path, E, names):
    """An unfitted engine saved as a real checkpoint: FCLS prior + HybridSTU correction + 2 DDIM steps."""
    from core.deep.checkpoint import save_checkpoint
    from core.deep.engine import Engine, EngineConfig
    from core.deep.models import ResUNet2DConfig
    from core.deep.run import checkpoint_payload

    torch.manual_seed(0)
    cfg = EngineConfig.preset("fast")
    cfg.unet2d = ResUNet2DConfig(base=8, mults=(1, 2), time_dim=16, groups=4).to_dict()
    eng = Engine(E.shape[1], E * 1.02, names, cfg, float(E.mean()), "cpu")
    for p in eng.unet2d.parameters():  # a non-trivial refinement (the residual head starts at zero)
        torch.nn.init.normal_(p, 0.0, 0.02)
    assert eng.refine_cfg.steps_2d > 0 and float(eng.hybrid.correction) == 1.0
    eng.trained = ["hybridstu", "abundance-diffusion"]  # stands for a fitted model (the 'fast' stages)
    eng.E_draws = np.stack([E * 1.01, E * 1.03])  # what train saves: the block bootstrap's endmember draws
    save_checkpoint(str(path), checkpoint_payload(eng, list(range(E.shape[1])), WL, {}))
    return str(path)


def _armse(A_true, A_est):
    from core.classical.metrics import armse

    best = min(armse(A_true.reshape(3, -1).T, A_est[list(p)].reshape(3, -1).T)
               for p in ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)))
    return best


def _write_envi(path, cube, header_extra):
    """A float32 BSQ ENVI raster written by hand (``cube`` (B, H, W))."""
    b, h, w = cube.shape
    cube.astype("<f4").tofile(path)
    path.with_suffix(".hdr").write_text(f"ENVI\nsamples = {w}\nlines = {h}\nbands = {b}\nheader offset = 0\n"
                                        f"file type = ENVI Standard\ndata type = 4\ninterleave = bsq\n"
                                        f"byte order = 0\n{header_extra}")
    return path


ENOSPC = os.strerror(errno.ENOSPC)  # "No space left on device"


def _digest(path):
    import hashlib

    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def bundled_spectra():
    """Three bundled-library spectra at the 20 bands :data:`WL`: (names, E (3, 20))."""
    lib = resample(read_library(bundled_library_path()), WL)
    return list(NAMES), lib.spectra[[lib.names.index(n) for n in NAMES]]
