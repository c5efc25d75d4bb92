"""A run's outputs: refuse outputs that would overwrite an input, write the endmember
CSV, plot and report of a finished run, and the per-pixel reconstruction error.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

import numpy as np

from .. import __version__
from ..errors import UnmixError
from ..io.atomic import StagedOutputs, disk_errors


@dataclass
class UnmixResult:
    """What a run produced."""

    names: List[str]
    p: int
    abundances_path: str
    endmembers_path: str
    plot_path: Optional[str] = None
    report_path: Optional[str] = None
    residual_path: Optional[str] = None
    endmembers: Optional[np.ndarray] = None  # (P, B)
    wavelengths_nm: Optional[np.ndarray] = None
    report: Dict = field(default_factory=dict)


def folder_outputs(folder: str, residual: bool = False, uncertainty: bool = False) -> dict:
    """The output paths of an ``unmix``/``apply`` result folder, by :data:`core.run.context.OUTPUT_KEYS`
    key (residual and uncertainty None unless asked for): the CLI and ``batch`` write the same folder."""
    return {"A": os.path.join(folder, "abundances.tif"), "E": os.path.join(folder, "endmembers.csv"),
            "plot": os.path.join(folder, "endmembers.png"), "report": os.path.join(folder, "report.json"),
            "res": os.path.join(folder, "residual.tif") if residual else None,
            "unc": os.path.join(folder, "uncertainty.tif") if uncertainty else None}


def same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` name the same file (through symlinks and hard links too)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def check_outputs(paths: List[Optional[str]], inputs) -> None:
    """Refuse unwritable output folders and outputs that would overwrite an input file.

    Args:
        paths: output files (None entries are skipped).
        inputs: the input raster's path, or a list of every input file the run
            reads (raster, library, model, reference rasters…; None entries skipped).
    """
    from ..io.atomic import sweep_stale_partials
    from ..io.files import input_files
    from ..io.raster import check_output_dir

    if any(p is not None and not str(p).strip() for p in paths):
        raise UnmixError("an output path is empty: give a file or folder name")
    # every file the inputs read (a VRT's sources, recursively; side-cars), through symlinks
    given_inputs = [inputs] if isinstance(inputs, (str, os.PathLike)) else [i for i in inputs if i]
    sources = input_files(given_inputs)
    given = [p for p in paths if p]
    for i, p in enumerate(given):
        if any(same_file(p, q) for q in given[:i]):
            raise UnmixError(f"two outputs name the same file: {p}")
    for p in paths:
        if not p:
            continue
        for src in sources:
            if same_file(p, src):
                direct = any(same_file(p, i) for i in given_inputs)
                raise UnmixError(f"an output would overwrite an input file: {p}"
                                 + ("" if direct else " (an input reads it, e.g. as a VRT source)"))
        if os.path.isdir(p):
            raise UnmixError(f"output path is a folder, expected a file name: {p}")
        folder = check_output_dir(os.path.dirname(os.path.abspath(p)) or ".")
        sweep_stale_partials(folder)


def check_solved(written: int, unsolved: int, input_path: str, progress=None) -> Dict:
    """Refuse a run that wrote no result for any of its valid pixels, warn when some got none.

    Args:
        written: pixels written with a finite result; unsolved: valid input pixels whose result
            was not finite (written as nodata), as counted by ``stream_pixels`` / ``process_tiled``.

    Returns:
        ``{"unsolved_pixels": unsolved}`` for the report.
    """
    if unsolved and not written:
        raise UnmixError(f"no pixel of {input_path} gave a finite result (values too large for float32 "
                         f"arithmetic, e.g. near 1e38? check the raster's scale and nodata value)")
    if unsolved:
        from ..progress import ensure

        ensure(progress).info(f"warning: {unsolved} valid pixel(s) gave no finite result (values too large?) "
                              f"and are written as nodata")
    return {"unsolved_pixels": int(unsolved)}


def finite_json(obj):
    """``obj`` with every non-finite float (NaN, ±Inf) replaced by None: strict JSON (RFC 8259)."""
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return finite_json(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


#: pixels per float64 block of :func:`reconstruction_rmse` (bounds its temporaries: 7 MB at 224 bands)
RMSE_BLOCK = 4096


def reconstruction_rmse(Y: np.ndarray, A: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Per-pixel RMSE of the linear mixing model, ``‖y − Eᵀa‖ / √B``.

    Uses ``‖y − Eᵀa‖² = ‖y‖² − 2a·Ey + aᵀGa`` in float64, in blocks of :data:`RMSE_BLOCK` pixels
    (float32 cancels: the error of a well-explained pixel would be round-off that changes with the
    BLAS thread count, so a run on a cluster would not give the in-process values).

    Args:
        Y: pixels (N, B); A: abundances (N, P); E: endmembers (P, B).

    Returns:
        (N, 1) float32.
    """
    E64 = np.asarray(E, np.float64)
    G = E64 @ E64.T
    out = np.empty((Y.shape[0], 1), np.float32)
    for i in range(0, Y.shape[0], RMSE_BLOCK):
        y = np.asarray(Y[i:i + RMSE_BLOCK], np.float64)
        a = np.asarray(A[i:i + RMSE_BLOCK], np.float64)
        sq = np.einsum("nb,nb->n", y, y) - 2 * np.einsum("np,np->n", a, y @ E64.T) + np.einsum("np,pq,nq->n", a, G, a)
        out[i:i + RMSE_BLOCK, 0] = np.sqrt(np.maximum(sq, 0) / Y.shape[1])
    return out


def finish_outputs(ctx, staged: StagedOutputs, E, names, lib_match, angles, p: int, p_est: Optional[int],
                   timings: Dict, extra: Optional[Dict] = None) -> UnmixResult:
    """Write the endmember CSV, the plot and the report of the run ``ctx``
    (:class:`core.run.context.RunContext`) to their staged names."""
    input_path, info, bands, wl, opts = ctx.input_path, ctx.info, ctx.bands, ctx.wavelengths_nm, ctx.options
    from ..io.library import write_csv
    from ..io.plot import plot_endmembers

    write_csv(staged.path("E"), E, names, wavelengths_nm=wl)
    if staged.path("plot"):
        with disk_errors(staged.finals["plot"]):
            plot_endmembers(staged.path("plot"), E, names, wl, library=lib_match,
                            library_names=names if lib_match is not None else None,
                            title=f"DiffUnmix endmembers — {os.path.basename(input_path)}")
    timings["total_s"] = time.perf_counter() - ctx.t0
    report = {
        "diffunmix_version": __version__,
        "input": os.path.abspath(input_path),
        "width": info.width, "height": info.height,
        "bands_used": [int(b) + 1 for b in bands],
        "method": opts.method if not opts.model else "model",
        "options": asdict(opts),
        "endmember_count": p,
        "endmember_count_estimated": p_est,
        "endmember_names": list(names),
        "library_angles_rad": None if angles is None else [float(a) for a in angles],
        "wavelengths_nm": None if wl is None else [float(w) for w in wl],
        "timings_s": {k: round(float(v), 3) for k, v in timings.items()},
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "outputs": {k: v for k, v in staged.finals.items()},
    }
    report.update(extra or {})
    if staged.path("report"):
        with disk_errors(staged.finals["report"]):
            with open(staged.path("report"), "w", encoding="utf-8") as fh:
                json.dump(finite_json(report), fh, indent=2, default=_json_default, allow_nan=False)
    return UnmixResult(names=list(names), p=p, abundances_path=staged.finals["A"],
                       endmembers_path=staged.finals["E"], plot_path=staged.finals.get("plot"),
                       report_path=staged.finals.get("report"), residual_path=staged.finals.get("res"),
                       endmembers=np.asarray(E), wavelengths_nm=wl, report=report)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
