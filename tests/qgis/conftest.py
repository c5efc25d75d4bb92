"""Fixtures for the QGIS tier: a real QgsApplication (pytest-qgis), the plugin
loaded as the ``diffunmix`` package, and small synthetic rasters with a known truth.
"""

import numpy as np
import pytest

GEOTRANSFORM = (500000.0, 30.0, 0.0, 5400000.0, 0.0, -30.0)
EPSG = 32633
NODATA = -9999.0


def endmember_spectra(n_bands: int = 50) -> np.ndarray:
    """Three smooth, well separated reflectance spectra. Returns E (3, B)."""
    x = np.linspace(0.0, 1.0, n_bands)

    def bump(center, width):
        return np.exp(-0.5 * ((x - center) / width) ** 2)

    return np.stack([
        0.08 + 0.55 * bump(0.25, 0.12),              # "vegetation"-like peak
        0.55 - 0.35 * bump(0.55, 0.20),              # broad absorption
        0.10 + 0.30 * x + 0.35 * bump(0.85, 0.07),   # rising with a late feature
    ])


def write_geotiff(path, cube, nodata=None, gt=GEOTRANSFORM, epsg=EPSG):
    """Write ``cube`` (B, H, W) as a Float32 GeoTIFF with GDAL."""
    from osgeo import gdal, osr

    B, H, W = cube.shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), W, H, B, gdal.GDT_Float32)
    ds.SetGeoTransform(gt)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(B):
        band = ds.GetRasterBand(b + 1)
        band.WriteArray(cube[b].astype(np.float32))
        if nodata is not None:
            band.SetNoDataValue(nodata)
    ds.FlushCache()
    ds = None
    return str(path)


@pytest.fixture(scope="session")
def mixture_scene(tmp_path_factory):
    """32×32×50 linear mixture of 3 endmembers with Dirichlet abundances.

    A 2×2 corner block is nodata in every band. Returns a dict with
    ``path``, ``E`` (3, B), ``A`` (3, H, W), ``valid`` (H, W) bool.
    """
    rng = np.random.default_rng(42)
    E = endmember_spectra(50)
    H = W = 32
    A = rng.dirichlet([0.4, 0.4, 0.4], size=H * W).T.reshape(3, H, W)
    Y = np.einsum("pb,phw->bhw", E, A)
    Y += rng.normal(0.0, 0.002, Y.shape)  # ≈ 45 dB SNR
    valid = np.ones((H, W), bool)
    valid[-2:, -2:] = False
    Y[:, ~valid] = NODATA
    folder = tmp_path_factory.mktemp("scene")
    path = write_geotiff(folder / "scene.tif", Y, nodata=NODATA)
    return {"path": path, "E": E, "A": A, "valid": valid, "geotransform": GEOTRANSFORM,
            "epsg": EPSG, "nodata": NODATA}


@pytest.fixture(scope="session")
def geotiff_writer():
    """:func:`write_geotiff`, for tests that build their own rasters."""
    return write_geotiff


@pytest.fixture(scope="session")
def spectra():
    """:func:`endmember_spectra`: ``spectra(n_bands) -> E (3, B)``."""
    return endmember_spectra


@pytest.fixture(scope="module")
def diffunmix_plugin(qgis_iface, qgis_processing):
    """The plugin, loaded as QGIS loads it; its provider registered for the module."""
    import diffunmix

    plugin = diffunmix.classFactory(qgis_iface)
    plugin.initProcessing()
    yield plugin
    plugin.unload()


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory):
    """16×16×20 mixture of 3 spectra with wavelengths (the train/apply tests' scene).

    Returns a dict with ``path``, ``E`` (3, 20), ``A`` (3, 16, 16), ``wavelengths``.
    """
    from testutil import make_mixture_raster

    rng = np.random.default_rng(5)
    wl = np.linspace(450.0, 2400.0, 20)
    E = endmember_spectra(20)
    A = rng.dirichlet([0.5, 0.5, 0.5], size=16 * 16).T.reshape(3, 16, 16)
    folder = tmp_path_factory.mktemp("tiny")
    path = folder / "tiny.tif"
    make_mixture_raster(path, E, A, wavelengths=wl, gt=GEOTRANSFORM)
    return {"path": str(path), "E": E, "A": A, "wavelengths": wl}


@pytest.fixture(scope="session")
def library_scene(tmp_path_factory):
    """A 40×48 scene synthesized from the bundled USGS library (3 endmembers, 40 dB, near-pure
    pixels), with its truth: ``paths`` (scene, abundances, endmembers) and ``names``."""
    from diffunmix.core.run.tasks import synthesize

    folder = tmp_path_factory.mktemp("library-scene")
    return synthesize(str(folder), height=40, width=48, p=3, family="mosaic", purity=0.8, snr_db=40.0, seed=3)

