"""Hostile inputs that used to give a result with exit 0 where none can be right (issue 16, defects 7
and 9): constant or all-zero rasters, a band scale of 0, an ENVI reflectance scale factor of 0 or
below, all-nodata abundances to score, values near the float32 limit (strict report.json, counts of
what was really written).

Helpers: hostile_util.py; fixtures: conftest.py beside this file."""

import json
import os

import numpy as np
import pytest
from hostile_util import NODATA_OUT, WL, _write_envi, cli, refused, write_scene
from osgeo import gdal

VCA = ["--method", "vca-fcls", "-p", "3", "-q"]


def _strict(text):
    """json.loads that refuses NaN / Infinity, as strict (RFC 8259) parsers do."""
    def bad(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=bad)


def _tif(path, cube, scale=None):
    b, h, w = cube.shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), w, h, b, gdal.GDT_Float32)
    for i in range(b):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(cube[i])
        if scale is not None:
            band.SetScale(scale)
    ds = None
    return path


@pytest.mark.parametrize("value", [0.0, 0.25])
def test_constant_rasters_are_refused(value, tmp_path, capsys):
    src = _tif(tmp_path / "flat.tif", np.full((20, 12, 12), value, np.float32))
    msg = "nothing to unmix"
    refused(["unmix", src, *VCA, "--out", tmp_path / "u"], capsys, msg)
    refused(["unmix", src, "--method", "vca-fcls", "-q", "--out", tmp_path / "u"], capsys, msg)  # P estimated
    refused(["extract", src, "-p", "3", "--out", tmp_path / "e.csv"], capsys, msg)
    refused(["unmix", src, "-p", "3", "-q", "--out", tmp_path / "u"], capsys, msg)  # the full engine samples first
    assert sorted(os.listdir(tmp_path)) == ["flat.tif"]


def test_two_distinct_spectra_cannot_give_three_endmembers(spectra, tmp_path, capsys):
    E = spectra[1]
    cube = np.empty((20, 10, 10), np.float32)
    cube[:, :5], cube[:, 5:] = E[0][:, None, None], E[1][:, None, None]
    src = _tif(tmp_path / "two.tif", cube)
    refused(["extract", src, "-p", "3", "--out", tmp_path / "e.csv"], capsys, "only 2 distinct spectra")
    rc, _ = cli(["extract", src, "-p", "2", "--out", tmp_path / "e.csv"], capsys)
    assert rc == 0


def test_a_band_scale_of_zero_is_refused(spectra, tmp_path, capsys):
    src = tmp_path / "s.tif"
    write_scene(src, spectra[1], 12, 12)
    ds = gdal.Open(str(src), gdal.GA_Update)
    ds.GetRasterBand(4).SetScale(0.0)
    ds = None
    refused(["unmix", src, *VCA, "--out", tmp_path / "u"], capsys, "band 4 has a scale of 0")
    refused(["count", src], capsys, "band 4 has a scale of 0")
    assert not (tmp_path / "u").exists()


@pytest.mark.parametrize("factor", ["0", "-10000", "abc", "1e-320"])
def test_a_bad_envi_reflectance_scale_factor_is_refused(factor, spectra, tmp_path, capsys):
    rng = np.random.default_rng(0)
    cube = np.einsum("pb,phw->bhw", spectra[1], rng.dirichlet(np.ones(3), size=(10, 10)).transpose(2, 0, 1))
    src = _write_envi(tmp_path / "r.img", (cube * 10000).astype(np.float32),
                      "wavelength = {" + ", ".join(f"{w:.1f}" for w in WL) + "}\n"
                      f"reflectance scale factor = {factor}\n")
    refused(["unmix", src, *VCA, "--out", tmp_path / "u"], capsys, "reflectance scale factor")
    assert not (tmp_path / "u").exists()


def test_scoring_all_nodata_abundances_is_refused(scene, tmp_path, capsys):
    empty = _tif(tmp_path / "A.tif", np.full((3, 24, 24), np.nan, np.float32))
    ref = _tif(tmp_path / "R.tif", np.full((3, 24, 24), 1 / 3, np.float32))
    refused(["evaluate", "--abundances", empty, "--reference-abundances", ref, "--json", tmp_path / "s.json"],
            capsys, "no pixel is valid")
    assert not (tmp_path / "s.json").exists()


@pytest.fixture(scope="module")
def huge_values(spectra, tmp_path_factory):
    """A scene whose first five rows are scaled up to 1e38 (finite float32, but their squares overflow)."""
    path = tmp_path_factory.mktemp("huge") / "s.tif"
    write_scene(path, spectra[1], 48, 48, seed=1)
    ds = gdal.Open(str(path), gdal.GA_Update)
    a = ds.ReadAsArray()
    a[:, :5] *= 1e38 / a.max()
    for b in range(a.shape[0]):
        ds.GetRasterBand(b + 1).WriteArray(a[b])
    ds = None
    return path


def _written(path):
    A = gdal.Open(str(path)).ReadAsArray()
    return int((A[0] != NODATA_OUT).sum())


def test_report_is_strict_json_and_counts_what_was_written(huge_values, model, tmp_path, capsys):
    out = tmp_path / "u"
    rc, err = cli(["unmix", huge_values, *VCA, "--residual", "--out", out], capsys)
    assert rc == 0, err
    report = _strict((out / "report.json").read_text())
    assert report["valid_pixels"] == _written(out / "abundances.tif")
    out = tmp_path / "a"
    rc, err = cli(["apply", huge_values, "--model", model, "--out", out, "-q"], capsys)
    if rc == 0:  # pixels without a finite result are nodata, and not counted as valid
        report = _strict((out / "report.json").read_text())
        assert report["valid_pixels"] == _written(out / "abundances.tif") > 0
        assert report["unsolved_pixels"] == 48 * 48 - report["valid_pixels"]
    else:
        assert rc == 2 and len(err) == 1 and "finite result" in err[0], err
        assert not out.exists()
