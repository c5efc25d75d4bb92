"""Raster backend on rasterio: where GDAL's Python bindings do not import (a pip-only environment).

rasterio's manylinux wheels carry their own libgdal, so ``pip install diffunmix``
reads and writes every format GDAL does without Debian's ``python3-gdal``. The
functions match :mod:`.gdal_backend` one for one, and give the same values:
:mod:`.raster` holds what does not depend on the library.

rasterio reports GDAL's messages through Python's ``logging`` (loggers under
``rasterio``) and a raster without georeferencing through a warning; neither is
printed here (the CLI routes the loggers, see ``core.cli``).
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from typing import Optional

import numpy as np
import rasterio
from affine import Affine
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

from ..errors import UnmixError
from .raster_meta import GCP, MetadataView, band_scales, lower_keys, parse_spectral_metadata

try:  # the base of rasterio's CPLE_* errors (raised by reads and writes that GDAL refuses)
    from rasterio._err import CPLE_BaseError
except ImportError:  # pragma: no cover (moved in some release)
    CPLE_BaseError = RasterioError

NAME = "rasterio"
_FAILURES = (RasterioError, CPLE_BaseError, OSError)  # RasterioIOError is an OSError


def version() -> str:
    """rasterio's release and the GDAL it carries."""
    return f"{rasterio.__version__} (GDAL {rasterio.__gdal_version__})"


@contextmanager
def _quiet():
    """No NotGeoreferencedWarning (a raster without georeferencing is fine here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


class _Collect(logging.Handler):
    """GDAL's error messages that rasterio logs (rasterio 1.3 logs a failed block write at close
    instead of raising it)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        text = record.getMessage()
        if "error" in text.lower() and ("err_no" in text or record.levelno >= logging.ERROR):
            self.messages.append(text.split("msg=", 1)[-1].strip("'\""))


@contextmanager
def _as_runtime_error(check_log: bool = False):
    """rasterio's failures (RasterioError, CPLE_*) as RuntimeError with GDAL's message, like GDAL's bindings.

    Runs in a ``rasterio.Env`` (per thread), so GDAL's messages go to rasterio's loggers, not to
    stderr; ``check_log``: a GDAL error logged meanwhile raises too.
    """
    collect, log = _Collect(), logging.getLogger("rasterio")
    level = log.level
    if check_log:
        log.addHandler(collect)
        if log.getEffectiveLevel() > logging.INFO:  # rasterio 1.3 logs GDAL's errors at INFO
            log.setLevel(logging.INFO)
    try:
        with _quiet(), rasterio.Env():
            yield
    except _FAILURES as exc:
        text = " ".join(str(exc).split())
        text = text[len("Read or write failed."):].strip() if text.startswith("Read or write failed.") else text
        raise RuntimeError(collect.messages[0] if collect.messages else text) from None
    finally:
        log.removeHandler(collect)
        log.setLevel(level)
    if collect.messages:
        raise RuntimeError(collect.messages[0])


# ------------------------------------------------------------------ opening, metadata
def open_dataset(resolved: str):
    """Open a raster with at least one band, read-only (``resolved``: see ``raster_meta._resolve_path``).

    Raises:
        UnmixError: Not a raster, or no bands.
    """
    try:
        with _quiet():
            ds = rasterio.open(resolved)
    except _FAILURES:
        raise UnmixError(f"not a raster GDAL can read: {resolved}") from None
    if ds.count == 0:
        subs = list(ds.subdatasets)
        ds.close()
        hint = f" (it holds {len(subs)} subdatasets, e.g. {subs[0]})" if subs else ""
        raise UnmixError(f"raster has no bands: {resolved}{hint}")
    return ds


def file_list(path: str) -> Optional[list]:
    """Every file GDAL reads for the raster ``path`` (its own first; a VRT's sources), or None when
    ``path`` does not open as a raster. Quiet: no GDAL message, no exception."""
    try:
        with _quiet(), rasterio.open(path) as ds:
            return list(ds.files or [])
    except (RasterioError, OSError, ValueError):
        return None


def close(ds) -> None:
    """Close a dataset."""
    ds.close()


def _tags(ds, bidx: int = 0, ns: Optional[str] = None) -> dict:
    try:
        return lower_keys(ds.tags(bidx, ns=ns) if ns else ds.tags(bidx))
    except _FAILURES:
        return {}


def metadata_view(ds) -> MetadataView:
    """The metadata domains :func:`~.raster_meta.parse_spectral_metadata` reads."""
    idx = range(1, ds.count + 1)
    return MetadataView(
        envi=_tags(ds, 0, "ENVI"), default=_tags(ds),
        band_items=[_tags(ds, i) for i in idx], band_imagery=[_tags(ds, i, "IMAGERY") for i in idx],
        descriptions=[d or "" for d in ds.descriptions],
        alpha=[c == ColorInterp.alpha for c in ds.colorinterp])


def _wkt(crs) -> str:
    return crs.to_wkt() if crs else ""


def describe(ds) -> dict:
    """The :class:`~.raster.RasterInfo` fields of an open dataset (all but ``path``)."""
    with _quiet():
        view = metadata_view(ds)
        wl, fwhm, bbl = parse_spectral_metadata(view)
        alpha = next((i for i, a in enumerate(view.alpha) if a), None)
        transform = ds.transform
        # rasterio answers the identity where GDAL has no geotransform (none, or GCPs only)
        gt = None if transform.is_identity else tuple(float(v) for v in transform.to_gdal())
        nodata = next((v for i, v in enumerate(ds.nodatavals) if i != alpha), None)
        points, gcp_crs = ds.gcps if gt is None else ([], None)
        gcps = tuple(GCP(g.x, g.y, g.z if g.z is not None else 0.0, g.col, g.row, g.id or "", g.info or "")
                     for g in points or ())
        rpc = _tags(ds, 0, "RPC")
    return dict(
        width=ds.width, height=ds.height, count=ds.count, dtype=np.dtype(ds.dtypes[0]).name, driver=ds.driver,
        geotransform=gt, projection=_wkt(ds.crs),
        nodata=float(nodata) if nodata is not None else None,
        scale=band_scales(list(ds.scales), view.envi, ds.name),
        offset=np.array([o if o is not None else 0.0 for o in ds.offsets], np.float64),
        wavelengths_nm=wl, fwhm_nm=fwhm, bbl=bbl,  # the alpha band is flagged bad there
        band_names=[d or f"Band {i + 1}" for i, d in enumerate(view.descriptions)],
        block_size=(int(ds.block_shapes[0][1]), int(ds.block_shapes[0][0])),
        gcps=gcps, gcp_projection=_wkt(gcp_crs) if gcps else "",
        rpc={k.upper(): v for k, v in rpc.items()} or None, alpha=alpha,
    )


def nodata_values(ds, bands: list) -> list:
    """Raw nodata value (or None) of each 1-based band in ``bands``."""
    return [ds.nodatavals[b - 1] for b in bands]


def uses_dataset_mask(ds, band: int) -> bool:
    """True when a per-dataset mask (``.msk``, internal mask) flags pixels of 1-based ``band``."""
    flags = set(ds.mask_flag_enums[band - 1])
    return MaskFlags.per_dataset in flags and not flags & {MaskFlags.all_valid, MaskFlags.nodata}


# ------------------------------------------------------------------ reading
def read(ds, bands: list, xoff: int, yoff: int, xsize: int, ysize: int) -> np.ndarray:
    """Raw values ``(len(bands), ysize, xsize)`` of 1-based ``bands`` in their stored type.

    Raises:
        RuntimeError: GDAL could not read the window (its message).
    """
    with _as_runtime_error():
        return ds.read(list(bands), window=Window(xoff, yoff, xsize, ysize))


def read_mask(ds, band: int, xoff: int, yoff: int, xsize: int, ysize: int) -> np.ndarray:
    """The mask of 1-based ``band`` (0 = invalid) ``(ysize, xsize)``; RuntimeError when unreadable."""
    with _as_runtime_error():
        return ds.read_masks(band, window=Window(xoff, yoff, xsize, ysize))


# ------------------------------------------------------------------ writing
class GTiffFile:
    """A Float32 GeoTIFF being written (see :class:`~.raster.RasterWriter`, which makes it atomic).

    Every method that writes raises RuntimeError (GDAL's message) or OSError when it fails.
    """

    def __init__(self, path: str, width: int, height: int, count: int, options: dict):
        """Create ``path`` with GTiff creation ``options`` (``{"TILED": "YES", ...}``)."""
        self._ds = None
        with _as_runtime_error():
            self._ds = rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=count,
                                     dtype="float32", **{k.lower(): v for k, v in options.items()})
        self.count = count

    def set_georef(self, geotransform: Optional[tuple], projection: str, gcps=(), gcp_projection: str = "",
                   rpc: Optional[dict] = None) -> None:
        """Geotransform and CRS, else ground control points (:class:`~.raster_meta.GCP`); an RPC domain."""
        with _as_runtime_error():
            ds = self._ds
            if geotransform is not None:
                ds.transform = Affine.from_gdal(*[float(v) for v in geotransform])
            if projection and not (gcps and geotransform is None):
                ds.crs = CRS.from_wkt(projection)
            if gcps and geotransform is None:  # georeferenced by ground control points
                points = [GCP(*g) for g in gcps]
                wkt = gcp_projection or projection
                ds.gcps = ([GroundControlPoint(row=g.line, col=g.pixel, x=g.x, y=g.y, z=g.z, id=g.id or None,
                                               info=g.info or None) for g in points],
                           CRS.from_wkt(wkt) if wkt else None)
            if rpc:
                ds.update_tags(ns="RPC", **dict(rpc))

    def set_metadata(self, envi: dict, band_items: list, nodata: float, band_names=None) -> None:
        """The ENVI domain, each band's items, nodata and description (``band_names``, or None)."""
        with _as_runtime_error():
            if envi:
                self._ds.update_tags(ns="ENVI", **envi)
            self._ds.nodata = nodata
            for i in range(self.count):
                if band_names is not None:
                    self._ds.set_band_description(i + 1, str(band_names[i]))
                if band_items[i]:
                    self._ds.update_tags(i + 1, **band_items[i])

    def write(self, arr: np.ndarray, xoff: int, yoff: int) -> None:
        """Write float32 ``arr (count, h, w)`` at ``(xoff, yoff)``."""
        c, h, w = arr.shape
        with _as_runtime_error(check_log=True):
            self._ds.write(np.ascontiguousarray(arr, np.float32), list(range(1, c + 1)),
                           window=Window(int(xoff), int(yoff), w, h))

    def close(self) -> None:
        """Flush and close (GTiff writes its directory here)."""
        ds, self._ds = self._ds, None
        with _as_runtime_error(check_log=True):
            ds.close()

    def discard(self) -> None:
        """Close without reporting (closing after a failed write fails again: nothing more to say)."""
        ds, self._ds = self._ds, None
        if ds is not None:
            try:
                with _quiet():
                    ds.close()
            except Exception:  # noqa: BLE001 (the file is being discarded)
                pass
