"""Raster backend on GDAL's Python bindings (``osgeo.gdal``): the default wherever they import.

Inside QGIS this keeps one libgdal in the process (QGIS' own). :mod:`.raster`
holds everything that does not depend on the library (band selection, nodata,
scaling, threads, atomic renames); this module opens datasets, reads their
metadata and pixels, and creates the Float32 GeoTIFFs. :mod:`.rasterio_backend`
offers the same functions.

GDAL's Python exception mode is process-wide: the engine never switches it (inside QGIS
that would change every other plugin's GDAL calls); it checks return values and works in
both modes.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from osgeo import gdal, gdal_array

from ..errors import UnmixError
from .raster_meta import GCP, MetadataView, band_scales, lower_keys, parse_spectral_metadata

NAME = "gdal"


def version() -> str:
    """The GDAL release in use."""
    return gdal.__version__


# ------------------------------------------------------------------ opening, metadata
def open_dataset(resolved: str):
    """Open a raster with at least one band, read-only (``resolved``: see ``raster_meta._resolve_path``).

    Raises:
        UnmixError: Not a raster, or no bands.
    """
    ds = _open_quietly(resolved)
    if ds is None:
        raise UnmixError(f"not a raster GDAL can read: {resolved}")
    if ds.RasterCount == 0:
        subs = ds.GetSubDatasets()
        hint = f" (it holds {len(subs)} subdatasets, e.g. {subs[0][0]})" if subs else ""
        raise UnmixError(f"raster has no bands: {resolved}{hint}")
    return ds


def _open_quietly(path: str):
    """The raster ``path`` opened read-only, or None; no GDAL message, no exception."""
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        return gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_READONLY)
    except RuntimeError:
        return None
    finally:
        gdal.PopErrorHandler()


def file_list(path: str) -> Optional[list]:
    """Every file GDAL reads for the raster ``path`` (its own first; a VRT's sources), or None when
    ``path`` does not open as a raster."""
    ds = _open_quietly(path)
    return None if ds is None else list(ds.GetFileList() or [])


def close(ds) -> None:
    """Release a dataset (GDAL closes it when the last reference goes)."""


def _np_dtype(gdal_type: int) -> np.dtype:
    return np.dtype(gdal_array.GDALTypeCodeToNumericTypeCode(gdal_type))


def metadata_view(ds) -> MetadataView:
    """The metadata domains :func:`~.raster_meta.parse_spectral_metadata` reads."""
    bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
    return MetadataView(
        envi=lower_keys(ds.GetMetadata("ENVI")), default=lower_keys(ds.GetMetadata()),
        band_items=[lower_keys(b.GetMetadata()) for b in bands],
        band_imagery=[lower_keys(b.GetMetadata("IMAGERY")) for b in bands],
        descriptions=[b.GetDescription() or "" for b in bands],
        alpha=[b.GetColorInterpretation() == gdal.GCI_AlphaBand for b in bands])


def describe(ds) -> dict:
    """The :class:`~.raster.RasterInfo` fields of an open dataset (all but ``path``)."""
    bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
    view = metadata_view(ds)
    wl, fwhm, bbl = parse_spectral_metadata(view)
    alpha = next((i for i, a in enumerate(view.alpha) if a), None)
    gt = ds.GetGeoTransform(can_return_null=True)
    nodata = next((b.GetNoDataValue() for i, b in enumerate(bands) if i != alpha), None)
    gcps = tuple(GCP(g.GCPX, g.GCPY, g.GCPZ, g.GCPPixel, g.GCPLine, g.Id or "", g.Info or "")
                 for g in (ds.GetGCPs() or ())) if gt is None else ()
    rpc = ds.GetMetadata("RPC") or None
    return dict(
        width=ds.RasterXSize, height=ds.RasterYSize, count=len(bands),
        dtype=_np_dtype(bands[0].DataType).name, driver=ds.GetDriver().ShortName,
        geotransform=tuple(float(v) for v in gt) if gt is not None else None,
        projection=ds.GetProjection() or "",
        nodata=float(nodata) if nodata is not None else None,
        scale=band_scales([b.GetScale() for b in bands], view.envi, ds.GetDescription()),
        offset=np.array([b.GetOffset() if b.GetOffset() is not None else 0.0 for b in bands], np.float64),
        wavelengths_nm=wl, fwhm_nm=fwhm, bbl=bbl,  # the alpha band is flagged bad there
        band_names=[d or f"Band {i + 1}" for i, d in enumerate(view.descriptions)],
        block_size=tuple(int(v) for v in bands[0].GetBlockSize()),
        gcps=gcps, gcp_projection=(ds.GetGCPProjection() or "") if gcps else "", rpc=rpc, alpha=alpha,
    )


def nodata_values(ds, bands: list) -> list:
    """Raw nodata value (or None) of each 1-based band in ``bands``."""
    return [ds.GetRasterBand(b).GetNoDataValue() for b in bands]


def uses_dataset_mask(ds, band: int) -> bool:
    """True when a per-dataset mask (``.msk``, internal mask) flags pixels of 1-based ``band``."""
    flags = ds.GetRasterBand(band).GetMaskFlags()
    return bool(flags & gdal.GMF_PER_DATASET) and not flags & (gdal.GMF_ALL_VALID | gdal.GMF_NODATA)


# ------------------------------------------------------------------ reading
def read(ds, bands: list, xoff: int, yoff: int, xsize: int, ysize: int) -> np.ndarray:
    """Raw values ``(len(bands), ysize, xsize)`` of 1-based ``bands`` in their stored type.

    Raises:
        RuntimeError: GDAL could not read the window (its message).
    """
    gdal.PushErrorHandler("CPLQuietErrorHandler")  # per thread in GDAL
    try:
        raw = ds.ReadAsArray(xoff, yoff, xsize, ysize, band_list=list(bands))
    finally:
        gdal.PopErrorHandler()
    if raw is None:
        raise RuntimeError(gdal.GetLastErrorMsg())
    return raw.reshape(len(bands), ysize, xsize)


def read_mask(ds, band: int, xoff: int, yoff: int, xsize: int, ysize: int) -> np.ndarray:
    """The mask of 1-based ``band`` (0 = invalid) ``(ysize, xsize)``; RuntimeError when unreadable."""
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        mask = ds.GetRasterBand(band).GetMaskBand().ReadAsArray(xoff, yoff, xsize, ysize)
    finally:
        gdal.PopErrorHandler()
    if mask is None:
        raise RuntimeError(gdal.GetLastErrorMsg())
    return mask


# ------------------------------------------------------------------ writing
class _gdal_errors:  # noqa: N801 (used as a context manager)
    """Collect GDAL errors of a block instead of printing them.

    GDAL reports a failed write of cached blocks (disk full) while closing the
    dataset, where Python cannot raise; :meth:`check` raises the first one.
    """

    def __init__(self):
        self.messages = []

    def _handler(self, level, code, message):
        if level >= gdal.CE_Failure:
            self.messages.append(str(message))
            gdal.ErrorReset()  # else the bindings raise it, from a destructor too ("Exception ignored in ...")

    def __enter__(self) -> "_gdal_errors":
        gdal.PushErrorHandler(self._handler)
        return self

    def __exit__(self, *exc) -> None:
        gdal.PopErrorHandler()

    def check(self) -> None:
        if self.messages:
            raise RuntimeError(self.messages[0])


class GTiffFile:
    """A Float32 GeoTIFF being written (see :class:`~.raster.RasterWriter`, which makes it atomic).

    Every method that writes raises RuntimeError (GDAL's message) or OSError when it fails.
    """

    def __init__(self, path: str, width: int, height: int, count: int, options: dict):
        """Create ``path`` with GTiff creation ``options`` (``{"TILED": "YES", ...}``)."""
        opts = [f"{k}={v}" for k, v in options.items()]
        self._ds = None
        with _gdal_errors() as errors:
            self._ds = gdal.GetDriverByName("GTiff").Create(path, width, height, count, gdal.GDT_Float32, opts)
        if self._ds is None:  # GDAL without exceptions: None and the reason in the handler
            raise RuntimeError(errors.messages[0] if errors.messages else "GDAL could not create it")
        self.count = count

    def set_georef(self, geotransform: Optional[tuple], projection: str, gcps=(), gcp_projection: str = "",
                   rpc: Optional[dict] = None) -> None:
        """Geotransform and CRS, else ground control points (:class:`~.raster_meta.GCP`); an RPC domain."""
        ds = self._ds
        if geotransform is not None:
            ds.SetGeoTransform([float(v) for v in geotransform])
        if projection:
            ds.SetProjection(projection)
        if gcps and geotransform is None:  # georeferenced by ground control points
            points = [GCP(*g) for g in gcps]
            ds.SetGCPs([gdal.GCP(g.x, g.y, g.z, g.pixel, g.line, g.info, g.id) for g in points],
                       gcp_projection or projection or "")
        if rpc:
            ds.SetMetadata(dict(rpc), "RPC")

    def set_metadata(self, envi: dict, band_items: list, nodata: float, band_names=None) -> None:
        """The ENVI domain, each band's items, nodata and description (``band_names``, or None)."""
        if envi:
            self._ds.SetMetadata(envi, "ENVI")
        for i in range(self.count):
            band = self._ds.GetRasterBand(i + 1)
            band.SetNoDataValue(nodata)
            if band_names is not None:
                band.SetDescription(str(band_names[i]))
            for key, value in band_items[i].items():
                band.SetMetadataItem(key, value)

    def write(self, arr: np.ndarray, xoff: int, yoff: int) -> None:
        """Write float32 ``arr (count, h, w)`` at ``(xoff, yoff)``."""
        c, h, w = arr.shape
        with _gdal_errors() as errors:
            self._ds.WriteRaster(int(xoff), int(yoff), w, h, np.ascontiguousarray(arr).tobytes(),
                                 buf_type=gdal.GDT_Float32, band_list=list(range(1, c + 1)))
        errors.check()

    def close(self) -> None:
        """Flush and close (GTiff writes its directory here)."""
        with _gdal_errors() as errors:
            self._ds.FlushCache()
            self._ds = None
        errors.check()

    def discard(self) -> None:
        """Close without reporting (closing after a failed write fails again: nothing more to say)."""
        with _gdal_errors():
            self._ds = None
