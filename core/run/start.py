"""The start every method shares: the number of endmembers P (given or HySime), the
spectral library resampled to the raster, the initial endmembers E0 (VCA or library)
and their names.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..errors import UnmixError
from ..progress import ensure
from .inputs import no_valid_pixels, sample_pixels

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


def distinct_spectra(Y: np.ndarray, limit: int) -> int:
    """How many distinct spectra the pixels ``Y`` (N, B) hold, counted up to ``limit``."""
    Y = np.ascontiguousarray(Y)
    if Y.shape[0] == 0:
        return 0
    if float(np.ptp(Y, axis=0).max()) == 0.0:
        return 1
    rows = Y.view(np.dtype((np.void, Y.dtype.itemsize * Y.shape[1]))).ravel()
    found = set()
    for r in rows:  # stops as soon as ``limit`` are found (a real scene: after a few pixels)
        found.add(r.tobytes())
        if len(found) >= limit:
            break
    return len(found)


def resolve_p(Y: np.ndarray, requested: int, seed: int, progress=None) -> (int, Optional[int]):
    """The number of endmembers: as requested, or estimated by HySime when 0 (at most
    :data:`MAX_AUTO_ENDMEMBERS`, with a warning through ``progress`` when the estimate is doubtful).

    Raises:
        UnmixError: the valid pixels hold fewer distinct spectra than endmembers (a constant or
            all-zero raster, a scale of 0): there is nothing to unmix.
    """
    from ..classical.endmembers import hysime

    n, b = Y.shape
    need = max(int(requested), 2)
    distinct = distinct_spectra(Y, need) if n >= need else need  # fewer pixels: refused below
    if distinct < need:
        what = "every valid pixel holds the same spectrum" if distinct == 1 else \
            f"the valid pixels hold only {distinct} distinct spectra"
        raise UnmixError(f"nothing to unmix: {what} (a constant or empty image, or a scale of 0?); "
                         f"{need} endmembers need at least {need} different spectra")
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
    from ..io.library import read_library, resample

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
    from ..classical.endmembers import name_endmembers

    names, lidx, ang = name_endmembers(E, lib.spectra, lib.names, max_angle=LIBRARY_MATCH_MAX_RAD)
    match = np.array(lib.spectra[np.asarray(lidx)], np.float64)
    match[~(ang <= LIBRARY_MATCH_MAX_RAD)] = np.nan
    return names, match, ang


def initial_endmembers(Y: np.ndarray, p: int, lib, seed: int, library_select: bool = False):
    """Initial endmembers by VCA (or chosen from the library) and their names.

    Returns:
        (E (P, B), names, matched library spectra (P, B) or None, angles (P,) or None)
    """
    from ..classical.endmembers import select_from_library, vca

    if lib is not None and library_select:
        idx = np.asarray(select_from_library(Y, lib.spectra, p, seed=seed))
        E = lib.spectra[idx].astype(np.float64)
    else:
        E, _ = vca(Y, p, seed=seed)
    return (np.asarray(E, np.float64), *library_names(E, lib))


@dataclass
class Start:
    """What :func:`estimate_start` found.

    Attributes:
        Y: the pixel sample (N, B); p: endmember count; p_est: HySime's estimate (None when given);
        lib: the resampled library or None; E: initial endmembers (P, B); names: P names;
        lib_match: matched library spectra (P, B) or None; angles: their angles (P,) or None.
    """

    Y: np.ndarray
    p: int
    p_est: Optional[int]
    lib: object
    E: np.ndarray
    names: list
    lib_match: Optional[np.ndarray]
    angles: Optional[np.ndarray]


def estimate_start(reader, input_path: str, opts, wl, fwhm, n_bands: int, progress=None) -> Start:
    """Sample → P (given or HySime) → library → initial endmembers; shared by both methods."""
    prog = ensure(progress)
    prog.info("sampling valid pixels")
    Y = sample_pixels(reader, opts.max_sample, opts.seed, prog)
    if Y.shape[0] == 0:
        raise no_valid_pixels(reader, input_path, prog)
    p, p_est = resolve_p(Y, opts.endmembers, opts.seed, prog)
    prog.info(f"{p} endmembers" + (" (estimated by HySime)" if p_est is not None else ""))
    lib = load_library_for(opts.library, wl, fwhm, n_bands)
    E, names, lib_match, angles = initial_endmembers(Y, p, lib, opts.seed)
    return Start(Y, p, p_est, lib, E, names, lib_match, angles)
