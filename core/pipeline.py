"""The one entry point the CLI and the QGIS plugin call: :func:`unmix`.

Data flow (DESIGN.md): raster → sample of valid pixels → P (given or HySime)
→ initial endmembers (VCA, library-named) → abundances, streamed window by
window from and to disk → endmembers.csv, endmembers.png, report.json.
All outputs are staged under temporary names and renamed together only when
the whole run succeeded, so a failed or cancelled run leaves nothing behind and
never damages an existing file.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from . import __version__
from .errors import UnmixError
from .progress import ensure

METHODS = ("full", "vca-fcls")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class UnmixOptions:
    """User options of an unmixing run (mirrors the CLI and Processing parameters)."""

    endmembers: int = 0  # 0 = estimate with HySime
    method: str = "vca-fcls"
    library: Optional[str] = None
    model: Optional[str] = None
    device: str = "auto"
    seed: int = 0
    bands: Optional[str] = None  # 1-based subset "1-50,60"; None = good bands (bbl)
    quality: str = "default"
    uncertainty: int = 0
    max_sample: int = 60000  # pixels sampled for estimation (HySime, VCA, fitting)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise UnmixError(f"unknown method '{self.method}' (choose from {', '.join(METHODS)})")
        if self.device not in DEVICES:
            raise UnmixError(f"unknown device '{self.device}' (choose from {', '.join(DEVICES)})")
        if self.endmembers < 0:
            raise UnmixError(f"number of endmembers must be 0 (estimate) or at least 2, got {self.endmembers}")
        if self.endmembers == 1:
            raise UnmixError("number of endmembers must be 0 (estimate) or at least 2, got 1")
        if self.uncertainty < 0 or self.uncertainty == 1:
            raise UnmixError(f"uncertainty samples must be 0 (off) or at least 2 (a spread needs two), "
                             f"got {self.uncertainty}")
        if self.seed < 0:
            raise UnmixError(f"seed must be ≥ 0, got {self.seed}")
        if self.model and self.method != "full":
            raise UnmixError("a saved model runs the full engine: choose the full method or no model")
        if self.uncertainty and self.method != "full" and not self.model:
            raise UnmixError("the abundance uncertainty needs the full engine: "
                             "VCA + FCLS has no stochastic refinement to sample")


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


class StagedOutputs:
    """Temporary names for a set of outputs, renamed together on :meth:`commit`."""

    def __init__(self, finals: Dict[str, Optional[str]]):
        self.finals = {k: os.path.abspath(v) for k, v in finals.items() if v}
        self.temps = {}
        tag = f"{os.getpid()}-{int(time.time() * 1e6) % 10**9}"
        for key, final in self.finals.items():
            folder, name = os.path.split(final)
            stem, ext = os.path.splitext(name)
            self.temps[key] = os.path.join(folder, f".{stem}.partial-{tag}{ext}")

    def path(self, key: str) -> Optional[str]:
        return self.temps.get(key)

    def commit(self, progress=None) -> None:
        """Rename every staged file onto its final name; a cancel requested until this moment
        (``progress``) still wins: :class:`Cancelled` is raised and nothing is renamed."""
        ensure(progress).check()
        for key, tmp in self.temps.items():
            if os.path.exists(tmp):
                os.replace(tmp, self.finals[key])

    def abort(self) -> None:
        for tmp in self.temps.values():
            for candidate in (tmp, tmp + ".aux.xml"):
                if os.path.exists(candidate):
                    try:
                        os.remove(candidate)
                    except OSError:
                        pass


#: Held by the full engine's runs. They seed and draw from torch's global random generator (network
#: initialisation, DDIM noise) and set torch's thread count, so two runs at once in one process (the
#: QGIS task manager runs Processing algorithms in parallel) would change each other's results.
_ENGINE_LOCK = threading.Lock()


@contextmanager
def engine_turn(progress=None):
    """Wait until no other full-engine run of this process is running, then hold the engine.

    The wait can be cancelled through ``progress``. On a CPU the engine already uses every core
    and on a GPU the device is shared, so taking turns costs little over running together.
    """
    prog = ensure(progress)
    if not _ENGINE_LOCK.acquire(blocking=False):
        prog.info("waiting for another full-engine run in this process to finish")
        while not _ENGINE_LOCK.acquire(timeout=0.2):
            prog.check()
    try:
        yield
    finally:
        _ENGINE_LOCK.release()


def require_torch() -> None:
    """The deep engine needs PyTorch; say how to get it when it is missing."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise UnmixError("the full engine needs PyTorch, which is not installed: run "
                         "'python3 -m pip install --user torch==2.13.0' (or 'make setup'), "
                         "or use the VCA + FCLS method")


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
    from .raster import check_output_dir

    sources = [inputs] if isinstance(inputs, (str, os.PathLike)) else [i for i in inputs if i]
    given = [p for p in paths if p]
    for i, p in enumerate(given):
        if any(same_file(p, q) for q in given[:i]):
            raise UnmixError(f"two outputs name the same file: {p}")
    for p in paths:
        if not p:
            continue
        for src in sources:
            if same_file(p, src):
                raise UnmixError(f"an output would overwrite an input file: {p}")
        if os.path.isdir(p):
            raise UnmixError(f"output path is a folder, expected a file name: {p}")
        check_output_dir(os.path.dirname(os.path.abspath(p)) or ".")


def open_input(input_path: str, bands: Optional[str]):
    """Open the input raster and select its bands; validate it can be unmixed.

    Returns:
        (info, band indices (0-based), wavelengths_nm of the selection or None,
        fwhm_nm of the selection or None).
    """
    from .raster import band_subset, read_info

    info = read_info(input_path)
    if info.count < 2:
        raise UnmixError(
            f"input raster has {info.count} band; unmixing needs a multi- or hyperspectral raster: {input_path}")
    idx = np.asarray(band_subset(info, bands), dtype=int)
    if idx.size < 3:
        raise UnmixError(f"only {idx.size} usable band(s) selected; unmixing needs at least 3 "
                         f"(2 or more endmembers, fewer than the bands)")
    wl = None if info.wavelengths_nm is None else np.asarray(info.wavelengths_nm, float)[idx]
    fwhm = None if info.fwhm_nm is None else np.asarray(info.fwhm_nm, float)[idx]
    return info, idx, wl, fwhm


def sample_pixels(reader, max_pixels: int, seed: int, progress=None) -> np.ndarray:
    """A uniform random sample of valid pixels, read window by window.

    Every valid pixel draws a random priority; the ``max_pixels`` smallest are
    kept, so the sample is uniform over the raster and deterministic for a seed
    while memory stays bounded by ``max_pixels``.

    Returns:
        Y (N, B) float32; N == 0 when the raster has no valid pixel.
    """
    prog = ensure(progress)
    rng = np.random.default_rng(seed)
    keep = np.zeros((0, len(reader.bands)), np.float32)
    keys = np.zeros(0)
    windows = list(reader.windows(max_pixels=1 << 18))
    for i, (x, y, w, h) in enumerate(windows):
        prog.check()
        cube, valid = reader.read(x, y, w, h)
        idx = np.flatnonzero(valid.ravel())
        if idx.size:
            k = rng.random(idx.size)
            if idx.size > max_pixels:  # only this window's best candidates are copied
                sel = np.argpartition(k, max_pixels)[:max_pixels]
                idx, k = idx[sel], k[sel]
            pix = cube.reshape(cube.shape[0], -1)[:, idx].T.astype(np.float32)
            keep = np.concatenate([keep, pix])
            keys = np.concatenate([keys, k])
            if keep.shape[0] > max_pixels:
                sel = np.argpartition(keys, max_pixels)[:max_pixels]
                keep, keys = keep[sel], keys[sel]
        prog.set_progress(100.0 * (i + 1) / len(windows))
    order = np.argsort(keys, kind="stable")
    return keep[order]


def no_valid_pixels(reader, input_path: str, progress=None) -> UnmixError:
    """The error for a raster without a valid pixel, naming the bands that hold no valid value
    at all (one such band invalidates every pixel)."""
    empty = reader.empty_bands(progress)
    hint = ""
    if empty:
        shown = ", ".join(str(b) for b in empty[:8]) + (", …" if len(empty) > 8 else "")
        hint = (f"; band(s) {shown} hold no valid value anywhere: leave them out with a band subset "
                f"(--bands / BANDS)")
    return UnmixError(f"input raster has no valid pixels (all nodata or NaN): {input_path}{hint}")


def has_valid_pixel(reader, progress=None) -> bool:
    """Whether the raster holds at least one valid pixel (stops at the first window that has one)."""
    prog = ensure(progress)
    for x, y, w, h in reader.windows(max_pixels=1 << 18):
        prog.check()
        if reader.read(x, y, w, h)[1].any():
            return True
    return False


#: the most endmembers an automatic (HySime) estimate may set; more is a signal subspace, not materials
MAX_AUTO_ENDMEMBERS = 20
#: HySime's estimate needs this many pixels per band to be trusted
HYSIME_PIXELS_PER_BAND = 10


def endmember_count_warning(k: int, n_pixels: int, n_bands: int) -> Optional[str]:
    """Why HySime's estimate ``k`` from ``n_pixels`` × ``n_bands`` should not be trusted, or None."""
    if n_pixels < HYSIME_PIXELS_PER_BAND * n_bands:
        return (f"HySime's estimate ({k}) is unreliable with only {n_pixels} pixels for {n_bands} bands "
                f"(it needs about {HYSIME_PIXELS_PER_BAND * n_bands}); set the number of endmembers yourself")
    if k > MAX_AUTO_ENDMEMBERS:
        return (f"HySime found a {k}-dimensional signal subspace: spectral variability and non-white noise "
                f"of real scenes inflate it beyond the number of materials; set the number of endmembers "
                f"you expect")
    return None


def auto_endmember_count(estimated: int, n_bands: int) -> int:
    """The number of endmembers an automatic run uses for HySime's ``estimated``: at least 2,
    fewer than the bands, at most :data:`MAX_AUTO_ENDMEMBERS`."""
    return int(min(max(int(estimated), 2), n_bands - 1, MAX_AUTO_ENDMEMBERS))


def resolve_p(Y: np.ndarray, requested: int, seed: int, progress=None) -> (int, Optional[int]):
    """The number of endmembers: as requested, or estimated by HySime when 0 (at most
    :data:`MAX_AUTO_ENDMEMBERS`, with a warning through ``progress`` when the estimate is doubtful)."""
    from .endmembers import hysime

    n, b = Y.shape
    estimated = None
    if requested == 0:
        estimated, _ = hysime(Y, seed=seed)
        p = auto_endmember_count(estimated, b)
        doubt = endmember_count_warning(estimated, n, b)
        if doubt:
            ensure(progress).info(f"warning: {doubt}" + (f" (using {p})" if p != estimated else ""))
    else:
        p = int(requested)
    if p < 2 or p >= b:
        raise UnmixError(f"number of endmembers must be between 2 and {b - 1} for a raster with {b} bands, got {p}")
    if n < p:
        raise UnmixError(f"only {n} valid pixel(s), fewer than the {p} endmembers requested")
    return p, estimated


def load_library_for(path: Optional[str], wavelengths_nm, fwhm_nm, n_bands: int):
    """Read a spectral library and resample it to the raster's bands (None if no path)."""
    if not path:
        return None
    from .library import read_library, resample

    lib = read_library(path)
    if wavelengths_nm is not None and lib.wavelengths_nm is not None:
        return resample(lib, wavelengths_nm, fwhm_nm)
    if lib.spectra.shape[1] != n_bands:
        which = "the raster has" if wavelengths_nm is None else "the library has"
        raise UnmixError(
            f"library {os.path.basename(path)} has {lib.spectra.shape[1]} bands but the raster has "
            f"{n_bands}, and {which} no wavelengths to resample by")
    return lib


#: a library spectrum names an endmember only within this spectral angle (0.1 rad ≈ 5.7°, the
#: customary Spectral Angle Mapper threshold); farther ones are reported, not used as names
LIBRARY_MATCH_MAX_RAD = 0.1


def library_names(E: np.ndarray, lib) -> tuple:
    """Endmembers E (P, B) named after their closest library spectra.

    An endmember farther than :data:`LIBRARY_MATCH_MAX_RAD` from every library
    spectrum is named ``EMi (unmatched)`` and its matched spectrum is NaN (not plotted);
    its angle is still returned.

    Returns:
        (names list, matched library spectra (P, B) or None, angles (P,) rad or None);
        without a library ``EM1``… and None, None.
    """
    if lib is None:
        return [f"EM{i + 1}" for i in range(len(E))], None, None
    from .endmembers import name_endmembers

    names, lidx, ang = name_endmembers(E, lib.spectra, lib.names, max_angle=LIBRARY_MATCH_MAX_RAD)
    match = np.array(lib.spectra[np.asarray(lidx)], np.float64)
    match[~(ang <= LIBRARY_MATCH_MAX_RAD)] = np.nan
    return names, match, ang


def initial_endmembers(Y: np.ndarray, p: int, lib, seed: int, library_select: bool = False):
    """Initial endmembers by VCA (or chosen from the library) and their names.

    Returns:
        (E (P, B), names, matched library spectra (P, B) or None, angles (P,) or None)
    """
    from .endmembers import select_from_library, vca

    if lib is not None and library_select:
        idx = np.asarray(select_from_library(Y, lib.spectra, p, seed=seed))
        E = lib.spectra[idx].astype(np.float64)
    else:
        E, _ = vca(Y, p, seed=seed)
    return (np.asarray(E, np.float64), *library_names(E, lib))


def estimate_start(reader, input_path: str, opts: UnmixOptions, wl, fwhm, n_bands: int, progress=None):
    """Sample → P (given or HySime) → library → initial endmembers; shared by both methods.

    Returns:
        dict with ``Y`` (sample (N, B)), ``p``, ``p_est``, ``lib``, ``E``, ``names``,
        ``lib_match``, ``angles``.
    """
    prog = ensure(progress)
    prog.info("sampling valid pixels")
    Y = sample_pixels(reader, opts.max_sample, opts.seed, prog)
    if Y.shape[0] == 0:
        raise no_valid_pixels(reader, input_path, prog)
    p, p_est = resolve_p(Y, opts.endmembers, opts.seed, prog)
    prog.info(f"{p} endmembers" + (" (estimated by HySime)" if p_est is not None else ""))
    lib = load_library_for(opts.library, wl, fwhm, n_bands)
    E, names, lib_match, angles = initial_endmembers(Y, p, lib, opts.seed)
    return {"Y": Y, "p": p, "p_est": p_est, "lib": lib, "E": E, "names": names, "lib_match": lib_match,
            "angles": angles}


def reconstruction_rmse(Y: np.ndarray, A: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Per-pixel RMSE of the linear mixing model, ``‖y − Eᵀa‖ / √B``.

    Uses ``‖y − Eᵀa‖² = ‖y‖² − 2a·Ey + aᵀGa`` so no (N, B) temporary is made.

    Args:
        Y: pixels (N, B); A: abundances (N, P); E: endmembers (P, B).

    Returns:
        (N, 1) float32.
    """
    E32 = np.asarray(E, np.float32)
    Y = np.asarray(Y, np.float32)
    A = np.asarray(A, np.float32)
    sq = (np.einsum("nb,nb->n", Y, Y) - 2 * np.einsum("np,np->n", A, Y @ E32.T)
          + np.einsum("np,pq,nq->n", A, E32 @ E32.T, A))
    return np.sqrt(np.maximum(sq, 0) / Y.shape[1])[:, None]


def stream_pixels(reader, writers: List, fn: Callable[[np.ndarray], List[np.ndarray]],
                  progress=None) -> Dict[str, float]:
    """Apply a per-pixel function window by window and write its outputs.

    Args:
        reader: an open ``RasterReader``.
        writers: open ``RasterWriter`` objects, one per array ``fn`` returns.
        fn: maps valid pixels (N, B) to a list of arrays (N, c_k).
        progress: progress protocol.

    Returns:
        Sums over valid pixels of the last output's first column and the count,
        for summary statistics.
    """
    prog = ensure(progress)
    windows = list(reader.windows(max_pixels=1 << 18))
    total, count = 0.0, 0
    for i, (x, y, w, h) in enumerate(windows):
        prog.check()
        cube, valid = reader.read(x, y, w, h)
        pix = cube[:, valid].T
        outs = fn(pix) if pix.shape[0] else None
        for k, wr in enumerate(writers):
            arr = np.full((wr.count, h, w), np.nan, np.float32)
            if outs is not None:
                arr[:, valid] = np.asarray(outs[k], np.float32).T
            wr.write(arr, x, y)
        if outs is not None:
            total += float(np.sum(outs[-1][:, 0]))
            count += int(pix.shape[0])
        prog.set_progress(100.0 * (i + 1) / len(windows))
    return {"sum": total, "count": count}


def unmix(input_path: str, abundances_path: str, endmembers_path: str,
          options: Optional[UnmixOptions] = None, plot_path: Optional[str] = None,
          report_path: Optional[str] = None, residual_path: Optional[str] = None,
          progress=None, uncertainty_path: Optional[str] = None) -> UnmixResult:
    """Unmix a raster: endmember spectra and one abundance map per endmember.

    Args:
        input_path: any GDAL raster with ≥ 2 bands.
        abundances_path: output GeoTIFF, P Float32 bands named after the endmembers.
        endmembers_path: output CSV (``wavelength_nm`` or ``band`` + one column per endmember).
        options: :class:`UnmixOptions`.
        plot_path: optional PNG of the endmember spectra.
        report_path: optional JSON report.
        residual_path: optional GeoTIFF of the per-pixel reconstruction RMSE.
        uncertainty_path: GeoTIFF of the per-pixel std of each abundance over
            ``options.uncertainty`` stochastic DDIM refinements (full engine only).
        progress: progress/cancel protocol (:mod:`core.progress`).

    Raises:
        UnmixError: bad input (message is one line).
        Cancelled: the user cancelled; no output is left behind.
    """
    opts = options or UnmixOptions()
    opts.validate()
    prog = ensure(progress)
    t0 = time.perf_counter()
    check_outputs([abundances_path, endmembers_path, plot_path, report_path, residual_path, uncertainty_path],
                  [input_path, opts.library, opts.model])
    info, bands, wl, fwhm = open_input(input_path, opts.bands)
    if opts.endmembers and opts.endmembers >= len(bands):
        raise UnmixError(
            f"number of endmembers must be between 2 and {len(bands) - 1} for a raster with {len(bands)} bands, "
            f"got {opts.endmembers}")
    if opts.method == "full" or opts.model:
        require_torch()
        if opts.model:  # a saved model samples nothing: refuse an empty raster before it runs
            from .raster import RasterReader

            with RasterReader(input_path, bands=bands) as reader:
                if not has_valid_pixel(reader, prog):
                    raise no_valid_pixels(reader, input_path, prog)
        from .engine_run import run_full  # torch is imported only here

        with engine_turn(prog):
            return run_full(input_path, abundances_path, endmembers_path, opts, plot_path,
                            report_path, residual_path, prog, info, bands, wl, fwhm, t0,
                            uncertainty_path=uncertainty_path)

    from .fcls import fcls
    from .raster import RasterReader, RasterWriter

    staged = StagedOutputs({"A": abundances_path, "E": endmembers_path, "plot": plot_path,
                            "report": report_path, "res": residual_path})
    timings = {}
    try:
        with RasterReader(input_path, bands=bands) as reader:
            st = estimate_start(reader, input_path, opts, wl, fwhm, len(bands), prog.sub(0, 10))
            p, p_est, E, names = st["p"], st["p_est"], st["E"], st["names"]
            lib_match, angles = st["lib_match"], st["angles"]
            timings["estimation_s"] = time.perf_counter() - t0
            prog.set_progress(15)
            t1 = time.perf_counter()
            writers = [RasterWriter(staged.path("A"), info.width, info.height, p,
                                    band_names=names, **info.georef())]
            if residual_path:
                writers.append(RasterWriter(staged.path("res"), info.width, info.height, 1,
                                            band_names=["reconstruction_rmse"], **info.georef()))

            def per_pixel(pix):
                A = fcls(pix, E)
                return [A, reconstruction_rmse(pix, A, E)]

            try:
                stats = stream_pixels(reader, writers, per_pixel, prog.sub(15, 95))
            except BaseException:
                for wr in writers:
                    wr.abort()
                raise
            for wr in writers:
                wr.close()
            timings["abundances_s"] = time.perf_counter() - t1
        result = finish_outputs(staged, input_path, info, bands, wl, E, names, lib_match, angles,
                                opts, p, p_est, timings, t0,
                                extra={"valid_pixels": stats["count"],
                                       "mean_reconstruction_rmse": stats["sum"] / max(stats["count"], 1)})
        staged.commit(prog)
    except BaseException:
        staged.abort()
        raise
    prog.set_progress(100)
    return result


def finish_outputs(staged: StagedOutputs, input_path: str, info, bands, wl, E, names, lib_match,
                   angles, opts: UnmixOptions, p: int, p_est: Optional[int], timings: Dict,
                   t0: float, extra: Optional[Dict] = None) -> UnmixResult:
    """Write the endmember CSV, the plot and the report to their staged names."""
    from .library import write_csv
    from .plot import plot_endmembers

    write_csv(staged.path("E"), E, names, wavelengths_nm=wl)
    if staged.path("plot"):
        with _disk_errors(staged.finals["plot"]):
            plot_endmembers(staged.path("plot"), E, names, wl, library=lib_match,
                            library_names=names if lib_match is not None else None,
                            title=f"DiffUnmix endmembers — {os.path.basename(input_path)}")
    timings["total_s"] = time.perf_counter() - t0
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
        with _disk_errors(staged.finals["report"]):
            with open(staged.path("report"), "w", encoding="utf-8") as fh:
                json.dump(report, fh, indent=2, default=_json_default)
    return UnmixResult(names=list(names), p=p, abundances_path=staged.finals["A"],
                       endmembers_path=staged.finals["E"], plot_path=staged.finals.get("plot"),
                       report_path=staged.finals.get("report"), residual_path=staged.finals.get("res"),
                       endmembers=np.asarray(E), wavelengths_nm=wl, report=report)


class _disk_errors:  # noqa: N801 (a context manager)
    """Turn an ``OSError`` while writing ``path`` (disk full, quota, I/O error) into a one-line UnmixError."""

    def __init__(self, path: str):
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, OSError):
            raise UnmixError(f"cannot write {self.path}: {exc.strerror or exc} (is the disk full?)") from None
        return False


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
