"""Opening rasters and reading their spectral metadata (helpers of :mod:`.raster`).

:func:`open_raster` opens an input with clear :class:`UnmixError` messages (an
ENVI ``.hdr`` is mapped to its data file). :func:`parse_spectral_metadata` finds
wavelengths / FWHM, in order, in: the ENVI metadata domain (``wavelength =
{...}``, ``wavelength_units``, ``fwhm``, ``bbl``); per-band items (``wavelength``,
``fwhm``, ``wavelength_units``, as GDAL >= 3.10 and EnMAP-Box write, or the
``IMAGERY`` domain's ``CENTRAL_WAVELENGTH_UM``); dataset default-domain lists;
band descriptions such as ``"Band 1 (450.5 nm)"`` or ``"0.4505 µm"``. Units are
normalised to nm (micrometres x 1000; unknown units with all values < 30 are taken
as micrometres); wavenumbers and band indices are ignored.
"""

from __future__ import annotations

import os
import re
from typing import Optional

import numpy as np
from osgeo import gdal

from ..errors import UnmixError
from .units import UNIT_PATTERN, nm_factor

_ENVI_DATA_EXTS = ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw", ".bin")

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_DESC_WITH_UNIT = re.compile(rf"({_NUM})\s*({UNIT_PATTERN})\b", re.IGNORECASE)
_DESC_PAREN = re.compile(rf"\(\s*({_NUM})\s*\)\s*$")


def _parse_list(text: Optional[str]) -> Optional[np.ndarray]:
    """``'{1.0, 2, 3}'`` (ENVI style, braces optional) → float64 array, None if malformed."""
    if text is None or not str(text).strip():
        return None
    parts = [p for p in re.split(r"[,\s]+", str(text).strip().strip("{}").strip()) if p]
    try:
        return np.array([float(p) for p in parts], dtype=np.float64) if parts else None
    except ValueError:
        return None


def _to_nm(values, units, count: int, fwhm=None) -> tuple:
    """Validate and convert a wavelength (and FWHM) vector; ``(wl, fwhm)`` or Nones."""
    if values is None or len(values) != count or not np.all(np.isfinite(values) & (values > 0)):
        return None, None  # malformed, or not wavelengths (negative, zero)
    f = nm_factor(units, values)
    if f is None:
        return None, None
    with np.errstate(over="ignore", invalid="ignore"):
        nm = np.asarray(values, np.float64) * f
        fw = None if fwhm is None else np.asarray(fwhm, np.float64) * f
    if not np.all(np.isfinite(nm)):
        return None, None
    ok_fwhm = fw is not None and len(fw) == count and np.all(np.isfinite(fw) & (fw >= 0))
    return nm, (fw if ok_fwhm else None)


def _from_bands(bands: list) -> tuple:
    """Per-band ``wavelength``/``fwhm``/``wavelength_units`` items (GDAL ≥ 3.10, EnMAP-Box)."""
    n = len(bands)
    wl = [b.GetMetadataItem("wavelength") for b in bands]
    if all(w is not None for w in wl):
        vals = _parse_list(",".join(wl))
        fw = [b.GetMetadataItem("fwhm") for b in bands]
        fwv = _parse_list(",".join(fw)) if all(f is not None for f in fw) else None
        units = next((u for u in (b.GetMetadataItem("wavelength_units") for b in bands) if u), None)
        return _to_nm(vals, units, n, fwv)
    cw = [b.GetMetadataItem("CENTRAL_WAVELENGTH_UM", "IMAGERY") for b in bands]
    if all(c is not None for c in cw):  # GDAL ≥ 3.10 IMAGERY domain
        fw = [b.GetMetadataItem("FWHM_UM", "IMAGERY") for b in bands]
        fwv = _parse_list(",".join(fw)) if all(f is not None for f in fw) else None
        return _to_nm(_parse_list(",".join(cw)), "um", n, fwv)
    return None, None


def _from_descriptions(bands: list) -> tuple:
    """Wavelengths in band names: ``"Band 1 (450.5 nm)"``, ``"0.4505 µm"``, ``"B1 (450.5)"``."""
    vals = []
    for b in bands:
        desc = b.GetDescription() or ""
        hits = _DESC_WITH_UNIT.findall(desc)
        if hits:
            v = float(hits[-1][0]) * nm_factor(hits[-1][1], np.array([1.0e9]))
            vals.append((v, True))
            continue
        m = _DESC_PAREN.search(desc)
        if m is None:
            return None, None
        vals.append((float(m.group(1)), False))
    v = np.array([x for x, _ in vals])
    bare = np.array([not has_unit for _, has_unit in vals])
    if bare.any():  # values without units: µm when small
        v[bare] *= nm_factor(None, v[bare])
    return _to_nm(v, "nm", len(bands))


def parse_spectral_metadata(ds) -> tuple:
    """Wavelengths, FWHM (nm) and good-band flags of an open dataset.

    Looked up in order: the ENVI domain; per-band items; dataset default-domain
    lists; band descriptions. ENVI ``bbl`` (1 good, 0 bad) from the ENVI or
    default domain, all good when absent or malformed.

    Returns:
        ``(wavelengths_nm (count,)|None, fwhm_nm (count,)|None, bbl (count,) bool)``.
    """
    n = ds.RasterCount
    every = [ds.GetRasterBand(i + 1) for i in range(n)]
    # an alpha band (e.g. from gdalwarp -dstalpha) has no wavelength: the spectral bands are the others
    spectral = np.array([b.GetColorInterpretation() != gdal.GCI_AlphaBand for b in every])
    bands = [b for b, s in zip(every, spectral) if s]
    m = len(bands)
    envi = {k.lower(): v for k, v in (ds.GetMetadata("ENVI") or {}).items()}
    default = {k.lower(): v for k, v in (ds.GetMetadata() or {}).items()}
    wl = fwhm = None
    for md in (envi, None, default):
        if md is None:
            wl, fwhm = _from_bands(bands)
        elif "wavelength" in md:
            values, widths = _parse_list(md["wavelength"]), _parse_list(md.get("fwhm"))
            if values is not None and len(values) == n and m < n:  # listed for every band, alpha too
                values = values[spectral]
                widths = widths[spectral] if widths is not None and len(widths) == n else None
            wl, fwhm = _to_nm(values, md.get("wavelength_units"), m, widths)
        if wl is not None:
            break
    if wl is None:
        wl, fwhm = _from_descriptions(bands)
    if m < n:  # back onto every band, NaN for the alpha band (never selected: it is flagged bad)
        wl, fwhm = (None if v is None else _expand(v, spectral) for v in (wl, fwhm))
    bbl = _parse_list(envi.get("bbl", default.get("bbl")))
    if bbl is None:  # per-band items, as EnMAP-Box writes them
        items = [b.GetMetadataItem("bbl") for b in every]
        bbl = _parse_list(",".join(items)) if all(i is not None for i in items) else None
    good = bbl != 0 if bbl is not None and len(bbl) == n else np.ones(n, bool)
    return wl, fwhm, good & spectral


def _expand(values: np.ndarray, where: np.ndarray) -> np.ndarray:
    out = np.full(len(where), np.nan)
    out[where] = values
    return out


def envi_list(values) -> str:
    """``(n,)`` numbers → ENVI header list ``"{v1, v2, ...}"``."""
    return "{" + ", ".join(f"{float(v):.10g}" for v in values) + "}"


def _resolve_path(path) -> str:
    """Check that ``path`` exists and map an ENVI ``.hdr`` onto its data file."""
    path = os.fspath(path)
    if path.startswith("/vsi") or re.match(r"^[A-Za-z][A-Za-z0-9_]+:", path):
        return path  # GDAL virtual file or subdataset name
    if not os.path.exists(path):
        if os.path.islink(path):  # exists() follows links: a dangling link or a loop is not "missing"
            raise UnmixError(f"input raster is a broken symbolic link or a link loop: {path}")
        raise UnmixError(f"input raster not found: {path}")
    if path.lower().endswith(".hdr"):
        for ext in _ENVI_DATA_EXTS:
            for cand in (path[:-4] + ext, path[:-4] + ext.upper()):
                if os.path.isfile(cand):
                    return cand
        # any other extension (.rfl, .refl, .img.gz excluded): the one file of the same stem
        folder, stem = os.path.split(path[:-4])
        others = [f for f in os.listdir(folder or ".") if os.path.splitext(f)[0] == stem
                  and not f.lower().endswith((".hdr", ".aux.xml", ".xml", ".gz", ".zip"))]
        if len(others) == 1:
            return os.path.join(folder, others[0])
        raise UnmixError(f"ENVI header without its data file (.img/.dat/.bsq/...): {path}")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise UnmixError(f"input raster is an empty file (0 bytes): {path}")
    return path


def open_raster(path) -> tuple:
    """Open a raster with at least one band, read-only.

    Returns:
        ``(gdal.Dataset, resolved_path)``.

    Raises:
        UnmixError: Missing or empty file, not a raster, or no bands.
    """
    resolved = _resolve_path(path)
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        ds = gdal.OpenEx(resolved, gdal.OF_RASTER | gdal.OF_READONLY)
    except RuntimeError:
        ds = None
    finally:
        gdal.PopErrorHandler()
    if ds is None:
        raise UnmixError(f"not a raster GDAL can read: {resolved}")
    if ds.RasterCount == 0:
        subs = ds.GetSubDatasets()
        hint = f" (it holds {len(subs)} subdatasets, e.g. {subs[0][0]})" if subs else ""
        raise UnmixError(f"raster has no bands: {resolved}{hint}")
    return ds, resolved
