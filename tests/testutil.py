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


def smooth_spectra(p: int, b: int, seed: int) -> np.ndarray:
    """Random smooth positive spectra ``(p, b)`` in roughly [0, 1] (correlated, so E Eᵀ is ill-conditioned
    as with real data)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, b)
    E = np.zeros((p, b))
    for i in range(p):
        for _ in range(4):
            c, w, h = rng.uniform(0, 1), rng.uniform(0.05, 0.3), rng.uniform(0.1, 0.5)
            E[i] += h * np.exp(-0.5 * ((t - c) / w) ** 2)
        E[i] += rng.uniform(0.05, 0.3)
    return E


def mixed_pixels(E: np.ndarray, n: int, seed: int, noise: float = 0.02) -> np.ndarray:
    """Dirichlet mixtures, a third pushed outside the simplex, some off the sum-to-one plane, plus noise."""
    rng = np.random.default_rng(seed)
    p = E.shape[0]
    A = rng.dirichlet(np.ones(p), n)
    A[: n // 3] = rng.normal(0.0, 1.0, (n // 3, p))  # outside the simplex / cone
    A[n // 3 : n // 2] *= rng.uniform(0.5, 1.5, (n // 2 - n // 3, 1))  # off the sum-to-one plane
    return A @ E + rng.normal(0.0, noise, (n, E.shape[1]))


def check_refuses_bad_shapes(solve, as_input=np.asarray):
    """An FCLS-like ``solve(Y, E)`` refuses a band-count mismatch and non-finite endmembers
    with UnmixError (``as_input`` turns the numpy pixels into what ``solve`` takes)."""
    import pytest

    from core.errors import UnmixError

    E = smooth_spectra(3, 20, seed=0)
    with pytest.raises(UnmixError):
        solve(as_input(np.ones((5, 21))), E)
    with pytest.raises(UnmixError):
        solve(as_input(np.ones((5, 20))), np.where(E > 0.5, np.nan, E))
    return E
