"""Raster input/output: metadata, windowed reads, atomic writes, through one of two backends.

:func:`read_info` gathers what the engine needs from any GDAL raster (GeoTIFF,
ENVI, VRT, ...), including wavelengths / FWHM in nm and the bad-band list.
:class:`RasterReader` reads windows of a band subset as a scaled float32 cube
``Y (B, h, w)`` plus a validity mask ``(h, w)``. :class:`RasterWriter` writes a
Float32 tiled DEFLATE GeoTIFF under a temporary name next to the destination and
renames it onto the final path only on a clean exit, so a failed or cancelled
run never leaves a half-written file nor clobbers an existing one.

The library underneath is a backend (:func:`backend`): :mod:`.gdal_backend` on
GDAL's Python bindings wherever they import (QGIS: one libgdal in the process), else
:mod:`.rasterio_backend` (a pip-only environment: rasterio's wheels carry their own
libgdal); ``DIFFUNMIX_RASTER_BACKEND=gdal|rasterio`` forces one. Both give the same
values; everything that does not depend on the library is here.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from typing import Iterator, Optional, Sequence

import numpy as np

from ..errors import UnmixError
from .atomic import partial_path
from .raster_meta import _resolve_path, envi_list

NODATA = -9999.0
"""Nodata value of every Float32 output raster."""

# NUM_THREADS: DEFLATE compression of the output blocks on all cores (GDAL ≥ 2.1)
_GTIFF_OPTIONS = {"TILED": "YES", "COMPRESS": "DEFLATE", "PREDICTOR": "3", "BIGTIFF": "IF_SAFER",
                  "NUM_THREADS": "ALL_CPUS"}
#: windows of at least this many pixels are read as row slices in parallel threads
PARALLEL_READ_PIXELS = 1 << 16
#: fewest rows per parallel slice
_MIN_SLICE_ROWS = 32


#: environment variable that forces a backend
BACKEND_ENV = "DIFFUNMIX_RASTER_BACKEND"
#: the backends, in the order they are tried
BACKENDS = ("gdal", "rasterio")
_loaded: dict = {}


def _load(name: str):
    """The backend module ``name``; UnmixError when its library does not import."""
    if name not in _loaded:
        try:
            if name == "gdal":
                from . import gdal_backend as module
            else:
                from . import rasterio_backend as module
            _loaded[name] = module
        except ImportError as exc:
            _loaded[name] = UnmixError(f"raster backend '{name}' is not available ({exc})")
    if isinstance(_loaded[name], UnmixError):
        raise _loaded[name]
    return _loaded[name]


def backend():
    """The raster backend module in use: ``DIFFUNMIX_RASTER_BACKEND`` (``gdal`` or ``rasterio``) when set,
    else GDAL's bindings where they import, else rasterio. Read at every open, so a test can switch it.

    Raises:
        UnmixError: An unknown or unavailable backend is forced, or neither library imports.
    """
    forced = os.environ.get(BACKEND_ENV, "").strip().lower()
    if forced:
        if forced not in BACKENDS:
            raise UnmixError(f"{BACKEND_ENV}={forced}: not a raster backend (use {' or '.join(BACKENDS)})")
        return _load(forced)
    for name in BACKENDS:
        try:
            return _load(name)
        except UnmixError:
            continue
    raise UnmixError("no raster backend: install rasterio (pip install rasterio) or GDAL's Python bindings")


def _open(path) -> tuple:
    """``(backend, dataset, resolved path)`` of an input raster (see :func:`read_info` for the errors)."""
    io = backend()
    resolved = _resolve_path(path)
    return io, io.open_dataset(resolved), resolved


def read_threads() -> int:
    """Threads a :class:`RasterReader` uses for large windows: ``DIFFUNMIX_READ_THREADS``, else
    the cores, at most 8 (GDAL releases the GIL while it reads, and so does numpy while it converts)."""
    env = os.environ.get("DIFFUNMIX_READ_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(8, os.cpu_count() or 1))


@dataclass
class RasterInfo:
    """What the engine needs to know about a raster.

    Attributes:
        path: Path opened (an ENVI ``.hdr`` is mapped to its data file).
        width, height, count: Size in pixels and number of bands.
        dtype: Numpy name of band 1's stored type (e.g. ``"int16"``).
        driver: GDAL driver short name (``"GTiff"``, ``"ENVI"``, ...).
        geotransform: GDAL 6-tuple, or None when the raster has none.
        projection: CRS as WKT, ``""`` when none.
        nodata: Raw nodata value of band 1 (before scaling), or None.
        scale, offset: ``(count,)`` float64; read values are ``raw*scale+offset``.
        wavelengths_nm, fwhm_nm: ``(count,)`` float64 in nm (order as stored), or None.
        bbl: ``(count,)`` bool, True = good band.
        band_names: ``count`` band descriptions (``"Band i"`` when empty).
        block_size: Natural block size ``(bx, by)`` of band 1.
        gcps, gcp_projection: ground control points (``raster_meta.GCP``) and their CRS, when the
            raster is georeferenced by GCPs instead of a geotransform.
        rpc: the ``RPC`` metadata domain (rational polynomial coefficients), or None.
        alpha: 0-based index of an alpha band (0 = transparent pixel), or None; it is
            flagged bad in ``bbl``, so it is never unmixed.
    """

    path: str
    width: int
    height: int
    count: int
    dtype: str
    driver: str
    geotransform: Optional[tuple] = None
    projection: str = ""
    nodata: Optional[float] = None
    scale: np.ndarray = field(default_factory=lambda: np.ones(0))
    offset: np.ndarray = field(default_factory=lambda: np.zeros(0))
    wavelengths_nm: Optional[np.ndarray] = None
    fwhm_nm: Optional[np.ndarray] = None
    bbl: np.ndarray = field(default_factory=lambda: np.ones(0, bool))
    band_names: list = field(default_factory=list)
    block_size: tuple = (256, 256)
    gcps: tuple = ()
    gcp_projection: str = ""
    rpc: Optional[dict] = None
    alpha: Optional[int] = None

    def georef(self) -> dict:
        """Georeferencing keyword arguments of :class:`RasterWriter` for outputs on this grid."""
        return {"geotransform": self.geotransform, "projection": self.projection, "gcps": self.gcps,
                "gcp_projection": self.gcp_projection, "rpc": self.rpc}


# ------------------------------------------------------------------ info
def read_info(path) -> RasterInfo:
    """Read size, georeferencing, scaling and spectral metadata of a raster.

    Args:
        path: Any raster GDAL opens; an ENVI ``.hdr`` is mapped to its data file.

    Raises:
        UnmixError: The file is missing, empty, not a raster, or has no bands.
    """
    io, ds, resolved = _open(path)
    try:
        return RasterInfo(path=resolved, **io.describe(ds))
    finally:
        io.close(ds)


# ------------------------------------------------------------------ band selection
def _check_bands(info: RasterInfo, bands) -> np.ndarray:
    """Validate 0-based band indices (None → good bands); returns ``(B,)`` int64."""
    idx = np.flatnonzero(info.bbl) if bands is None else np.atleast_1d(np.asarray(bands))
    if idx.size == 0:
        raise UnmixError(f"no bands selected (all flagged bad?): {info.path}")
    if not np.issubdtype(idx.dtype, np.integer):
        raise UnmixError(f"band indices must be integers, got {idx.dtype}: {info.path}")
    bad = idx[(idx < 0) | (idx >= info.count)]
    if bad.size:
        raise UnmixError(f"band index {int(bad[0])} out of range (raster has {info.count} bands): {info.path}")
    return idx.astype(np.int64)


def band_subset(info: RasterInfo, spec: Optional[str], drop_bad: bool = True) -> np.ndarray:
    """Parse a user band subset such as ``"1-50,60,70-100"`` (1-based, inclusive).

    Args:
        info: The raster's :class:`RasterInfo`.
        spec: Band numbers and ranges separated by commas, semicolons or blanks; None or blank → all bands.
        drop_bad: Intersect the selection with the good bands (``info.bbl``).

    Returns:
        ``(B,)`` int64 0-based indices, ascending and unique.

    Raises:
        UnmixError: Malformed spec, band out of range, or no good band selected.
    """
    if spec is None or not str(spec).strip():
        chosen = np.arange(info.count)
    else:
        picked: list = []
        # "1-10,20", "1-10;20" and "1-10 20" alike ("1 - 10" is one range)
        for token in [t for t in re.split(r"[,;\s]+", re.sub(r"\s*-\s*", "-", str(spec).strip())) if t]:
            m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", token)
            if m is None:
                raise UnmixError(f"bad band subset '{spec}': '{token}' is not N or N-M")
            lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            if lo > hi:
                raise UnmixError(f"bad band subset '{spec}': range {token} is reversed")
            if lo < 1 or hi > info.count:
                raise UnmixError(f"bad band subset '{spec}': bands are 1..{info.count} in {info.path}")
            picked.extend(range(lo - 1, hi))
        chosen = np.unique(np.array(picked, dtype=np.int64))
    if drop_bad:
        chosen = chosen[info.bbl[chosen]]
    if chosen.size == 0:
        what = f"band subset '{spec}'" if spec is not None and str(spec).strip() else "the raster's bbl"
        raise UnmixError(f"{what} selects no good band: {info.path}")
    return chosen.astype(np.int64)


# ------------------------------------------------------------------ reading
def _raw_equals(raw: np.ndarray, value: float) -> np.ndarray:
    """``raw == value`` compared in the raw dtype (no float32/float64 rounding mismatch)."""
    if np.isnan(value):
        return np.isnan(raw) if raw.dtype.kind == "f" else np.zeros(raw.shape, bool)
    if raw.dtype.kind in "iu":
        lim = np.iinfo(raw.dtype)
        if value != np.floor(value) or not lim.min <= value <= lim.max:
            return np.zeros(raw.shape, bool)
    if raw.dtype == np.float32 and abs(value) >= _FLT_MAX * (1.0 - 1e-5):
        # "-3.40282e+38" is −FLT_MAX written with 6 digits: GDAL's own mask takes it as ±FLT_MAX too
        with np.errstate(over="ignore"):
            return (raw == np.float32(np.copysign(_FLT_MAX, value))) | (raw == np.float32(value))
    return raw == np.asarray(value).astype(raw.dtype)


_FLT_MAX = float(np.finfo(np.float32).max)


def block_windows(width: int, height: int, block_size: tuple, max_pixels: int) -> Iterator[tuple]:
    """Block-aligned windows covering ``width x height`` exactly; see :meth:`RasterReader.windows`."""
    bx, by = max(1, min(int(block_size[0]), width)), max(1, min(int(block_size[1]), height))
    max_pixels = max(1, int(max_pixels))
    if bx * by > max_pixels:  # huge blocks (one block per image): split into row bands
        bx, by = (width, max(1, max_pixels // width)) if width <= max_pixels else (max_pixels, 1)
    if width * by <= max_pixels:  # whole rows of blocks
        wx, wy = width, by * max(1, max_pixels // (width * by))
    else:  # runs of blocks along one block row
        wx, wy = bx * max(1, max_pixels // (bx * by)), by
    for y in range(0, height, wy):
        for x in range(0, width, wx):
            yield x, y, min(wx, width - x), min(wy, height - y)


def _read_failure(path: str, detail: str) -> str:
    """One-line message for a read GDAL could not complete (GDAL's own text, without the path)."""
    detail = " ".join(str(detail or "").split())
    if detail.startswith(path):
        detail = detail[len(path):].lstrip(" ,:")
    return f"cannot read {path}: the file is truncated or corrupted" + (f" ({detail})" if detail else "")


class RasterReader:
    """Windowed reader of a band subset, scaled to float32.

    Usage: ``with RasterReader(path) as r: for win in r.windows(): Y, valid = r.read(*win)``.
    """

    def __init__(self, path, bands: Optional[Sequence[int]] = None, threads: Optional[int] = None):
        """Open ``path`` and select ``bands`` (0-based; None → good bands per bbl).

        ``threads`` (default :func:`read_threads`): windows of at least
        :data:`PARALLEL_READ_PIXELS` pixels are split into row slices read and
        converted in that many threads, each on its own GDAL dataset handle.

        Raises:
            UnmixError: Unreadable raster, complex data, or band index out of range.
        """
        self._io, self._ds, resolved = _open(path)
        self._extra, self._pool = [], None
        try:
            self._threads = read_threads() if threads is None else max(1, int(threads))
            self.info = RasterInfo(path=resolved, **self._io.describe(self._ds))
            self.bands = _check_bands(self.info, bands)
            if np.dtype(self.info.dtype).kind == "c":
                raise UnmixError(f"complex-valued rasters are not supported: {resolved}")
        except BaseException:
            self.close()
            raise
        self._band_list = [int(b) + 1 for b in self.bands]  # 1-based, as the libraries count
        self._nodata = self._io.nodata_values(self._ds, self._band_list)
        self._scale = self.info.scale[self.bands].astype(np.float32)
        self._offset = self.info.offset[self.bands].astype(np.float32)
        # a per-dataset mask (.msk, internal mask) also flags pixels
        self._use_mask = self._io.uses_dataset_mask(self._ds, self._band_list[0])
        self._alpha = self.info.alpha  # an alpha band's 0 marks a pixel invalid (GDAL may not say so)

    def __enter__(self) -> "RasterReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Release the datasets and the read threads."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        for ds in [self._ds] + self._extra:
            if ds is not None:
                self._io.close(ds)
        self._ds, self._extra, self._pool = None, [], None

    def read(self, xoff: int = 0, yoff: int = 0, xsize: Optional[int] = None, ysize: Optional[int] = None) -> tuple:
        """Read a window of the selected bands.

        Args:
            xoff, yoff: Upper-left pixel of the window.
            xsize, ysize: Window size; None reads to the raster's edge.

        Returns:
            ``(cube, valid)``: cube ``(B, h, w)`` float32 ``raw*scale+offset``, NaN in
            every band where invalid; valid ``(h, w)`` bool, False where any selected
            band holds its nodata (compared on raw values) or a non-finite value (NaN,
            ±Inf), or the dataset mask says so.

        Raises:
            ValueError: Window outside the raster, or reader closed.
            UnmixError: The window cannot be read (truncated or corrupted file).
        """
        if self._ds is None:
            raise ValueError("RasterReader is closed")
        w, h = self.info.width, self.info.height
        xoff, yoff = int(xoff), int(yoff)
        xsize = w - xoff if xsize is None else int(xsize)
        ysize = h - yoff if ysize is None else int(ysize)
        if xoff < 0 or yoff < 0 or xsize <= 0 or ysize <= 0 or xoff + xsize > w or yoff + ysize > h:
            raise ValueError(f"window {(xoff, yoff, xsize, ysize)} outside raster {w}x{h}")
        cube = np.empty((len(self.bands), ysize, xsize), np.float32)
        valid = np.empty((ysize, xsize), bool)
        n = min(self._threads, ysize // _MIN_SLICE_ROWS) if xsize * ysize >= PARALLEL_READ_PIXELS else 1
        if n <= 1:
            self._read_rows(self._ds, xoff, yoff, xsize, 0, ysize, cube, valid)
            return cube, valid
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self._threads - 1, thread_name_prefix="diffunmix-rasterread")
        while len(self._extra) < n - 1:  # one dataset handle per thread: GDAL handles are not shared
            self._extra.append(self._io.open_dataset(self.info.path))
        cuts = [int(c) for c in np.linspace(0, ysize, n + 1)]
        jobs = [self._pool.submit(self._read_rows, self._extra[i - 1], xoff, yoff, xsize, cuts[i], cuts[i + 1],
                                  cube, valid) for i in range(1, n)]
        try:
            self._read_rows(self._ds, xoff, yoff, xsize, cuts[0], cuts[1], cube, valid)
        finally:
            for j in jobs:  # wait for every slice, then raise the first failure
                j.exception()
        for j in jobs:
            j.result()
        return cube, valid

    def _read_rows(self, ds, xoff: int, yoff: int, xsize: int, r0: int, r1: int, cube: np.ndarray,
                   valid: np.ndarray) -> None:
        """Rows ``r0:r1`` of a window into ``cube`` / ``valid`` (see :meth:`read`)."""
        ysize, io, win = r1 - r0, self._io, (xoff, yoff + r0, xsize, r1 - r0)
        try:
            raw = io.read(ds, self._band_list, *win)
            mask = io.read_mask(ds, self._band_list[0], *win) if self._use_mask else None
            alpha = io.read(ds, [self._alpha + 1], *win)[0] if self._alpha is not None else None
        except RuntimeError as exc:  # truncated or corrupted file: GDAL fails on the damaged block
            raise UnmixError(_read_failure(self.info.path, str(exc))) from None
        invalid = np.zeros((ysize, xsize), bool)
        for i, nd in enumerate(self._nodata):
            if nd is not None:
                invalid |= _raw_equals(raw[i], nd)
        if mask is not None:
            invalid |= mask == 0
        if alpha is not None:
            invalid |= alpha == 0
        out = cube[:, r0:r1]
        out[...] = raw
        del raw
        if np.any(self._scale != 1.0) or np.any(self._offset != 0.0):
            out *= self._scale[:, None, None]
            out += self._offset[:, None, None]
        invalid |= ~np.isfinite(out).all(axis=0)
        out[:, invalid] = np.nan
        valid[r0:r1] = ~invalid

    def empty_bands(self, progress=None) -> list:
        """1-based numbers of the selected bands that hold no valid value anywhere (nodata or
        non-finite in every pixel): what to leave out when a raster has no valid pixel. A full
        read, band by band and window by window; meant for that failure only."""
        empty = []
        for b, nd in zip(self._band_list, self._nodata):
            found = False
            for x, y, w, h in self.windows(max_pixels=1 << 20):
                if progress is not None:
                    progress.check()
                try:
                    raw = self._io.read(self._ds, [b], x, y, w, h)[0]
                except RuntimeError:
                    break
                ok = np.isfinite(raw) if raw.dtype.kind == "f" else np.ones(raw.shape, bool)
                if nd is not None:
                    ok &= ~_raw_equals(raw, nd)
                if ok.any():
                    found = True
                    break
            if not found:
                empty.append(b)
        return empty

    def windows(self, max_pixels: int = 1 << 20) -> Iterator[tuple]:
        """Windows of at most ``max_pixels`` pixels covering the raster exactly, without overlap.

        When one block fits in ``max_pixels`` the windows are aligned to the block
        grid: whole rows of blocks when they fit (always full width for strip-organised
        files), else runs of blocks along a block row. Larger blocks (e.g. one strip
        per image) are split into full-width row bands.

        Yields:
            ``(xoff, yoff, xsize, ysize)`` in row-major order.
        """
        yield from block_windows(self.info.width, self.info.height, self.info.block_size, max_pixels)


def read_cube(path, bands: Optional[Sequence[int]] = None) -> tuple:
    """Read a whole (small) raster: ``(cube (B, H, W) float32, valid (H, W) bool, info)``.

    ``bands`` are 0-based indices, None → good bands per bbl.
    """
    with RasterReader(path, bands) as reader:
        cube, valid = reader.read()
        return cube, valid, reader.info


# ------------------------------------------------------------------ writing
def check_output_dir(path) -> str:
    """Create folder ``path`` if needed and check a file can be written in it.

    Returns:
        The folder's absolute path.

    Raises:
        UnmixError: ``cannot write to output folder: PATH (reason)``.
    """
    path = os.path.abspath(os.fspath(path))
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".diffunmix-write-test-"):
            pass
    except OSError as exc:
        raise UnmixError(f"cannot write to output folder: {path} ({exc.strerror or exc})") from None
    return path


def write_failure(path: str, exc: BaseException) -> str:
    """One-line message for an output that could not be written (disk full, quota, I/O error)."""
    if isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror
    else:
        reason = " ".join(str(exc).split()).replace(path, "").strip(" :,") or type(exc).__name__
    from .atomic import final_name

    return f"cannot write {final_name(path)}: {reason} (is the disk full?)"


def _tile(block: int, size: int) -> int:
    """Tile edge: ``block`` (multiple of 16), capped at the smallest power of two ≥ max(size, 16)."""
    block, edge = max(16, (int(block) + 15) // 16 * 16), 16
    while edge < size and edge < block:
        edge *= 2
    return min(edge, block)


class RasterWriter:
    """Atomic Float32 GeoTIFF writer (tiled, DEFLATE, PREDICTOR=3, BIGTIFF=IF_SAFER).

    Written as ``.NAME.partial-PID`` next to ``path``; renamed onto ``path`` on a
    clean ``with`` exit (or :meth:`close`); deleted on an exception or
    :meth:`abort`, leaving any existing file at ``path`` untouched.
    """

    def __init__(self, path, width: int, height: int, count: int, geotransform: Optional[Sequence[float]] = None,
                 projection: str = "", nodata: float = NODATA, band_names: Optional[Sequence[str]] = None,
                 wavelengths_nm: Optional[Sequence[float]] = None, block: int = 256,
                 fwhm_nm: Optional[Sequence[float]] = None, gcps: Sequence = (), gcp_projection: str = "",
                 rpc: Optional[dict] = None):
        """Create the temporary file.

        Args:
            path: Final GeoTIFF path.
            width, height, count: Raster size and band count.
            geotransform: GDAL 6-tuple, or None. projection: CRS WKT ('' for none).
            nodata: Set on every band; non-finite pixels are written as it.
            band_names: ``count`` band descriptions.
            wavelengths_nm: ``(count,)`` nm, written as per-band ``wavelength`` /
                ``wavelength_units`` items and in the ENVI domain.
            block: Tile edge (capped for small rasters; power of two ≥ 16).
            fwhm_nm: ``(count,)`` nm, written next to the wavelengths.
            gcps, gcp_projection: ground control points and their CRS (used without a
                geotransform). rpc: an ``RPC`` metadata domain to copy.
            (:meth:`RasterInfo.georef` gives all georeferencing of an input at once.)

        Raises:
            UnmixError: Output folder not writable, or ``path`` is a folder.
            ValueError: Inconsistent sizes.
        """
        self._ds, self._done = None, True
        self.path = os.path.abspath(os.fspath(path))
        if os.path.isdir(self.path):
            raise UnmixError(f"output path is a folder, not a file: {self.path}")
        if width <= 0 or height <= 0 or count <= 0:
            raise ValueError(f"bad raster size {width}x{height}x{count}")
        for name, vals in (("band_names", band_names), ("wavelengths_nm", wavelengths_nm), ("fwhm_nm", fwhm_nm)):
            if vals is not None and len(vals) != count:
                raise ValueError(f"{name} has {len(vals)} items for {count} bands")
        folder = check_output_dir(os.path.dirname(self.path))
        self.width, self.height, self.count, self.nodata = int(width), int(height), int(count), float(nodata)
        self.tmp_path = partial_path(os.path.join(folder, os.path.basename(self.path)))
        opts = {**_GTIFF_OPTIONS, "BLOCKXSIZE": str(_tile(block, self.width)),
                "BLOCKYSIZE": str(_tile(block, self.height))}
        try:
            self._ds = backend().GTiffFile(self.tmp_path, self.width, self.height, self.count, opts)
        except RuntimeError as exc:
            raise UnmixError(f"cannot create output raster: {self.path} ({exc})") from None
        self._done = False
        try:
            self._ds.set_georef(geotransform, projection, gcps, gcp_projection, rpc)
            self._set_metadata(band_names, wavelengths_nm, fwhm_nm)
        except BaseException:
            self.abort()
            raise

    def _set_metadata(self, band_names, wavelengths_nm, fwhm_nm) -> None:
        envi = {}
        if wavelengths_nm is not None:
            envi.update(wavelength=envi_list(wavelengths_nm), wavelength_units="Nanometers")
        if fwhm_nm is not None:
            envi["fwhm"] = envi_list(fwhm_nm)
        items = [{} for _ in range(self.count)]
        for i, band in enumerate(items):
            if wavelengths_nm is not None:
                band.update(wavelength=f"{float(wavelengths_nm[i]):.10g}", wavelength_units="Nanometers")
            if fwhm_nm is not None:
                band["fwhm"] = f"{float(fwhm_nm[i]):.10g}"
        self._ds.set_metadata(envi, items, self.nodata, band_names)

    def write(self, array: np.ndarray, xoff: int = 0, yoff: int = 0) -> None:
        """Write ``array`` ``(count, h, w)`` (``(h, w)`` for one band) at ``(xoff, yoff)``; NaN → nodata.

        Raises:
            ValueError: Wrong band count, window outside the raster, or writer closed.
            UnmixError: The system refused the write (disk full, quota, I/O error); the
                temporary file is then already discarded.
        """
        if self._ds is None:
            raise ValueError("RasterWriter is closed")
        arr = np.asarray(array, dtype=np.float32)
        arr = arr[None] if arr.ndim == 2 else arr
        c, h, w = arr.shape
        if c != self.count:
            raise ValueError(f"array has {c} bands, raster has {self.count}")
        if xoff < 0 or yoff < 0 or xoff + w > self.width or yoff + h > self.height:
            raise ValueError(f"window {(xoff, yoff, w, h)} outside {self.width}x{self.height}")
        arr = np.ascontiguousarray(np.where(np.isfinite(arr), arr, np.float32(self.nodata)), dtype=np.float32)
        self._guarded(lambda: self._ds.write(arr, xoff, yoff))

    def _release(self) -> None:
        ds, self._ds = self._ds, None
        ds.close()  # GTiff writes its directory here

    def _guarded(self, action) -> None:
        """Run a write; when it fails (disk full, quota, I/O error) discard the file, raise UnmixError.

        GDAL writes cached blocks at any later write and at close, so every one is guarded.
        """
        failure = None
        try:
            action()
        except (RuntimeError, OSError) as exc:
            failure = write_failure(self.path, exc)
        if failure is not None:  # raised here, not in the handler, so the failed call's frames are freed
            self.abort()
            raise UnmixError(failure)

    def close(self) -> None:
        """Flush, close and rename the file onto its final path (no-op once done).

        Raises:
            UnmixError: The system refused the write (disk full, ...); nothing is renamed.
        """
        if self._done:
            return
        try:
            self._guarded(self._release)
            os.replace(self.tmp_path, self.path)
            aux, old_aux = self.tmp_path + ".aux.xml", self.path + ".aux.xml"
            if os.path.exists(aux):
                os.replace(aux, old_aux)
            elif os.path.exists(old_aux):  # stale statistics must not describe the new file
                os.remove(old_aux)
        except BaseException:
            self.abort()
            raise
        self._done = True

    def abort(self) -> None:
        """Discard the temporary file; the final path is not touched (no-op once done)."""
        if self._done:
            return
        self._done = True
        ds, self._ds = self._ds, None
        if ds is not None:
            ds.discard()
        for p in (self.tmp_path, self.tmp_path + ".aux.xml"):
            if os.path.exists(p):
                os.remove(p)

    def __enter__(self) -> "RasterWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):
        if not getattr(self, "_done", True):
            try:
                self.abort()
            except Exception:  # interpreter shutdown: best effort
                pass


def write_raster(path, array: np.ndarray, like=None, band_names: Optional[Sequence[str]] = None,
                 nodata: float = NODATA, wavelengths_nm: Optional[Sequence[float]] = None,
                 fwhm_nm: Optional[Sequence[float]] = None) -> str:
    """Write a whole array ``(c, H, W)`` (or ``(H, W)``) as an atomic Float32 GeoTIFF; NaN → nodata.

    Args:
        path: Output path.
        array: Values ``(c, H, W)``.
        like: :class:`RasterInfo` (or any object with ``geotransform``/``projection``)
            whose georeferencing is copied; its width/height, if any, must match.
        band_names, nodata, wavelengths_nm, fwhm_nm: See :class:`RasterWriter`.

    Returns:
        The absolute output path.
    """
    arr = np.asarray(array)
    arr = arr[None] if arr.ndim == 2 else arr
    c, h, w = arr.shape
    gt, wkt = None, ""
    if like is not None:
        if (getattr(like, "height", h), getattr(like, "width", w)) != (h, w):
            raise ValueError(f"array is {h}x{w} but the like raster is {like.height}x{like.width}")
        gt, wkt = getattr(like, "geotransform", None), getattr(like, "projection", "") or ""
    with RasterWriter(path, w, h, c, gt, wkt, nodata, band_names, wavelengths_nm, fwhm_nm=fwhm_nm) as writer:
        writer.write(arr, 0, 0)
    return writer.path
