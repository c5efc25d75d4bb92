"""Hostile inputs: malformed spectral libraries, wavelengths in other units or orders, endmember CSVs and ENVI
headers of unusual shape.

Helpers: hostile_util.py; fixtures: conftest.py beside this file."""

import json
import os

import numpy as np
import pytest
from hostile_util import (
    WL,
    _write_envi,
    bundled_library_path,
    check_abundances,
    cli,
    read_cube,
    read_library,
    refused,
    write_scene,
)
from osgeo import gdal


@pytest.mark.parametrize("text, match", [
    ("name,a,b\n500,0.1,0.2\n600,0.1,0.2\n", "no wavelength column"),
    ("wavelength,a,b\n500,0.1,0.2\n600,0.1\n", "line 3: 2 values, the header has 3"),
    ("wavelength,a\n500,0.1\n600,abc\n", "line 3: non-numeric value 'abc'"),
    ("wavelength,a\n500,0.1\nabc,0.2\n", "line 3: non-numeric value 'abc'"),
    ("wavelength_nm,a,b\n5000,0.1,0.2\n6000,0.3,0.4\n", "does not overlap the target wavelengths"),
    ("wavelength_nm,a,b\n400,0.1,0.2\n700,0.3,0.4\n", "covers only 15% of the target bands"),
    ("band,a,b\n1,0.1,0.2\n2,0.3,0.4\n", "has 2 bands but the raster has 20, and the library has no wavelengths"),
])
def test_malformed_library_is_refused_with_one_line(scene, tmp_path, capsys, text, match):
    lib = tmp_path / "lib.csv"
    lib.write_text(text)
    out = tmp_path / "out"
    refused(["unmix", scene[0], "-p", "3", "--library", lib, "--out", out, "--method", "vca-fcls", "-q"], capsys,
            match)
    assert not os.path.exists(out)  # a failed run removes the folder it created


def test_library_in_micrometres_names_the_endmembers_like_nanometres(scene, spectra, tmp_path, capsys):
    lib = read_library(bundled_library_path())
    um = tmp_path / "lib_um.csv"  # the same library, in µm, bands in reverse order
    rows = ["wavelength_um," + ",".join(n.replace(",", " ") for n in lib.names)]
    rows += [",".join([f"{w / 1000:.7g}", *[f"{v:.8g}" for v in lib.spectra[:, j]]])
             for j, w in reversed(list(enumerate(lib.wavelengths_nm)))]
    um.write_text("\n".join(rows) + "\n")
    names = {}
    for tag, path in (("nm", bundled_library_path()), ("um", um)):
        rc, err = cli(["unmix", scene[0], "-p", "3", "--library", path, "--out", tmp_path / tag,
                       "--method", "vca-fcls", "-q"], capsys)
        assert rc == 0, err
        names[tag] = json.load(open(tmp_path / tag / "report.json"))["endmember_names"]
    assert sorted(names["nm"]) == sorted(spectra[0]) and names["um"] == names["nm"]


def test_unsorted_wavelengths_in_micrometres_match_sorted_nanometres(spectra, tmp_path, capsys):
    names, E = spectra
    sorted_nm = tmp_path / "sorted.tif"
    write_scene(sorted_nm, E, 16, 16, seed=6)
    cube = read_cube(str(sorted_nm))[0]
    perm = np.random.default_rng(0).permutation(20)
    shuffled = _write_envi(tmp_path / "shuffled.img", cube[perm],
                           "wavelength units = Micrometers\nwavelength = {"
                           + ", ".join(f"{w / 1000:.9f}" for w in WL[perm]) + "}\n")
    results = {}
    for tag, path in (("nm", sorted_nm), ("um", shuffled.with_suffix(".hdr"))):
        rc, err = cli(["unmix", path, "-p", "3", "--library", bundled_library_path(), "--out", tmp_path / tag,
                       "--method", "vca-fcls", "-q"], capsys)
        assert rc == 0, err
        report = json.load(open(tmp_path / tag / "report.json"))
        A = check_abundances(tmp_path / tag / "abundances.tif", 16, 16)
        csv_rows = np.loadtxt(tmp_path / tag / "endmembers.csv", delimiter=",", skiprows=1)
        results[tag] = (report["endmember_names"], A, csv_rows)
    names_nm, A_nm, csv_nm = results["nm"]
    names_um, A_um, csv_um = results["um"]
    assert sorted(names_nm) == sorted(names) and sorted(names_um) == sorted(names)
    order = [names_um.index(n) for n in names_nm]
    np.testing.assert_allclose(A_um[order], A_nm, atol=1e-4)
    np.testing.assert_allclose(csv_um[:, 0], WL[perm], atol=1e-3)  # in nm, in the raster's band order
    np.testing.assert_allclose(csv_um[:, 1:][:, order], csv_nm[perm, 1:], atol=1e-4)


def test_endmember_csv_at_other_wavelengths_is_resampled_even_with_the_same_band_count(tmp_path):
    """A CSV of 20 bands, but not the raster's 20: its values are matched by wavelength, not position."""
    from core.run.tasks import read_endmember_csv

    def spectra_at(wl):  # straight lines in wavelength: interpolation reproduces them exactly
        return np.stack([0.1 + 0.0005 * (wl - 400.0), 0.9 - 0.0003 * (wl - 400.0)])

    shifted = WL + 10.0
    csv_path = tmp_path / "shifted.csv"
    np.savetxt(csv_path, np.column_stack([shifted, spectra_at(shifted).T]), delimiter=",",
               header="wavelength_nm,a,b", comments="")
    got, names = read_endmember_csv(str(csv_path), 20, WL)
    assert names == ["a", "b"]
    np.testing.assert_allclose(got[:, 1:], spectra_at(WL)[:, 1:], atol=1e-9)  # on the raster's wavelengths
    assert np.abs(got[:, 1:] - spectra_at(shifted)[:, 1:]).max() > 0.004  # not taken position by position


def test_envi_header_finds_a_data_file_of_any_extension(spectra, tmp_path):
    from core.io.raster import read_info

    src = tmp_path / "s.tif"
    write_scene(src, spectra[1], 6, 5)
    gdal.Translate(str(tmp_path / "cube.rfl"), str(src), format="ENVI")
    assert os.path.exists(tmp_path / "cube.hdr")
    info = read_info(str(tmp_path / "cube.hdr"))
    assert info.path.endswith("cube.rfl") and (info.width, info.height, info.count) == (5, 6, 20)


def test_evaluate_matches_endmembers_of_other_bands_by_wavelength(spectra, tmp_path):
    """A result without the bad bands (18 of 20) scored against a 20-band reference."""
    from core.run.tasks import evaluate_files

    names, E = spectra
    ref, est = tmp_path / "ref.csv", tmp_path / "est.csv"
    np.savetxt(ref, np.column_stack([WL, E.T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    keep = np.r_[0:8, 10:20]
    np.savetxt(est, np.column_stack([WL[keep], E[::-1, keep].T]), delimiter=",", header="wavelength_nm,x,y,z",
               comments="")
    scores = evaluate_files(endmembers=str(est), reference_endmembers=str(ref))
    assert scores["sad_mean_rad"] < 1e-6  # same spectra, found through the wavelengths (and in another order)
