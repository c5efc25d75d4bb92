"""Helpers shared by the test tiers (import as ``testutil``)."""

import numpy as np


def make_mixture_raster(path, E, A, nodata=None, gt=(300000.0, 30.0, 0.0, 5000000.0, 0.0, -30.0),
                        epsg=32633, wavelengths=None, dtype="float32", scale=None):
    """Write Y = Eᵀ A (B, H, W) as a GeoTIFF with GDAL; returns Y."""
    from osgeo import gdal, osr

    P, H, W = A.shape
    Y = np.einsum("pb,phw->bhw", E, A).astype(np.float32)
    gdt = {"float32": gdal.GDT_Float32, "int16": gdal.GDT_Int16}[dtype]
    ds = gdal.GetDriverByName("GTiff").Create(str(path), W, H, Y.shape[0], gdt)
    ds.SetGeoTransform(gt)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(Y.shape[0]):
        band = ds.GetRasterBand(b + 1)
        data = Y[b] if scale is None else np.round(Y[b] / scale)
        band.WriteArray(data)
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if scale is not None:
            band.SetScale(scale)
        if wavelengths is not None:
            band.SetMetadataItem("wavelength", str(float(wavelengths[b])))
            band.SetMetadataItem("wavelength_units", "Nanometers")
    ds.FlushCache()
    ds = None
    return Y


#: The real qgis_process binary (Debian's wrapper script passes an option the binary rejects).
QGIS_PROCESS = "/usr/bin/qgis_process.bin"


def qgis_process(env, *args, timeout=300):
    """Run ``qgis_process.bin`` with ``env`` (see the e2e ``qgis_env`` fixture); returns the CompletedProcess."""
    import subprocess

    return subprocess.run([QGIS_PROCESS, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=env["HOME"])
