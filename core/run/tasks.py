"""QGIS-free task functions: one per CLI command / Processing algorithm.

The CLI (:mod:`core.cli`) and the Processing algorithms (``plugin/algorithms``)
are thin wrappers around these: they parse their arguments, call one function
here and report its result. ``unmix``/``train``/``apply`` go through
:func:`core.pipeline.unmix` and :func:`core.deep.run.train_model` directly.

Every function raises :class:`core.errors.UnmixError` (one line) on bad input
and :class:`core.errors.Cancelled` when ``progress`` asks to stop; outputs are
written under temporary names and renamed only on success.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import UnmixError
from ..io.atomic import atomic_write
from ..options import EXTRACT_METHODS
from ..progress import ensure


def sample_input(input_path: str, bands: Optional[str] = None, seed: int = 0, max_pixels: int = 60000,
                 progress=None):
    """Open a raster, select its bands and draw a uniform sample of valid pixels.

    Returns:
        (info, band indices (0-based), wavelengths_nm or None, fwhm_nm or None, Y (N, B) float32).

    Raises:
        UnmixError: not a raster, fewer than 2 bands, or no valid pixel.
    """
    from ..io.raster import RasterReader
    from .inputs import no_valid_pixels, open_input, sample_pixels

    info, idx, wl, fwhm = open_input(input_path, bands)
    with RasterReader(input_path, bands=idx) as reader:
        Y = sample_pixels(reader, max_pixels, seed, progress)
        if Y.shape[0] == 0:
            raise no_valid_pixels(reader, input_path, progress)
    return info, idx, wl, fwhm, Y


def count_endmembers(input_path: str, bands: Optional[str] = None, seed: int = 0, progress=None) -> Dict:
    """Estimate the number of endmembers with HySime.

    Args:
        input_path: any GDAL raster with ≥ 2 bands.
        bands: optional 1-based band subset ("1-50,60"); default the good bands.
        seed: seed of the pixel sample.
        progress: progress/cancel protocol.

    Returns:
        {"endmembers": the count an automatic unmix would use (HySime's estimate kept within
        2 .. min(B − 1, 20), so it can feed ``unmix``), "hysime": HySime's raw estimate,
        "bands": B used, "pixels_sampled": N, "warning": why the estimate is doubtful, or None}.
    """
    from ..classical.endmembers import hysime
    from .start import auto_endmember_count, endmember_count_warning

    prog = ensure(progress)
    _, idx, _, _, Y = sample_input(input_path, bands, seed, progress=prog.sub(0, 60))
    prog.check()
    k, _ = hysime(Y, seed=seed)
    prog.set_progress(100)
    usable = auto_endmember_count(k, len(idx))
    warning = endmember_count_warning(int(k), int(Y.shape[0]), int(len(idx)))
    if usable != k:
        warning = (warning + "; " if warning else "") + f"HySime estimated {k}, unmixing uses {usable}"
    return {"endmembers": usable, "hysime": int(k), "bands": int(len(idx)), "pixels_sampled": int(Y.shape[0]),
            "warning": warning}


def extract_endmembers(input_path: str, out_csv: str, p: int = 0, library: Optional[str] = None,
                       method: str = "vca", bands: Optional[str] = None, seed: int = 0,
                       progress=None) -> Dict:
    """Extract P endmember spectra (VCA, noise-robust, or chosen from a library) to a CSV.

    Args:
        input_path: any GDAL raster with ≥ 2 bands.
        out_csv: output CSV (``wavelength_nm`` or ``band``, then one column per endmember).
        p: number of endmembers; 0 = estimate with HySime.
        library: optional spectral library naming (``vca``) or supplying (``library``) the endmembers.
        method: ``vca`` (from the data), ``library`` (P library spectra chosen to explain the
            data) or ``robust`` (the full engine's start, :func:`core.deep.robust.robust_endmembers`:
            denoised VCA, then the minimum-volume simplex, or representative spectra when the
            materials vary; on windows of up to 262,144 pixels; needs torch).
        bands, seed, progress: as :func:`count_endmembers`.

    Returns:
        {"p", "names", "path", "estimated" (HySime estimate or None), "library_angles_rad" (or None),
        and for ``robust`` "mixing_model" and "model_excess"}.
    """
    from ..io.library import write_csv
    from .outputs import check_outputs
    from .start import initial_endmembers, library_names, load_library_for, resolve_p

    if method not in EXTRACT_METHODS:
        raise UnmixError(f"unknown extraction method '{method}' (choose from {', '.join(EXTRACT_METHODS)})")
    check_outputs([out_csv], [input_path, library])
    if method == "library" and not library:
        raise UnmixError("library-guided extraction needs a spectral library (--library)")
    prog = ensure(progress)
    _, idx, wl, fwhm, Y = sample_input(input_path, bands, seed, progress=prog.sub(0, 50))
    prog.check()
    k, estimated = resolve_p(Y, p, seed, prog)
    lib = load_library_for(library, wl, fwhm, len(idx))
    prog.check()
    extra = {}
    if method == "robust":
        from ..deep.robust import robust_endmembers
        from ..io.raster import RasterReader
        from .inputs import ROBUST_WINDOW_PIXELS, window_cubes

        prog.info("noise-robust endmembers: denoised VCA, variability test, minimum-volume simplex or "
                  "representative spectra")
        with RasterReader(input_path, bands=idx) as reader:
            got = robust_endmembers(window_cubes(reader, ROBUST_WINDOW_PIXELS), k, seed=seed, progress=prog)
        if got is None:
            raise UnmixError(f"input raster has no valid pixels (all nodata or NaN): {input_path}")
        E = got["E"]
        names, _, angles = library_names(E, lib)
        extra = {"mixing_model": got["mixing"], "model_excess": float(got["model_excess"])}
    else:
        E, names, _, angles = initial_endmembers(Y, k, lib, seed, library_select=method == "library")
    prog.check()  # a cancel until now leaves no file
    write_csv(out_csv, E, names, wavelengths_nm=wl)
    prog.set_progress(100)
    return {"p": int(k), "names": list(names), "path": out_csv, "estimated": estimated,
            "library_angles_rad": None if angles is None else [float(a) for a in angles], **extra}


def read_endmember_csv(path: str, n_bands: int, wl=None) -> Tuple[np.ndarray, List[str]]:
    """Read an endmember CSV and match it to a raster's bands (resampled by wavelength if needed).

    Returns:
        (E (P, B), names).
    """
    from ..io.library import read_library, resample

    lib = read_library(path)
    both = wl is not None and lib.wavelengths_nm is not None
    same_bands = lib.spectra.shape[1] == n_bands and (
        not both or np.allclose(np.asarray(lib.wavelengths_nm, float), np.asarray(wl, float), atol=0.5))
    if same_bands:
        return lib.spectra, list(lib.names)
    if both:  # other bands (or as many bands at other wavelengths): resample by wavelength
        return resample(lib, wl).spectra, list(lib.names)
    raise UnmixError(f"{os.path.basename(path)} has {lib.spectra.shape[1]} bands, the raster {n_bands}")


def fcls_raster(input_path: str, endmembers_csv: str, out_tif: str, bands: Optional[str] = None,
                progress=None) -> Dict:
    """Fully constrained least squares abundances of a raster for given endmembers.

    Args:
        input_path: any GDAL raster with ≥ 2 bands.
        endmembers_csv: endmember CSV (as written by :func:`extract_endmembers` or ``unmix``).
        out_tif: output GeoTIFF, P Float32 bands named after the endmembers.
        bands: optional 1-based band subset.
        progress: progress/cancel protocol.

    Returns:
        {"p", "names", "path", "valid_pixels"}.
    """
    from ..classical.fcls import fcls
    from ..io.atomic import StagedOutputs
    from ..io.raster import RasterReader, RasterWriter
    from .inputs import no_valid_pixels, open_input, stream_pixels
    from .outputs import check_outputs, check_solved

    check_outputs([out_tif], [input_path, endmembers_csv])
    info, idx, wl, _ = open_input(input_path, bands)
    E, names = read_endmember_csv(endmembers_csv, len(idx), wl)
    if E.shape[0] < 2:
        raise UnmixError("the endmember CSV must hold at least 2 spectra")
    staged = StagedOutputs({"A": out_tif})
    try:
        with RasterReader(input_path, bands=idx) as r:
            with RasterWriter(staged.path("A"), info.width, info.height, E.shape[0],
                              band_names=names, **info.georef()) as w:
                stats = stream_pixels(r, [w], lambda pix: [fcls(pix, E)], progress)
            if stats["count"] == 0 and not stats["unsolved"]:
                raise no_valid_pixels(r, input_path, progress)
            check_solved(stats["count"], stats["unsolved"], input_path, progress)
        staged.commit(progress)
    except BaseException:
        staged.abort()
        raise
    return {"p": int(E.shape[0]), "names": names, "path": out_tif, "valid_pixels": int(stats["count"])}


def evaluate_files(abundances: Optional[str] = None, reference_abundances: Optional[str] = None,
                   endmembers: Optional[str] = None, reference_endmembers: Optional[str] = None,
                   input_path: Optional[str] = None, json_path: Optional[str] = None,
                   html_path: Optional[str] = None) -> Dict:
    """Score an unmixing result against references (Hungarian matching of endmembers).

    Args:
        abundances, reference_abundances: abundance rasters (P bands each, same grid).
        endmembers, reference_endmembers: endmember CSVs.
        input_path: input raster, for the reconstruction error (needs estimated A and E).
        json_path: optional JSON file to write the scores to.
        html_path: optional HTML report (a table of the scores).

    Returns:
        The scores of :func:`core.classical.metrics.evaluate` (aRMSE, SAD, reconstruction RMSE/PSNR/SRE...).
    """
    from ..classical.metrics import evaluate
    from ..io.library import read_library
    from ..io.raster import read_cube
    from .outputs import check_outputs

    # outputs checked before any scoring: never overwrite an input, never fail after the work
    check_outputs([json_path, html_path],
                  [abundances, reference_abundances, endmembers, reference_endmembers, input_path])

    def cube(path):
        c, valid, _ = read_cube(path)
        return c, valid

    # what can be scored: abundances against a reference, endmembers against a reference, and the
    # reconstruction of the input from the estimated abundances × endmembers (no reference needed)
    if reference_abundances and not abundances:
        raise UnmixError("reference abundances given without the estimated abundances to score")
    if reference_endmembers and not endmembers:
        raise UnmixError("reference endmembers given without the estimated endmembers to score")
    if input_path and not (abundances and endmembers):
        raise UnmixError("the reconstruction error of the input raster needs the estimated abundances and endmembers")
    if not (reference_abundances or reference_endmembers or input_path):
        raise UnmixError("nothing to compare: give estimated abundances with reference abundances, estimated "
                         "endmembers with reference endmembers, or both estimates with the input raster")
    A_est = A_ref = E_est = E_ref = Y = None
    names = None
    mask = None
    if abundances:
        A_est, mask = cube(abundances)
    if reference_abundances:
        A_ref, v2 = cube(reference_abundances)
        if A_est.shape[1:] != A_ref.shape[1:]:
            raise UnmixError(f"abundance rasters differ in size: {A_est.shape[2]}x{A_est.shape[1]} vs "
                             f"{A_ref.shape[2]}x{A_ref.shape[1]} pixels")
        if A_est.shape[0] < A_ref.shape[0]:
            raise UnmixError(f"the result has {A_est.shape[0]} abundance bands, fewer than the reference's "
                             f"{A_ref.shape[0]}: each reference endmember needs an estimate to be matched to")
        mask = mask & v2
    if endmembers:
        le = read_library(endmembers)
        E_est = le.spectra
    if reference_endmembers:
        lr = read_library(reference_endmembers)
        E_ref, names = lr.spectra, list(lr.names)
        if E_est.shape[1] != E_ref.shape[1]:
            if le.wavelengths_nm is None or lr.wavelengths_nm is None:
                raise UnmixError("estimated and reference endmembers have different band counts, and no "
                                 "wavelengths to match them by")
            from ..io.library import resample

            E_ref = resample(lr, le.wavelengths_nm).spectra  # e.g. a result without the bbl-flagged bands
    if input_path:
        from ..io.raster import band_subset, read_info

        info = read_info(input_path)
        good = band_subset(info, None)  # unmix drops the bands the ENVI bbl flags bad
        if E_est.shape[1] not in (info.count, good.size):
            raise UnmixError(f"input raster has {info.count} bands ({good.size} good), the estimated "
                             f"endmembers {E_est.shape[1]}: {input_path}")
        if A_est.shape[0] != E_est.shape[0]:
            raise UnmixError(f"{A_est.shape[0]} abundance bands but {E_est.shape[0]} endmembers: the "
                             f"reconstruction needs the abundances and endmembers of one result")
        Y, vy, _ = read_cube(input_path, bands=good if E_est.shape[1] == good.size else None)
        if Y.shape[1:] != A_est.shape[1:]:
            raise UnmixError(f"input raster is {Y.shape[2]}x{Y.shape[1]} pixels, the abundance raster "
                             f"{A_est.shape[2]}x{A_est.shape[1]}: {input_path}")
        mask = mask & vy

    if mask is not None and not mask.any():
        raise UnmixError("no pixel is valid in every raster compared (all nodata or NaN): nothing to score")

    def pix(c):
        return None if c is None else (c[:, mask].T if mask is not None else c.reshape(c.shape[0], -1).T)

    scores = evaluate(A_ref=pix(A_ref), E_ref=E_ref, A_est=pix(A_est), E_est=E_est, Y=pix(Y), names=names)
    if json_path:
        from .outputs import finite_json

        _write_text(json_path, json.dumps(finite_json(scores), indent=2, allow_nan=False))
    if html_path:
        _write_text(html_path, scores_html(scores))
    return scores


def scores_html(scores: Dict, title: str = "DiffUnmix evaluation") -> str:
    """A small self-contained HTML page with the scores as a table."""
    import html

    rows = []
    for key, val in scores.items():
        if isinstance(val, float):
            text = f"{val:.5f}"
        elif isinstance(val, (list, dict)):
            text = json.dumps(val)
        else:
            text = "" if val is None else str(val)
        rows.append(f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(text)}</td></tr>")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1>\n<table border=\"1\" cellpadding=\"4\">\n"
            + "\n".join(rows) + "\n</table></body></html>\n")


def _write_text(path: str, text: str) -> None:
    """Write a text file atomically (temporary name in the same folder, then rename)."""
    from ..io.raster import check_output_dir

    check_output_dir(os.path.dirname(os.path.abspath(path)) or ".")
    with atomic_write(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)


def synthesize(out_dir: Optional[str] = None, height: int = 64, width: int = 64, p: int = 4,
               family: str = "grf", purity: float = 0.5, snr_db: Optional[float] = 30.0, noise: str = "white",
               illumination: float = 0.0, min_angle_deg: float = 10.0, seed: int = 0,
               variability: float = 0.0, library: Optional[str] = None, scene_path: Optional[str] = None,
               abundances_path: Optional[str] = None, endmembers_path: Optional[str] = None) -> Dict:
    """A synthetic scene with known truth, drawn from a spectral library.

    Either ``out_dir`` (writes ``scene.tif``, ``truth_abundances.tif``,
    ``truth_endmembers.csv``, ``scene.json`` there) or the three explicit
    paths ``scene_path``, ``abundances_path``, ``endmembers_path`` (any folders).

    Args:
        height, width: size in pixels; p: number of endmembers (≥ 2).
        family: 'grf', 'legendre' or 'mosaic'; purity: 0..1; snr_db: dB (None or ≤ 0 = no noise).
        noise, illumination, min_angle_deg, seed, variability: see :class:`core.classical.synth.SceneConfig`.
        library: spectral library (.sli/.hdr or CSV); default the bundled one.

    Returns:
        {"paths": {"scene", "abundances", "endmembers"[, "config"]}, "names": [...], "p": P, "bands": B}.
    """
    import shutil
    import tempfile

    from ..classical.synth import SceneConfig, generate

    if height < 1 or width < 1 or p < 2:
        raise UnmixError("height and width must be ≥ 1 and the number of endmembers ≥ 2")
    cfg = SceneConfig(height=height, width=width, p=p, family=family, purity=purity,
                      snr_db=None if snr_db is None or snr_db <= 0 else snr_db, noise=noise,
                      illumination=illumination, min_angle_deg=min_angle_deg, seed=seed,
                      variability=variability)
    from .outputs import check_outputs

    if out_dir is not None:
        check_outputs([os.path.join(out_dir, n) for n in ("scene.tif", "truth_abundances.tif",
                                                          "truth_endmembers.csv", "scene.json")], [library])
        from .lock import folder_lock

        with folder_lock(out_dir):  # one run at a time per output folder
            out = generate(out_dir, cfg, library_path=library)
        return {"paths": dict(out["paths"]), "names": list(out["names"]), "p": p, "bands": int(out["E"].shape[1])}
    finals = {"scene": scene_path, "abundances": abundances_path, "endmembers": endmembers_path}
    missing = [k for k, v in finals.items() if not v]
    if missing:
        raise UnmixError(f"synthesize needs an output folder or all three output paths (missing: {', '.join(missing)})")
    check_outputs(list(finals.values()), [library])
    # generate into a private folder next to the scene, then move the files to their names
    work = tempfile.mkdtemp(prefix=f".diffunmix-synth-{os.getpid()}-",
                            dir=os.path.dirname(os.path.abspath(scene_path)) or ".")
    try:
        out = generate(work, cfg, library_path=library)
        for key, final in finals.items():
            shutil.move(out["paths"][key], final)
            aux = out["paths"][key] + ".aux.xml"
            if os.path.exists(aux):
                shutil.move(aux, final + ".aux.xml")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"paths": dict(finals), "names": list(out["names"]), "p": p, "bands": int(out["E"].shape[1])}
