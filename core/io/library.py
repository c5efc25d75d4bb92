"""Spectral libraries: read (ENVI .sli/.hdr, CSV), resample, write CSV.

A library holds ``K`` spectra sampled at ``B`` wavelengths: ``spectra (K, B)``,
``wavelengths_nm (B,)`` (always nanometres). Library wavelengths need not be
increasing (AVIRIS-1995 has overlapping spectrometers); :func:`resample` sorts
them.

Missing values (``data ignore value``, anything below ``-1e30`` such as the
USGS ``-1.23e34``, non-finite values, empty CSV cells) are handled the same way
for every format: a spectrum with more than ``max_missing_fraction`` (10 %)
of its bands missing is dropped; the few missing bands of the others are
filled by linear interpolation along wavelength (nearest value at the ends).
In USGS splib07/AVIRIS-95 most spectra lack only the last band (2508 nm), so
dropping every incomplete spectrum would discard three spectra in four.
Rows that are not spectra (wavelength, resolution/bandpass/FWHM and "error
bars" records) are recognised by name and dropped.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import UnmixError
from .atomic import atomic_write
from .units import nm_factor

PathLike = Union[str, os.PathLike]

#: Values below this are "missing" (USGS uses -1.23e34).
MISSING_BELOW = -1e30
#: FWHM -> Gaussian sigma.
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))  # 1 / 2.3548

_ENVI_DTYPES = {1: "u1", 2: "i2", 3: "i4", 4: "f4", 5: "f8", 12: "u2", 13: "u4", 14: "i8", 15: "u8"}
_NOT_SPECTRUM = re.compile(
    r"^\s*(wavelengths?|resolution|bandpass|fwhm)\b|error\s*bars", re.IGNORECASE
)
_WL_COLUMNS = {"wavelength", "wavelengths", "wavelength_nm", "wavelength_um", "wl", "lambda",
               "nm", "um", "µm", "wave", "wavelength_micrometers", "wavelength_nanometers"}
_MISSING_TEXT = {"", "nan", "na", "n/a", "null", "none"}
#: ENVI ``wavelength units`` that are not wavelengths (wavenumbers, frequencies, band indices).


@dataclass
class SpectralLibrary:
    """Spectra with names and (optionally) wavelengths.

    Attributes:
        names: K spectrum names.
        wavelengths_nm: (B,) band centres in nm, or None (band index only).
        spectra: (K, B) float64, NaN-free.
        fwhm_nm: (B,) band widths in nm, or None.
        source: file the library came from ('' if built in memory).
        dropped: counts of rows dropped / filled while reading, e.g.
            ``{'not_spectra': 682, 'missing': 837, 'filled': 1060}``.
    """

    names: list
    wavelengths_nm: Optional[np.ndarray]
    spectra: np.ndarray
    fwhm_nm: Optional[np.ndarray] = None
    source: str = ""
    dropped: dict = field(default_factory=dict)

    @property
    def n_spectra(self) -> int:
        """Number of spectra K."""
        return int(self.spectra.shape[0])

    @property
    def n_bands(self) -> int:
        """Number of bands B."""
        return int(self.spectra.shape[1])

# ----------------------------------------------------------------- reading
def read_library(path: PathLike, max_missing_fraction: float = 0.1) -> SpectralLibrary:
    """Read an ENVI spectral library (.sli/.hdr) or a CSV library.

    Args:
        path: the .sli (or other data file) or its .hdr, or a .csv/.txt file
            (first column wavelength, or ``band``; one column per spectrum).
        max_missing_fraction: spectra with a larger fraction of missing bands
            are dropped; the others are filled by interpolation.

    Returns:
        SpectralLibrary with spectra (K, B) float64 and wavelengths in nm.

    Raises:
        UnmixError: missing or malformed file, or no usable spectrum.
    """
    p = Path(path)
    if not p.exists():
        raise UnmixError(f"spectral library not found: {p}")
    if p.is_dir():
        raise UnmixError(f"spectral library is a folder, not a file: {p}")
    if p.suffix.lower() in (".csv", ".txt"):
        return _read_csv(p, max_missing_fraction)
    if p.suffix.lower() == ".hdr":
        return _read_envi(p, _envi_data_path(p), max_missing_fraction)
    hdr = _envi_header_path(p)
    if hdr is None:
        raise UnmixError(f"{p.name}: not a CSV library and no ENVI header (.hdr) found next to it")
    return _read_envi(hdr, p, max_missing_fraction)


def _envi_header_path(data: Path) -> Optional[Path]:
    cands = (Path(str(data) + ".hdr"), data.with_suffix(".hdr"), data.with_suffix(".HDR"))
    return next((c for c in cands if c.is_file()), None)


def _envi_data_path(hdr: Path) -> Path:
    base = str(hdr)[: -len(hdr.suffix)]  # spectra.sli.hdr -> spectra.sli, lib.hdr -> lib
    for cand in (base, *(base + ext for ext in (".sli", ".SLI", ".spl", ".dat", ".lib", ".img"))):
        if Path(cand).is_file():
            return Path(cand)
    raise UnmixError(f"{hdr.name}: ENVI header found but no data file (.sli) next to it")


def parse_envi_header(text: str, name: str = "header") -> dict:
    """Parse ENVI header text into ``{lowercase key: str value}``.

    Brace values (``{...}``, possibly spanning lines) are returned without the
    braces.

    Raises:
        UnmixError: the text does not start with ``ENVI`` or a brace is unclosed.
    """
    text = text.lstrip("\ufeff")
    if not text.lstrip().upper().startswith("ENVI"):
        raise UnmixError(f"{name}: not an ENVI header (first line must be 'ENVI')")
    body = text.lstrip()[4:]
    out: dict = {}
    pos = 0
    pattern = re.compile(r"^[ \t]*([^=\n;]+?)[ \t]*=[ \t]*", re.MULTILINE)
    while True:
        m = pattern.search(body, pos)
        if m is None:
            break
        key = " ".join(m.group(1).lower().split())
        start = m.end()
        if body.startswith("{", start):
            end = body.find("}", start)
            if end < 0:
                raise UnmixError(f"{name}: malformed ENVI header, unclosed '{{' in '{_shown(key)}'")
            out[key] = body[start + 1:end]
            pos = end + 1
        else:
            end = body.find("\n", start)
            end = len(body) if end < 0 else end
            out[key] = body[start:end].strip()
            pos = end
    return out


def _header_int(h: dict, key: str, name: str, default: Optional[int] = None) -> int:
    if key not in h:
        if default is not None:
            return default
        raise UnmixError(f"{name}: malformed ENVI header, '{key}' is missing")
    try:
        return int(h[key].split()[0])
    except (ValueError, IndexError):
        raise UnmixError(
            f"{name}: malformed ENVI header, '{_shown(key)} = {_shown(h[key])}' is not an integer") from None


def _header_number(h: dict, key: str) -> Optional[float]:
    try:
        return float(h[key].split()[0])
    except (KeyError, ValueError, IndexError):
        return None


def _header_floats(h: dict, key: str, name: str, n: int) -> Optional[np.ndarray]:
    if key not in h or not h[key].strip():
        return None
    try:
        vals = np.array([float(v) for v in h[key].split(",") if v.strip()], dtype=np.float64)
    except ValueError:
        raise UnmixError(f"{name}: malformed ENVI header, non-numeric value in '{_shown(key)}'") from None
    if vals.size != n:
        raise UnmixError(f"{name}: '{key}' has {vals.size} values, expected {n} (samples)")
    return vals


def _read_envi(hdr: Path, data: Path, max_missing_fraction: float) -> SpectralLibrary:
    name = hdr.name
    try:
        text = hdr.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UnmixError(f"{name}: cannot read header ({exc.strerror})") from None
    h = parse_envi_header(text, name)
    n_bands = _header_int(h, "samples", name)  # library: samples = bands
    n_spec = _header_int(h, "lines", name)  # library: lines = spectra
    if _header_int(h, "bands", name, default=1) != 1:
        raise UnmixError(f"{name}: bands = {_shown(h['bands'])}; an ENVI spectral library has bands = 1")
    code = _header_int(h, "data type", name)
    if code not in _ENVI_DTYPES:
        raise UnmixError(f"{name}: unsupported ENVI data type {code}")
    if n_bands < 1 or n_spec < 1:
        raise UnmixError(f"{name}: empty library (samples = {n_bands}, lines = {n_spec})")
    order = ">" if _header_int(h, "byte order", name, default=0) == 1 else "<"
    dtype = np.dtype(order + _ENVI_DTYPES[code])
    offset = _header_int(h, "header offset", name, default=0)
    if offset < 0:
        raise UnmixError(f"{name}: malformed ENVI header, 'header offset = {offset}' is negative")
    expected = offset + n_spec * n_bands * dtype.itemsize
    size = data.stat().st_size
    if size != expected:
        raise UnmixError(f"{data.name}: file size {size} bytes does not match the header "
                         f"({n_spec} spectra x {n_bands} bands x {dtype.itemsize} bytes + {offset})")
    # with bands = 1, bsq / bil / bip all store spectrum after spectrum
    try:
        raw = np.fromfile(data, dtype=dtype, count=n_spec * n_bands, offset=offset)
    except OSError as exc:
        raise UnmixError(f"{data.name}: cannot read ({exc.strerror or exc})") from None
    with np.errstate(invalid="ignore"):  # signalling NaNs in the file
        spectra = raw.reshape(n_spec, n_bands).astype(np.float64)
    missing = ~np.isfinite(spectra) | (spectra < MISSING_BELOW)
    ignore, scale = _header_number(h, "data ignore value"), _header_number(h, "reflectance scale factor")
    if ignore is not None:
        missing |= np.isclose(spectra, ignore, rtol=1e-6, atol=0.0)
    if scale is not None and scale > 0 and scale != 1.0:
        with np.errstate(over="ignore"):
            spectra = spectra / scale
        missing |= ~np.isfinite(spectra)  # a tiny scale factor overflows

    names = _envi_names(h, n_spec)
    wl = _header_floats(h, "wavelength", name, n_bands)
    fwhm = _header_floats(h, "fwhm", name, n_bands)
    units = h.get("wavelength units", "")
    factor = nm_factor(units, wl)
    if wl is not None and factor is None:
        raise UnmixError(f"{name}: wavelength units '{units.strip()}' are not supported "
                         f"(the library needs wavelengths in nm or µm)")
    with np.errstate(over="ignore", invalid="ignore"):
        wl = None if wl is None else wl * factor
    if wl is not None and not np.all(np.isfinite(wl) & (wl > 0)):
        raise UnmixError(f"{name}: wavelengths must be positive, finite numbers")
    # band widths mean nothing without band centres (and their units may be no wavelength at all)
    fwhm = None if fwhm is None or wl is None else fwhm * factor
    return _finish(names, wl, spectra, missing, fwhm, str(data), name, max_missing_fraction)


def _envi_names(h: dict, n_spec: int) -> list:
    raw = h.get("spectra names", "")
    names = [" ".join(s.split()) for s in raw.split(",")]
    if len(names) != n_spec:  # names containing commas: try one name per line
        names = [" ".join(s.strip().rstrip(",").split()) for s in raw.splitlines() if s.strip()]
    if len(names) != n_spec:
        names = [f"spectrum {i + 1}" for i in range(n_spec)]
    return names


def _finish(names: list, wl: Optional[np.ndarray], spectra: np.ndarray, missing: np.ndarray,
            fwhm: Optional[np.ndarray], source: str, label: str,
            max_missing_fraction: float) -> SpectralLibrary:
    """Drop non-spectrum rows and incomplete spectra, fill the rest."""
    keep = np.array([not _NOT_SPECTRUM.search(n) for n in names], dtype=bool)
    n_not = int((~keep).sum())
    frac = missing.mean(axis=1)
    bad = keep & (frac > max_missing_fraction)
    keep &= ~bad
    spectra = spectra[keep].copy()
    missing = missing[keep]
    names = [n for n, k in zip(names, keep) if k]
    if not names:
        raise UnmixError(f"{label}: empty library (no spectrum with at most "
                         f"{100 * max_missing_fraction:.0f}% missing values)")
    x = np.arange(spectra.shape[1], dtype=np.float64) if wl is None else wl
    order = np.argsort(x, kind="stable")
    rows = np.flatnonzero(missing.any(axis=1))
    for r in rows:
        m = missing[r, order]
        v = spectra[r, order]
        v[m] = np.interp(x[order][m], x[order][~m], v[~m])
        spectra[r, order] = v
    return SpectralLibrary(names, wl, spectra, fwhm, source,
                           {"not_spectra": n_not, "missing": int(bad.sum()), "filled": int(rows.size)})


def _shown(text: str, limit: int = 40) -> str:
    """``text`` as quoted in a one-line message: control characters as ``?``, at most ``limit`` characters."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_csv(path: Path, max_missing_fraction: float) -> SpectralLibrary:
    name = path.name
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise UnmixError(f"{name}: cannot read ({exc.strerror})") from None
    lines = [(i + 1, ln) for i, ln in enumerate(text.splitlines())
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise UnmixError(f"{name}: empty library (no header row)")
    delim = next((d for d in ",;\t" if d in lines[0][1]), ",")
    try:
        rows = list(csv.reader([ln for _, ln in lines], delimiter=delim))
    except csv.Error as exc:  # e.g. a field over csv.field_size_limit()
        raise UnmixError(f"{name}: malformed CSV ({exc})") from None
    header = [c.strip() for c in rows[0]]
    first = re.sub(r"[\(\[].*?[\)\]]", "", header[0]).strip().lower().replace(" ", "_")
    is_band = first in ("band", "band_number", "channel", "bands")
    if not is_band and first not in _WL_COLUMNS:
        raise UnmixError(f"{name}: no wavelength column; the first header cell must be "
                         f"'wavelength', 'wavelength_nm', 'wl', 'lambda' or 'band' (got '{_shown(header[0])}')")
    if len(header) < 2:
        raise UnmixError(f"{name}: empty library (no spectrum column)")
    if len(rows) < 2:
        raise UnmixError(f"{name}: empty library (no data rows)")
    values = np.empty((len(rows) - 1, len(header)), dtype=np.float64)
    try:  # fast path; on failure the loop finds the offending row / cell
        fast = np.array(rows[1:], dtype=np.float64)
        if fast.shape != values.shape:  # rows of one wrong length would broadcast
            raise ValueError("ragged")
        values[:] = fast
        slow = ()
    except ValueError:
        slow = rows[1:]
    for r, row in enumerate(slow):
        lineno = lines[r + 1][0]
        if len(row) != len(header):
            raise UnmixError(f"{name}, line {lineno}: {len(row)} values, the header has {len(header)}")
        for c, cell in enumerate(row):
            cell = cell.strip()
            try:
                values[r, c] = float(cell)
            except ValueError:
                if c > 0 and cell.lower() in _MISSING_TEXT:
                    values[r, c] = np.nan
                else:
                    raise UnmixError(f"{name}, line {lineno}: non-numeric value '{_shown(cell)}'") from None
    x = values[:, 0]
    if not np.all(np.isfinite(x)):
        raise UnmixError(f"{name}: the wavelength column has missing values")
    spectra = values[:, 1:].T.copy()
    missing = ~np.isfinite(spectra) | (spectra < MISSING_BELOW)
    wl = None
    if not is_band:
        factor = nm_factor(header[0], x)
        with np.errstate(over="ignore"):
            wl = x * (factor if factor is not None else nm_factor(None, x))
        if not np.all(np.isfinite(wl) & (wl > 0)):
            raise UnmixError(f"{name}: wavelengths must be positive, finite numbers")
    names = [h or f"spectrum {i + 1}" for i, h in enumerate(header[1:])]
    return _finish(names, wl, spectra, missing, None, str(path), name, max_missing_fraction)


# -------------------------------------------------------------- resampling
def _interp_weights(xs: np.ndarray, q: np.ndarray) -> tuple:
    """Linear-interpolation weights of queries ``q`` on sorted samples ``xs``.

    Returns (i0, i1, w0, w1) such that value(q) = w0*f[i0] + w1*f[i1]; queries
    outside the range take the nearest end sample.
    """
    n = xs.size
    if n == 1:
        z = np.zeros(q.shape, dtype=int)
        return z, z, np.ones(q.shape), np.zeros(q.shape)
    i1 = np.clip(np.searchsorted(xs, q, side="right"), 1, n - 1)
    i0 = i1 - 1
    dx = xs[i1] - xs[i0]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(dx > 0, (q - xs[i0]) / np.where(dx > 0, dx, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    return i0, i1, 1.0 - t, t


def resample_matrix(src_nm: np.ndarray, dst_nm: np.ndarray,
                    fwhm_nm: Union[None, float, np.ndarray] = None) -> np.ndarray:
    """Matrix R (M, B) mapping spectra at ``src_nm`` (B,) to ``dst_nm`` (M,).

    A target band with a known FWHM integrates the piecewise-linear source
    spectrum against a Gaussian response (sigma = FWHM / 2.3548) sampled
    over +-3 sigma; other bands use linear interpolation. Rows sum to one.
    """
    src = np.asarray(src_nm, dtype=np.float64)
    dst = np.asarray(dst_nm, dtype=np.float64)
    order = np.argsort(src, kind="stable")
    xs = src[order]
    fw = np.full(dst.size, np.nan) if fwhm_nm is None else np.broadcast_to(
        np.asarray(fwhm_nm, dtype=np.float64), dst.shape)
    step = float(np.median(np.diff(xs))) if xs.size > 1 else 1.0
    rs = np.zeros((dst.size, xs.size))
    for j, (c, f) in enumerate(zip(dst, fw)):
        if np.isfinite(f) and f > 0:
            sigma = f * FWHM_TO_SIGMA
            n = int(np.clip(np.ceil(6.0 * sigma / max(min(step, sigma / 3.0), 1e-9)) + 1, 7, 401))
            q = c + sigma * np.linspace(-3.0, 3.0, n)
            g = np.exp(-0.5 * ((q - c) / sigma) ** 2)
            g /= g.sum()
        else:
            q, g = np.array([c]), np.array([1.0])
        i0, i1, w0, w1 = _interp_weights(xs, q)
        np.add.at(rs[j], i0, g * w0)
        np.add.at(rs[j], i1, g * w1)
    r = np.zeros_like(rs)
    r[:, order] = rs
    return r


def resample(lib: SpectralLibrary, wavelengths_nm: Sequence[float],
             fwhm_nm: Union[None, float, Sequence[float]] = None) -> SpectralLibrary:
    """Resample a library to a sensor's bands.

    Args:
        lib: library with wavelengths.
        wavelengths_nm: (M,) target band centres in nm (any order).
        fwhm_nm: (M,) or scalar target FWHM in nm; Gaussian response where
            known (finite, > 0), linear interpolation otherwise.

    Returns:
        A new SpectralLibrary with spectra (K, M) at the target wavelengths.
        Target bands slightly outside the library's range take the nearest
        library value.

    Raises:
        UnmixError: library without wavelengths, bad target wavelengths, no
            overlap, or fewer than half of the target bands inside the
            library's range.
    """
    if lib.wavelengths_nm is None:
        raise UnmixError("the spectral library has no wavelengths; cannot resample it to the raster's bands")
    dst = np.asarray(wavelengths_nm, dtype=np.float64).ravel()
    if dst.size == 0 or not np.all(np.isfinite(dst)):
        raise UnmixError("target wavelengths are empty or not finite")
    fw = None
    if fwhm_nm is not None:
        fw = np.broadcast_to(np.asarray(fwhm_nm, dtype=np.float64), dst.shape).copy()
    lo, hi = float(np.min(lib.wavelengths_nm)), float(np.max(lib.wavelengths_nm))
    half = 0.5 * float(np.median(np.diff(np.sort(dst)))) if dst.size > 1 else 0.0
    tol = np.full(dst.shape, half) if fw is None else np.where(np.isfinite(fw) & (fw > 0), 0.5 * fw, half)
    inside = (dst >= lo - tol) & (dst <= hi + tol)
    src = f" ({Path(lib.source).name})" if lib.source else ""
    if not inside.any():
        raise UnmixError(f"spectral library{src} ({lo:.0f}-{hi:.0f} nm) does not overlap the target "
                         f"wavelengths ({dst.min():.4g}-{dst.max():.4g} nm; are they in nm?)")
    if inside.mean() < 0.5:
        raise UnmixError(f"spectral library{src} ({lo:.0f}-{hi:.0f} nm) covers only "
                         f"{100 * inside.mean():.0f}% of the target bands ({dst.min():.0f}-{dst.max():.0f} nm)")
    r = resample_matrix(lib.wavelengths_nm, dst, fw)
    return SpectralLibrary(list(lib.names), dst.copy(), lib.spectra @ r.T, fw, lib.source)


# ----------------------------------------------------------------- writing
def write_csv(path: PathLike, spectra: np.ndarray, names: Sequence[str],
              wavelengths_nm: Optional[Sequence[float]] = None) -> Path:
    """Write spectra as a CSV library (atomically: temp file, then rename).

    Args:
        path: output .csv path (parent folders are created).
        spectra: (K, B) spectra.
        names: K column names.
        wavelengths_nm: (B,) in nm; without them the first column is
            ``band`` = 1..B, else ``wavelength_nm``.

    Returns:
        The path written.

    Raises:
        UnmixError: shapes do not agree or the folder is not writable.
    """
    s = np.asarray(spectra, dtype=np.float64)
    if s.ndim == 1:
        s = s[None, :]
    if s.ndim != 2:
        raise UnmixError(f"spectra must be (K, B), got shape {s.shape}")
    k, b = s.shape
    if len(names) != k:
        raise UnmixError(f"{len(names)} names for {k} spectra")
    if wavelengths_nm is not None:
        x = np.asarray(wavelengths_nm, dtype=np.float64).ravel()
        if x.size != b:
            raise UnmixError(f"{x.size} wavelengths for {b} bands")
        head, first = "wavelength_nm", [format(v, ".10g") for v in x]
    else:
        head, first = "band", [str(i + 1) for i in range(b)]
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UnmixError(f"cannot write {out}: {exc.strerror}") from None
    with atomic_write(str(out)) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow([head, *[str(n) for n in names]])
            for j in range(b):
                w.writerow([first[j], *[format(v, ".8g") for v in s[:, j]]])
    return out


def bundled_library_path() -> Path:
    """Path of the small USGS library shipped with the plugin (CSV, nm)."""
    return Path(__file__).resolve().parents[2] / "resources" / "library" / "usgs_minerals_vegetation.csv"
