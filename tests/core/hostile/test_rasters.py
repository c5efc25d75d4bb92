"""Hostile inputs: degenerate rasters (1×1, single rows and columns, ±Inf, constant, truncated, one or two bands,
all nodata, no wavelengths).

Helpers: hostile_util.py; fixtures: conftest.py beside this file."""

import json
import os

import numpy as np
import pytest
from hostile_util import OUTPUTS, WL, _armse, abundances, check_abundances, cli, main, module, refused, write_scene
from osgeo import gdal


def test_one_pixel_raster(spectra, tmp_path, capsys):
    names, E = spectra
    path = tmp_path / "one.tif"
    A = write_scene(path, E, 1, 1, seed=2)
    out = tmp_path / "out"
    for p, match in (("3", "only 1 valid pixel(s), fewer than the 3 endmembers"),
                     ("0", "HySime needs more valid pixels (1) than bands (20) to estimate the number of endmembers")):
        proc = module("unmix", path, "-p", p, "--out", out, "--method", "vca-fcls", "-q")
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("error: ") and match in proc.stderr, proc.stderr
    assert not os.path.exists(out)  # a failed run removes the folder it created
    # with given endmembers the one pixel is unmixed exactly
    e_csv = tmp_path / "E.csv"
    np.savetxt(e_csv, np.column_stack([WL, E.T]), delimiter=",", header="wavelength_nm," + ",".join(names),
               comments="")
    rc, err = cli(["fcls", path, "--endmembers-csv", e_csv, "--out", tmp_path / "A.tif"], capsys)
    assert rc == 0, err
    np.testing.assert_allclose(check_abundances(tmp_path / "A.tif", 1, 1), A, atol=1e-4)


def test_one_pixel_raster_full_engine(spectra, model, tmp_path, capsys, tiny_engine):
    path = tmp_path / "one.tif"
    write_scene(path, spectra[1], 1, 1, seed=2)
    refused(["unmix", path, "-p", "3", "--out", tmp_path / "fit", "--quality", "fast", "-q"], capsys,
            "only 1 valid pixel(s), fewer than the 3 endmembers")
    assert not os.path.exists(tmp_path / "fit")  # a failed run removes the folder it created
    rc, err = cli(["unmix", path, "--model", model, "--out", tmp_path / "applied", "-q"], capsys)
    assert rc == 0, err
    check_abundances(tmp_path / "applied" / "abundances.tif", 1, 1)


def test_single_row_and_single_column_rasters_vca_fcls(spectra, tmp_path, capsys):
    E = spectra[1]
    row, col = tmp_path / "row.tif", tmp_path / "col.tif"
    A_row = write_scene(row, E, 1, 5000, seed=3)
    A_col = write_scene(col, E, 5000, 1, seed=4)
    proc = module("unmix", row, "-p", "3", "--out", tmp_path / "r", "--method", "vca-fcls", "-q")
    assert proc.returncode == 0, proc.stderr
    rc, err = cli(["unmix", col, "-p", "3", "--out", tmp_path / "c", "--method", "vca-fcls", "-q"], capsys)
    assert rc == 0, err
    for out, A, (h, w) in ((tmp_path / "r", A_row, (1, 5000)), (tmp_path / "c", A_col, (5000, 1))):
        assert sorted(os.listdir(out)) == OUTPUTS
        est = check_abundances(out / "abundances.tif", h, w)
        assert _armse(A, est) < 1e-3  # noise-free with pure pixels: exact


def test_single_row_and_single_column_rasters_full_engine(spectra, model, tmp_path, capsys, tiny_engine):
    E = spectra[1]
    row, col = tmp_path / "row.tif", tmp_path / "col.tif"
    write_scene(row, E, 1, 5000, seed=3)
    write_scene(col, E, 5000, 1, seed=4)
    runs = [(row, (1, 5000), ["-p", "3", "--quality", "fast"]), (col, (5000, 1), ["--model", model])]
    for i, (path, (h, w), extra) in enumerate(runs):
        out = tmp_path / f"o{i}"
        rc, err = cli(["unmix", path, "--out", out, "-q", *extra], capsys)
        assert rc == 0, err
        assert sorted(os.listdir(out)) == OUTPUTS
        check_abundances(out / "abundances.tif", h, w)


def test_infinite_values_are_treated_as_nodata(spectra, model, tmp_path, capsys):
    names, E = spectra
    path = tmp_path / "inf.tif"
    write_scene(path, E, 12, 12, seed=5)
    ds = gdal.Open(str(path), gdal.GA_Update)
    band = ds.GetRasterBand(4).ReadAsArray()
    band[0, 5] = np.inf
    ds.GetRasterBand(4).WriteArray(band)
    for b in range(20):  # -inf in every band of one pixel
        arr = ds.GetRasterBand(b + 1).ReadAsArray()
        arr[7, 2] = -np.inf
        ds.GetRasterBand(b + 1).WriteArray(arr)
    ds = None
    invalid = np.zeros((12, 12), bool)
    invalid[0, 5] = invalid[7, 2] = True
    e_csv = tmp_path / "E.csv"
    np.savetxt(e_csv, np.column_stack([WL, E.T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    runs = {"vca-fcls": ["unmix", path, "-p", "3", "--out", tmp_path / "v", "--method", "vca-fcls", "-q"],
            "model": ["unmix", path, "--model", model, "--out", tmp_path / "m", "-q"],
            "fcls": ["fcls", path, "--endmembers-csv", e_csv, "--out", tmp_path / "f.tif"]}
    for name, args in runs.items():
        rc, err = cli(args, capsys)
        assert rc == 0, (name, err)
    for out in (tmp_path / "v" / "abundances.tif", tmp_path / "m" / "abundances.tif", tmp_path / "f.tif"):
        check_abundances(out, 12, 12, invalid)
    report = json.load(open(tmp_path / "v" / "report.json"))
    assert report["valid_pixels"] == 12 * 12 - 2


@pytest.mark.timeout(180)
@pytest.mark.parametrize("value, full_engine", [(0.0, False), (0.25, True)])
def test_constant_image_gives_a_result_or_a_clear_error(tmp_path, capsys, tiny_engine, value, full_engine):
    path = tmp_path / "const.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 16, 16, 20, gdal.GDT_Float32)
    for b in range(20):
        ds.GetRasterBand(b + 1).Fill(value)
    ds = None
    runs = [["-p", "3", "--method", "vca-fcls"], ["-p", "0", "--method", "vca-fcls"]]
    if full_engine:
        runs.append(["-p", "3", "--quality", "fast"])
    for i, extra in enumerate(runs):
        out = tmp_path / f"o{i}"
        rc, err = cli(["unmix", path, "--out", out, "-q", *extra], capsys)
        if rc == 0:
            check_abundances(out / "abundances.tif", 16, 16)
            E = np.loadtxt(out / "endmembers.csv", delimiter=",", skiprows=1)
            assert np.all(np.isfinite(E))
        else:
            assert rc == 2 and len(err) == 1 and err[0].startswith("error:"), err
            assert not os.path.exists(out)  # a failed run removes the folder it created


def test_truncated_raster_is_refused_with_one_line(spectra, tmp_path, capsys, raster_backend):
    path = tmp_path / "scene.tif"
    write_scene(path, spectra[1], 64, 64, seed=9)
    data = path.read_bytes()
    cut = tmp_path / "cut.tif"  # a broken download: the header is there, half the strips are not
    cut.write_bytes(data[: len(data) // 2])
    e_csv = tmp_path / "E.csv"
    np.savetxt(e_csv, np.column_stack([WL, spectra[1].T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    out = tmp_path / "o"
    for args in (["unmix", cut, "-p", "3", "--out", out, "--method", "vca-fcls", "-q"],
                 ["fcls", cut, "--endmembers-csv", e_csv, "--out", out / "A.tif"], ["count", cut]):
        line = refused(args, capsys, f"cannot read {cut}: the file is truncated or corrupted")
        assert line.count(str(cut)) == 1
    assert not os.path.exists(out)  # a failed run removes the folder it created


def test_one_band_raster_is_refused_by_every_command(spectra, tmp_path, capsys, tiny_engine):
    from testutil import make_mixture_raster

    path = tmp_path / "one_band.tif"
    make_mixture_raster(path, spectra[1][:, :1], abundances(8, 8))
    e_csv = tmp_path / "E.csv"
    np.savetxt(e_csv, np.column_stack([WL, spectra[1].T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    for args in (["unmix", path, "-p", "2", "--out", tmp_path / "o", "--quality", "fast", "-q"],
                 ["fcls", path, "--endmembers-csv", e_csv, "--out", tmp_path / "o" / "A.tif"],
                 ["count", path], ["extract", path, "-p", "2", "--out", tmp_path / "o" / "E.csv"],
                 ["train", path, "-p", "2", "--out", tmp_path / "o" / "m.pt", "--quality", "fast", "-q"]):
        refused(args, capsys, "input raster has 1 band")
    assert not (tmp_path / "o").exists() or os.listdir(tmp_path / "o") == []


def test_all_nodata_raster_is_refused_by_every_command(spectra, model, tmp_path, capsys, tiny_engine):
    from testutil import make_mixture_raster

    path = tmp_path / "nodata.tif"
    make_mixture_raster(path, np.full((3, 20), -5.0), np.full((3, 10, 10), 1 / 3), nodata=-5.0,
                        wavelengths=WL)
    e_csv = tmp_path / "E.csv"
    np.savetxt(e_csv, np.column_stack([WL, spectra[1].T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    out = tmp_path / "o"
    for args in (["unmix", path, "-p", "3", "--out", out, "--quality", "fast", "-q"],
                 ["unmix", path, "--model", model, "--out", out, "-q"],  # a model used to write an empty result
                 ["fcls", path, "--endmembers-csv", e_csv, "--out", out / "A.tif"],
                 ["count", path]):
        refused(args, capsys, "input raster has no valid pixels (all nodata or NaN)")
    assert not os.path.exists(out)  # a failed run removes the folder it created


def test_no_valid_pixel_names_the_band_that_is_empty_everywhere(spectra, tmp_path, capsys):
    path = tmp_path / "gap.tif"
    write_scene(path, spectra[1], 12, 12, nodata=-9999.0)
    ds = gdal.Open(str(path), gdal.GA_Update)
    ds.GetRasterBand(7).Fill(-9999.0)  # a band of nodata (e.g. a water-vapour band, not flagged in a bbl)
    ds = None
    line = refused(["unmix", path, "-p", "3", "--method", "vca-fcls", "--out", tmp_path / "o", "-q"], capsys,
                   "input raster has no valid pixels")
    assert "band(s) 7 hold no valid value anywhere" in line
    assert main(["unmix", str(path), "-p", "3", "--method", "vca-fcls", "--bands", "1-6,8-20",
                 "--out", str(tmp_path / "o"), "-q"]) == 0


def test_two_bands_are_refused_with_the_reason(spectra, tmp_path, capsys):
    path = tmp_path / "s.tif"
    write_scene(path, spectra[1], 6, 5)
    refused(["unmix", path, "--bands", "1,2", "--method", "vca-fcls", "--out", tmp_path / "o", "-q"], capsys,
            "only 2 usable band(s) selected; unmixing needs at least 3")


def test_apply_without_wavelengths_checks_the_band_numbers(spectra, model, tmp_path, capsys):
    names, E = spectra
    wide = np.concatenate([E, E[:, :5]], axis=1)  # 25 bands, no wavelengths
    path = tmp_path / "nowl.tif"
    from testutil import make_mixture_raster

    make_mixture_raster(path, wide, abundances(8, 8))
    assert main(["apply", str(path), "--model", model, "--bands", "1-20", "--out", str(tmp_path / "ok"), "-q"]) == 0
    capsys.readouterr()
    refused(["apply", path, "--model", model, "--bands", "6-25", "--out", tmp_path / "no", "-q"], capsys,
            "was trained on bands 1-20, this selection is bands 6-25")
