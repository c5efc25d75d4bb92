"""Processing's SCHEDULER through ``qgis_process.bin``: a local Dask cluster started from inside
QGIS runs its workers on a Python interpreter (not a second QGIS) and gives the in-process result."""

import json
import os

import numpy as np
import pytest
from osgeo import gdal
from testutil import QGIS_PROCESS, qgis_process

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.access(QGIS_PROCESS, os.X_OK), reason=f"{QGIS_PROCESS} not installed"),
]
pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scene(qgis_env, tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene")
    proc = qgis_process(qgis_env, "--json", "run", "diffunmix:synthesize", "--", "HEIGHT=90", "WIDTH=70",
                        "ENDMEMBERS=3", "SNR=40", "SEED=2", f"OUTPUT={folder / 's.tif'}",
                        f"OUTPUT_ABUNDANCES={folder / 't.tif'}", f"OUTPUT_ENDMEMBERS={folder / 't.csv'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return folder / "s.tif"


def test_unmix_on_a_local_cluster_from_qgis(qgis_env, scene, tmp_path):
    runs = {}
    for name, extra in (("here", []), ("there", ["SCHEDULER=local:2"])):
        out = tmp_path / name
        out.mkdir()
        proc = qgis_process(qgis_env, "--json", "run", "diffunmix:unmix", "--", f"INPUT={scene}", "METHOD=1",
                            "ENDMEMBERS=3", f"OUTPUT={out / 'a.tif'}", f"OUTPUT_ENDMEMBERS={out / 'e.csv'}",
                            f"OUTPUT_RESIDUAL={out / 'r.tif'}", f"OUTPUT_REPORT={out / 'report.json'}", *extra)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        runs[name] = json.loads((out / "report.json").read_text())
    d = runs["there"]["distributed"]
    assert runs["here"]["distributed"] is None and d["scheduler"] == "local:2" and d["workers"] == 2
    for w in d["per_worker"].values():
        assert os.path.basename(w["python"]).startswith("python"), w  # not qgis_process.bin again
    for f in ("a.tif", "r.tif"):
        a = gdal.Open(str(tmp_path / "here" / f)).ReadAsArray()
        b = gdal.Open(str(tmp_path / "there" / f)).ReadAsArray()
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_a_bad_scheduler_is_a_processing_error(qgis_env, scene, tmp_path):
    proc = qgis_process(qgis_env, "run", "diffunmix:unmix", "--", f"INPUT={scene}", "METHOD=1",
                        f"OUTPUT={tmp_path / 'a.tif'}", f"OUTPUT_ENDMEMBERS={tmp_path / 'e.csv'}",
                        "SCHEDULER=udp://x")
    assert proc.returncode != 0
    assert "unknown scheduler 'udp://x'" in proc.stdout + proc.stderr
    assert not (tmp_path / "a.tif").exists()
