"""The engine from ``pip install .[engine]`` in a venv without system site packages: the ``diffunmix``
command (rasterio backend) against the project's venv (GDAL backend) on the same inputs.

Fixtures: conftest.py beside this file (the venv), tests/core/hostile (scenes, a saved model)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hostile_util import NAMES, WL, save_model, write_scene
from osgeo import gdal, osr

from core.io.library import bundled_library_path, read_library, resample

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# the first session builds the venv (torch from the wheel on disk): longer than pytest.ini's 600 s on a busy machine
pytestmark = pytest.mark.timeout(1800)
#: one thread each, so both runs sum in the same order
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "DIFFUNMIX_READ_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def diffunmix(venv, *args, env=None):
    """The installed ``diffunmix`` command (no project folder on its path: it runs from /)."""
    return subprocess.run([os.path.join(venv, "bin", "diffunmix"), *map(str, args)], capture_output=True,
                          text=True, timeout=600, cwd="/", env={**ENV, **(env or {})})


def gdal_cli(*args):
    """``python -m core`` of the project's venv, forced onto GDAL's bindings."""
    return subprocess.run([sys.executable, "-m", "core", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=ROOT, env={**ENV, "DIFFUNMIX_RASTER_BACKEND": "gdal"})


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 24×28 GeoTIFF of three bundled-library spectra at 20 bands (GDAL writes it), and its E (3, 20)."""
    lib = resample(read_library(bundled_library_path()), WL)
    E = lib.spectra[[lib.names.index(n) for n in NAMES]]
    path = tmp_path_factory.mktemp("scene") / "scene.tif"
    write_scene(path, E, 24, 28, seed=3)
    return path, E


def _raster(path):
    """Everything the outputs carry: values, georeferencing and metadata (read with GDAL)."""
    ds = gdal.Open(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(ds.GetProjection())
    bands = [ds.GetRasterBand(i + 1) for i in range(ds.RasterCount)]
    return {"values": ds.ReadAsArray().reshape(ds.RasterCount, ds.RasterYSize, ds.RasterXSize),
            "geotransform": ds.GetGeoTransform(), "crs": srs.ExportToProj4(), "envi": ds.GetMetadata("ENVI"),
            "nodata": [b.GetNoDataValue() for b in bands], "names": [b.GetDescription() for b in bands],
            "band_md": [b.GetMetadata() for b in bands], "type": [b.DataType for b in bands],
            "tiling": ds.GetMetadata("IMAGE_STRUCTURE"), "block": bands[0].GetBlockSize()}


def assert_same_outputs(pip_out, gdal_out):
    assert sorted(os.listdir(pip_out)) == sorted(os.listdir(gdal_out))
    a, b = _raster(pip_out / "abundances.tif"), _raster(gdal_out / "abundances.tif")
    np.testing.assert_allclose(a.pop("values"), b.pop("values"), rtol=0, atol=1e-6)
    assert a == b
    assert a["geotransform"] == (300000.0, 30.0, 0.0, 5000000.0, 0.0, -30.0) and "+zone=33" in a["crs"]
    e1, e2 = (np.loadtxt(o / "endmembers.csv", delimiter=",", skiprows=1) for o in (pip_out, gdal_out))
    np.testing.assert_allclose(e1, e2, rtol=0, atol=1e-6)
    r1, r2 = (json.loads((o / "report.json").read_text()) for o in (pip_out, gdal_out))
    for key in ("endmember_names", "bands_used", "wavelengths_nm", "valid_pixels", "width", "height"):
        assert r1[key] == r2[key], key
    # float32 sums of near-zero residuals (numpy 2 wheels vs Debian's numpy): equal to 1e-5, not bit for bit
    assert r1.get("mean_reconstruction_rmse") == pytest.approx(r2.get("mean_reconstruction_rmse"), abs=1e-5)


def test_the_installed_engine_runs_without_gdal_bindings(pip_venv):
    py = os.path.join(pip_venv, "bin", "python")
    code = ("import importlib.util, diffunmix.core as c; from diffunmix.core.io.raster import backend; "
            "print(importlib.util.find_spec('osgeo') is None, backend().NAME, c.__file__)")
    out = subprocess.run([py, "-c", code], capture_output=True, text=True, cwd="/", env=ENV, check=True).stdout
    found, name, where = out.split()
    assert found == "True" and name == "rasterio" and where.startswith(pip_venv) and "site-packages" in where
    h = diffunmix(pip_venv, "--help")
    assert h.returncode == 0 and h.stdout.startswith("usage: diffunmix "), h.stdout[:200]


def test_unmix_equals_the_gdal_backend(pip_venv, scene, tmp_path):
    path, _ = scene
    args = ["unmix", path, "-p", "3", "--method", "vca-fcls", "--seed", "1", "-q"]
    r = diffunmix(pip_venv, *args, "--out", tmp_path / "pip")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    g = gdal_cli(*args, "--out", tmp_path / "gdal")
    assert g.returncode == 0, g.stderr
    assert_same_outputs(tmp_path / "pip", tmp_path / "gdal")


def test_apply_with_the_full_engine_equals_the_gdal_backend_and_evaluate_scores_it(pip_venv, scene, tmp_path):
    path, E = scene
    model = save_model(tmp_path / "model.pt", E, list(NAMES))
    args = ["apply", path, "--model", model, "--seed", "2", "--residual", "-q"]
    r = diffunmix(pip_venv, *args, "--out", tmp_path / "pip")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    g = gdal_cli(*args, "--out", tmp_path / "gdal")
    assert g.returncode == 0, g.stderr
    assert_same_outputs(tmp_path / "pip", tmp_path / "gdal")
    np.testing.assert_allclose(_raster(tmp_path / "pip" / "residual.tif")["values"],
                               _raster(tmp_path / "gdal" / "residual.tif")["values"], rtol=0, atol=1e-6)
    scores = tmp_path / "scores.json"
    ev = diffunmix(pip_venv, "evaluate", "--abundances", tmp_path / "pip" / "abundances.tif",
                   "--reference-abundances", tmp_path / "gdal" / "abundances.tif", "--input", path,
                   "--endmembers", tmp_path / "pip" / "endmembers.csv", "--json", scores)
    assert ev.returncode == 0, ev.stderr
    assert json.loads(scores.read_text())["armse"] < 1e-6


def test_apply_through_rasterio_equals_gdal_in_one_environment(scene, tmp_path):
    """The project's venv with each backend forced: the full engine's outputs agree bit for bit."""
    path, E = scene
    model = save_model(tmp_path / "model.pt", E, list(NAMES))
    for name in ("gdal", "rasterio"):
        r = subprocess.run([sys.executable, "-m", "core", "apply", str(path), "--model", model, "--seed", "2", "-q",
                            "--out", str(tmp_path / name)], capture_output=True, text=True, timeout=600, cwd=ROOT,
                           env={**ENV, "DIFFUNMIX_RASTER_BACKEND": name})
        assert r.returncode == 0 and r.stderr == "", r.stderr
    assert_same_outputs(tmp_path / "rasterio", tmp_path / "gdal")
    a, b = (_raster(tmp_path / n / "abundances.tif")["values"] for n in ("rasterio", "gdal"))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", ["missing input", "not a raster", "gdal forced", "unknown backend", "bad -p"])
def test_bad_input_exits_2_with_one_line(pip_venv, scene, tmp_path, case):
    path, env = scene[0], None
    if case == "missing input":
        path = tmp_path / "nope.tif"
    elif case == "not a raster":
        path = tmp_path / "notes.tif"
        path.write_text("not an image\n")
    elif case == "gdal forced":
        env = {"DIFFUNMIX_RASTER_BACKEND": "gdal"}
    elif case == "unknown backend":
        env = {"DIFFUNMIX_RASTER_BACKEND": "netcdf4"}
    args = ["unmix", path, "-p", "0" if case != "bad -p" else "-3", "--method", "vca-fcls", "-q",
            "--out", tmp_path / "out"]
    r = diffunmix(pip_venv, *args, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, (r.returncode, r.stderr)
    expected = {"missing input": "input raster not found", "not a raster": "not a raster GDAL can read",
                "gdal forced": "raster backend 'gdal' is not available", "unknown backend": "not a raster backend",
                "bad -p": "-p"}[case]
    assert expected in r.stderr
    assert not (tmp_path / "out").exists()  # nothing left behind
