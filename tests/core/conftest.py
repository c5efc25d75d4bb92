"""Fixtures for the core tier (no QGIS)."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_DATA = os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))
for _p in (ROOT, os.path.join(ROOT, "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)


@pytest.fixture(scope="session")
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("shared data folder not available")
    return SHARED_DATA


@pytest.fixture(params=["gdal", "rasterio"])
def raster_backend(request, monkeypatch):
    """Run a test once per raster backend (core/io/gdal_backend.py, core/io/rasterio_backend.py)."""
    monkeypatch.setenv("DIFFUNMIX_RASTER_BACKEND", request.param)
    return request.param
