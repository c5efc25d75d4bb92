"""The engine CLI end to end on real files: outputs, contract and bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import rasterio

from core.classical.metrics import armse, match_endmembers
from core.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    out = tmp_path_factory.mktemp("scene")
    assert main(["synth", "--out", str(out), "--height", "40", "--width", "48", "--endmembers", "3",
                 "--snr", "40", "--purity", "0.8", "--seed", "3"]) == 0
    return out


def _listing(folder):
    return sorted(os.listdir(folder))


def test_unmix_vca_fcls_writes_contract_outputs(scene, tmp_path):
    out = tmp_path / "res"
    rc = main(["unmix", str(scene / "scene.tif"), "--endmembers", "3", "--out", str(out),
               "--method", "vca-fcls", "--quiet"])
    assert rc == 0
    assert _listing(out) == ["abundances.tif", "endmembers.csv", "endmembers.png", "report.json"]
    with rasterio.open(scene / "scene.tif") as src, rasterio.open(out / "abundances.tif") as dst:
        assert dst.count == 3
        assert dst.transform == src.transform
        assert dst.crs == src.crs
        assert dst.nodata == -9999.0
        assert dst.descriptions == ("EM1", "EM2", "EM3")
        A = dst.read()
    with rasterio.open(scene / "truth_abundances.tif") as t:
        A_true = t.read()
    assert np.allclose(A.sum(0), 1.0, atol=1e-4)
    assert A.min() >= -1e-6
    header = open(out / "endmembers.csv").readline().strip().split(",")
    assert header == ["wavelength_nm", "EM1", "EM2", "EM3"]
    E_est = np.loadtxt(out / "endmembers.csv", delimiter=",", skiprows=1)[:, 1:].T
    E_true = np.loadtxt(scene / "truth_endmembers.csv", delimiter=",", skiprows=1)[:, 1:].T
    perm = match_endmembers(E_true, E_est)
    err = armse(A_true.reshape(3, -1).T, A[perm].reshape(3, -1).T)
    assert err < 0.06, err  # 40 dB, near-pure pixels present
    report = json.load(open(out / "report.json"))
    assert report["endmember_count"] == 3 and report["method"] == "vca-fcls"


def test_unmix_estimates_count_and_runs_as_module(scene, tmp_path):
    out = tmp_path / "res"
    proc = subprocess.run([sys.executable, "-m", "core", "unmix", str(scene / "scene.tif"),
                           "--endmembers", "0", "--out", str(out), "--method", "vca-fcls", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.load(open(out / "report.json"))
    assert report["endmember_count_estimated"] == 3


def test_nodata_and_nan_pixels_are_written_as_nodata(tmp_path):
    from testutil import make_mixture_raster

    rng = np.random.default_rng(0)
    E = rng.uniform(0.05, 0.9, (3, 30))
    A = rng.dirichlet(np.ones(3), size=(20, 24)).transpose(2, 0, 1)
    path = tmp_path / "nd.tif"
    make_mixture_raster(path, E, A, nodata=-1.0)
    from osgeo import gdal

    ds = gdal.Open(str(path), gdal.GA_Update)
    b1 = ds.GetRasterBand(1).ReadAsArray()
    b1[0, :5] = -1.0
    ds.GetRasterBand(1).WriteArray(b1)
    b2 = ds.GetRasterBand(2).ReadAsArray()
    b2[5, 5] = np.nan
    ds.GetRasterBand(2).WriteArray(b2)
    ds = None
    out = tmp_path / "o"
    assert main(["unmix", str(path), "-p", "3", "--out", str(out), "--method", "vca-fcls", "-q"]) == 0
    with rasterio.open(out / "abundances.tif") as r:
        A_out = r.read()
    assert np.all(A_out[:, 0, :5] == -9999.0)
    assert np.all(A_out[:, 5, 5] == -9999.0)
    valid = A_out[0] != -9999.0
    assert valid.sum() == 20 * 24 - 6
    assert np.allclose(A_out[:, valid].sum(0), 1, atol=1e-4)


def test_fcls_extract_count_evaluate_commands(scene, tmp_path, capsys):
    e_csv = tmp_path / "E.csv"
    assert main(["count", str(scene / "scene.tif")]) == 0
    assert capsys.readouterr().out.strip() == "3"
    assert main(["extract", str(scene / "scene.tif"), "-p", "3", "--out", str(e_csv)]) == 0
    a_tif = tmp_path / "A.tif"
    assert main(["fcls", str(scene / "scene.tif"), "--endmembers-csv", str(e_csv), "--out", str(a_tif)]) == 0
    capsys.readouterr()
    js = tmp_path / "s.json"
    assert main(["evaluate", "--abundances", str(a_tif), "--reference-abundances",
                 str(scene / "truth_abundances.tif"), "--endmembers", str(e_csv),
                 "--reference-endmembers", str(scene / "truth_endmembers.csv"), "--input",
                 str(scene / "scene.tif"), "--json", str(js)]) == 0
    scores = json.load(open(js))
    assert scores["armse"] < 0.06
    assert scores["sad_mean_rad"] < 0.05


def _bad(args, capsys):
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    lines = err.splitlines()
    # progress lines may precede it; the error itself is exactly one line, the last
    assert lines[-1].startswith("error:") and sum(ln.startswith("error:") for ln in lines) == 1, err
    return lines[-1]


def test_bad_inputs_exit_2_with_one_line_and_no_outputs(scene, tmp_path, capsys):
    from testutil import make_mixture_raster

    out = tmp_path / "out"
    assert "not found" in _bad(["unmix", str(tmp_path / "missing.tif"), "--out", str(out)], capsys)
    txt = tmp_path / "notes.txt"
    txt.write_text("not a raster\n")
    assert "raster" in _bad(["unmix", str(txt), "--out", str(out)], capsys)
    one = tmp_path / "one.tif"
    make_mixture_raster(one, np.ones((2, 1)), np.full((2, 8, 8), 0.5))
    assert "band" in _bad(["unmix", str(one), "--out", str(out), "--method", "vca-fcls"], capsys)
    for p in ("1", "224", "400"):
        _bad(["unmix", str(scene / "scene.tif"), "-p", p, "--out", str(out), "--method", "vca-fcls"], capsys)
    nod = tmp_path / "nodata.tif"
    make_mixture_raster(nod, np.full((2, 5), -5.0), np.full((2, 6, 6), 0.5), nodata=-5.0)
    assert "no valid pixels" in _bad(["unmix", str(nod), "-p", "2", "--out", str(out),
                                      "--method", "vca-fcls"], capsys)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert "output" in _bad(["unmix", str(scene / "scene.tif"), "-p", "3", "--out",
                             str(blocker / "sub"), "--method", "vca-fcls"], capsys)
    assert not out.exists() or _listing(out) == []
    _bad(["unmix", str(scene / "scene.tif"), "--bogus-option"], capsys)


def test_failed_run_keeps_existing_outputs(scene, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["unmix", str(scene / "scene.tif"), "-p", "3", "--out", str(out), "--method", "vca-fcls",
                 "-q"]) == 0
    before = {n: (out / n).read_bytes() for n in _listing(out)}
    _bad(["unmix", str(scene / "scene.tif"), "-p", "500", "--out", str(out), "--method", "vca-fcls"], capsys)
    assert {n: (out / n).read_bytes() for n in _listing(out)} == before


def test_samson_unmix_writes_all_outputs(shared_data, tmp_path):
    from benchmarks.datasets import samson_to_geotiff

    paths = samson_to_geotiff(shared_data, str(tmp_path / "samson"))
    out = tmp_path / "res"
    assert main(["unmix", paths["scene"], "-p", "3", "--out", str(out), "--method", "vca-fcls", "-q"]) == 0
    assert _listing(out) == ["abundances.tif", "endmembers.csv", "endmembers.png", "report.json"]
    with rasterio.open(out / "abundances.tif") as r:
        assert r.count == 3 and r.width == 95 and r.height == 95
    rows = open(out / "endmembers.csv").read().strip().splitlines()
    assert len(rows) == 157 and rows[0].startswith("wavelength_nm")


def test_extract_robust_beats_vca_on_a_noisy_mixed_scene(tmp_path, capsys):
    """``extract --method robust`` (the engine's start) on a highly mixed 20 dB scene, where
    VCA's extreme pixels are noisy mixtures; same CSV contract as VCA."""
    from core.classical.metrics import match_endmembers, sad

    out = tmp_path / "s"
    assert main(["synth", "--out", str(out), "--height", "48", "--width", "48", "--endmembers", "3",
                 "--snr", "20", "--purity", "0.4", "--family", "legendre", "--seed", "5"]) == 0
    truth = np.loadtxt(out / "truth_endmembers.csv", delimiter=",", skiprows=1)[:, 1:].T
    err = {}
    for method in ("vca", "robust"):
        csv = tmp_path / f"{method}.csv"
        assert main(["extract", str(out / "scene.tif"), "-p", "3", "--out", str(csv), "--method", method]) == 0
        printed = capsys.readouterr().out
        assert ("mixing model: linear" in printed) == (method == "robust"), printed
        with open(csv) as fh:
            assert fh.readline().strip() == "wavelength_nm,EM1,EM2,EM3"
        E = np.loadtxt(csv, delimiter=",", skiprows=1)[:, 1:].T
        err[method] = float(sad(truth, E[match_endmembers(truth, E)]).mean())
    assert err["robust"] < 0.5 * err["vca"], err
