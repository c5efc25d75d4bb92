"""Spectral metadata of rasters and input paths, whichever backend reads them (helpers of :mod:`.raster`).

A backend (:mod:`.gdal_backend`, :mod:`.rasterio_backend`) gathers a raster's
metadata domains into a :class:`MetadataView`; everything here is plain Python.
:func:`_resolve_path` checks an input path (an ENVI ``.hdr`` is mapped to its data
file) with clear :class:`UnmixError` messages. :func:`parse_spectral_metadata` finds
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
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import numpy as np

from ..errors import UnmixError
from .units import UNIT_PATTERN, nm_factor

_ENVI_DATA_EXTS = ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw", ".bin")

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_DESC_WITH_UNIT = re.compile(rf"({_NUM})\s*({UNIT_PATTERN})\b", re.IGNORECASE)
_DESC_PAREN = re.compile(rf"\(\s*({_NUM})\s*\)\s*$")


@dataclass
class MetadataView:
    """A raster's metadata as a backend reads it; every key lower-case (GDAL looks keys up ignoring case).

    Attributes:
        envi: the ``ENVI`` domain. default: the dataset's default domain.
        band_items: per band, its default domain. band_imagery: per band, its ``IMAGERY`` domain.
        descriptions: per band, its description (``""`` when none).
        alpha: per band, True for an alpha band.
    """

    envi: dict = field(default_factory=dict)
    default: dict = field(default_factory=dict)
    band_items: list = field(default_factory=list)
    band_imagery: list = field(default_factory=list)
    descriptions: list = field(default_factory=list)
    alpha: list = field(default_factory=list)


def lower_keys(md) -> dict:
    """A metadata domain (dict or None) with lower-case keys."""
    return {str(k).lower(): v for k, v in (md or {}).items()}


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


def _from_bands(items: list, imagery: list) -> tuple:
    """Per-band ``wavelength``/``fwhm``/``wavelength_units`` items (GDAL ≥ 3.10, EnMAP-Box), else the
    ``IMAGERY`` domain's ``CENTRAL_WAVELENGTH_UM``; ``items``/``imagery``: one dict per band."""
    n = len(items)
    wl = [b.get("wavelength") for b in items]
    if all(w is not None for w in wl):
        vals = _parse_list(",".join(wl))
        fw = [b.get("fwhm") for b in items]
        fwv = _parse_list(",".join(fw)) if all(f is not None for f in fw) else None
        units = next((u for u in (b.get("wavelength_units") for b in items) if u), None)
        return _to_nm(vals, units, n, fwv)
    cw = [b.get("central_wavelength_um") for b in imagery]
    if all(c is not None for c in cw):  # GDAL ≥ 3.10 IMAGERY domain
        fw = [b.get("fwhm_um") for b in imagery]
        fwv = _parse_list(",".join(fw)) if all(f is not None for f in fw) else None
        return _to_nm(_parse_list(",".join(cw)), "um", n, fwv)
    return None, None


def _from_descriptions(descriptions: list) -> tuple:
    """Wavelengths in band names: ``"Band 1 (450.5 nm)"``, ``"0.4505 µm"``, ``"B1 (450.5)"``."""
    vals = []
    for desc in descriptions:
        desc = desc or ""
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
    return _to_nm(v, "nm", len(descriptions))


def parse_spectral_metadata(view: MetadataView) -> tuple:
    """Wavelengths, FWHM (nm) and good-band flags of a raster (its :class:`MetadataView`).

    Looked up in order: the ENVI domain; per-band items; dataset default-domain
    lists; band descriptions. ENVI ``bbl`` (1 good, 0 bad) from the ENVI or
    default domain, all good when absent or malformed.

    Returns:
        ``(wavelengths_nm (count,)|None, fwhm_nm (count,)|None, bbl (count,) bool)``.
    """
    n = len(view.alpha)
    # an alpha band (e.g. from gdalwarp -dstalpha) has no wavelength: the spectral bands are the others
    spectral = ~np.array(view.alpha, bool).reshape(n)

    def only_spectral(per_band: list) -> list:
        return [v for v, s in zip(per_band, spectral) if s]

    m = int(spectral.sum())
    envi, default = view.envi, view.default
    wl = fwhm = None
    for md in (envi, None, default):
        if md is None:
            wl, fwhm = _from_bands(only_spectral(view.band_items), only_spectral(view.band_imagery))
        elif "wavelength" in md:
            values, widths = _parse_list(md["wavelength"]), _parse_list(md.get("fwhm"))
            if values is not None and len(values) == n and m < n:  # listed for every band, alpha too
                values = values[spectral]
                widths = widths[spectral] if widths is not None and len(widths) == n else None
            wl, fwhm = _to_nm(values, md.get("wavelength_units"), m, widths)
        if wl is not None:
            break
    if wl is None:
        wl, fwhm = _from_descriptions(only_spectral(view.descriptions))
    if m < n:  # back onto every band, NaN for the alpha band (never selected: it is flagged bad)
        wl, fwhm = (None if v is None else _expand(v, spectral) for v in (wl, fwhm))
    bbl = _parse_list(envi.get("bbl", default.get("bbl")))
    if bbl is None:  # per-band items, as EnMAP-Box writes them
        items = [b.get("bbl") for b in view.band_items]
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


class GCP(NamedTuple):
    """A ground control point: map ``x, y, z`` of image ``pixel, line`` (GDAL's order)."""

    x: float
    y: float
    z: float
    pixel: float
    line: float
    id: str = ""
    info: str = ""


#: ENVI headers give integer reflectance a ``reflectance scale factor`` (e.g. 10000) that GDAL
#: does not turn into a band scale; values are divided by it (as for ENVI spectral libraries)
_ENVI_SCALE_KEY = "reflectance_scale_factor"


def band_scales(scales: list, envi: dict, where: str = "") -> np.ndarray:
    """``(count,)`` float64 scale of each band: its own (None → 1), else the ENVI reflectance scale factor.

    Args:
        scales: per band, the scale the raster gives (None when unset).
        envi: the ENVI domain (lower-case keys).
        where: the raster, for the error message.

    Raises:
        UnmixError: a band scale of 0 or not finite (every value would read as the offset), or an
            ENVI reflectance scale factor that is not a positive number.
    """
    scale = np.array([s if s is not None else 1.0 for s in scales], np.float64)
    bad = np.flatnonzero(~np.isfinite(scale) | (scale == 0))
    if bad.size:  # every value would read as the offset: nothing left to unmix
        raise UnmixError(f"band {bad[0] + 1} has a scale of {scale[bad[0]]:g} (every value would read as the "
                         f"offset): fix the raster's scale metadata: {where}")
    if np.all(scale == 1.0):
        text = str(envi.get(_ENVI_SCALE_KEY, "")).strip().strip("{}").strip()
        if text:
            try:
                factor = float(text)
            except ValueError:
                factor = float("nan")
            with np.errstate(over="ignore", divide="ignore"):
                ok = np.isfinite(factor) and factor > 0 and np.isfinite(1.0 / factor)
            if not ok:
                raise UnmixError(f"ENVI 'reflectance scale factor = {text[:30]}' is not a positive number: "
                                 f"fix or remove it in the header of {where}")
            scale = np.full(len(scales), 1.0 / factor)
    return scale
