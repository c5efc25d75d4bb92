"""End to end: the real QGIS command line (``qgis_process``) runs ``diffunmix:unmix``.

The plugin is found through ``QGIS_PLUGINPATH`` (a folder with a ``diffunmix``
symlink to the repository), enabled in a throw-away profile, and reaches torch
through ``PYTHONPATH``. Debian's ``qgis_process`` wrapper is broken, so the
binary is called directly.
"""

import csv
import json
import os

import numpy as np
import pytest
from testutil import QGIS_PROCESS, qgis_process

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.access(QGIS_PROCESS, os.X_OK), reason=f"{QGIS_PROCESS} not installed"),
]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """24×24×40 mixture of 3 spectra with wavelengths; returns (path, E, A)."""
    from testutil import make_mixture_raster

    rng = np.random.default_rng(3)
    x = np.linspace(0.0, 1.0, 40)
    E = np.stack([0.1 + 0.5 * np.exp(-0.5 * ((x - 0.3) / 0.1) ** 2),
                  0.6 - 0.4 * x,
                  0.1 + 0.3 * x + 0.3 * np.exp(-0.5 * ((x - 0.8) / 0.06) ** 2)])
    A = rng.dirichlet([0.4, 0.4, 0.4], size=24 * 24).T.reshape(3, 24, 24)
    path = tmp_path_factory.mktemp("e2e-scene") / "scene.tif"
    make_mixture_raster(path, E, A, wavelengths=np.linspace(450.0, 2400.0, 40))
    return str(path), E, A


def test_algorithm_is_listed_with_its_help(qgis_env):
    proc = qgis_process(qgis_env, "help", "diffunmix:unmix")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("INPUT", "ENDMEMBERS", "METHOD", "LIBRARY", "DEVICE", "SEED", "OUTPUT", "OUTPUT_ENDMEMBERS"):
        assert f"{name}:" in proc.stdout, name


def test_run_vca_fcls_writes_outputs(qgis_env, scene, tmp_path):
    path, E, A = scene
    out = tmp_path / "out"
    abundances, endmembers = out / "abundances.tif", out / "endmembers.csv"
    proc = qgis_process(
        qgis_env, "--json", "run", "diffunmix:unmix", "--",
        f"INPUT={path}", "ENDMEMBERS=3", "METHOD=1", f"OUTPUT={abundances}", f"OUTPUT_ENDMEMBERS={endmembers}",
        f"OUTPUT_REPORT={out / 'report.json'}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(proc.stdout)["results"]
    assert results["ENDMEMBER_COUNT"] == 3
    assert results["OUTPUT"] == str(abundances) and results["OUTPUT_ENDMEMBERS"] == str(endmembers)
    assert sorted(os.listdir(out)) == ["abundances.tif", "endmembers.csv", "report.json"]

    import rasterio

    with rasterio.open(abundances) as ds:
        assert ds.count == 3 and ds.crs.to_epsg() == 32633
        assert ds.transform.to_gdal() == pytest.approx((300000.0, 30.0, 0.0, 5000000.0, 0.0, -30.0))
        assert list(ds.descriptions) == results["ENDMEMBER_NAMES"].split(",")
        est = ds.read().reshape(3, -1)
    ref = A.reshape(3, -1)
    # best one-to-one match by correlation, then abundance RMSE
    corr = np.corrcoef(ref, est)[:3, 3:]
    perm = [int(np.argmax(corr[i])) for i in range(3)]
    assert sorted(perm) == [0, 1, 2]
    assert np.sqrt(np.mean((ref - est[perm]) ** 2)) < 0.05

    with open(endmembers, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["wavelength_nm", *results["ENDMEMBER_NAMES"].split(",")]
    assert len(rows) == 1 + 40
    assert float(rows[1][0]) == pytest.approx(450.0)


@pytest.mark.parametrize("case", ["too-many-endmembers", "missing-input", "missing-output"])
def test_bad_input_exits_non_zero_and_writes_nothing(qgis_env, scene, tmp_path, case):
    path = scene[0]
    out = tmp_path / "out"
    args = {"INPUT": path, "ENDMEMBERS": "3", "METHOD": "1",
            "OUTPUT": str(out / "a.tif"), "OUTPUT_ENDMEMBERS": str(out / "e.csv")}
    if case == "too-many-endmembers":
        args["ENDMEMBERS"] = "40"
    elif case == "missing-input":
        args["INPUT"] = str(tmp_path / "does_not_exist.tif")
    else:
        del args["OUTPUT_ENDMEMBERS"]
    proc = qgis_process(qgis_env, "run", "diffunmix:unmix", "--", *(f"{k}={v}" for k, v in args.items()))
    assert proc.returncode != 0
    assert "ERROR" in proc.stdout + proc.stderr
    if case == "too-many-endmembers":
        assert "endmembers" in proc.stderr
    assert not out.exists() or os.listdir(out) == []


def test_provider_lists_the_algorithm(qgis_env):
    proc = qgis_process(qgis_env, "list")
    assert proc.returncode == 0, proc.stderr
    assert "diffunmix:unmix" in proc.stdout
