"""End to end through ``qgis_process.bin``: every algorithm listed with its help, the number
outputs as JSON, and the shipped example model run from its file."""

import json
import os

import pytest
from testutil import QGIS_PROCESS, qgis_process

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.access(QGIS_PROCESS, os.X_OK), reason=f"{QGIS_PROCESS} not installed"),
]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "resources", "models", "diffunmix_example.model3")
ALGORITHMS = ("unmix", "train", "apply", "estimatecount", "extractendmembers", "fcls", "evaluate", "synthesize")


def test_every_algorithm_is_listed(qgis_env):
    proc = qgis_process(qgis_env, "list")
    assert proc.returncode == 0, proc.stderr
    for name in ALGORITHMS:
        assert f"diffunmix:{name}" in proc.stdout, name


@pytest.mark.parametrize("name", ["apply", "estimatecount", "evaluate", "synthesize"])
def test_help(qgis_env, name):
    proc = qgis_process(qgis_env, "help", f"diffunmix:{name}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "INPUT:" in proc.stdout or "HEIGHT:" in proc.stdout or "ABUNDANCES:" in proc.stdout


def test_synthesize_then_estimatecount_and_fcls_chain(qgis_env, tmp_path):
    scene, truth, csv_path = tmp_path / "s.tif", tmp_path / "t.tif", tmp_path / "t.csv"
    proc = qgis_process(qgis_env, "--json", "run", "diffunmix:synthesize", "--", "HEIGHT=24", "WIDTH=24",
                        "ENDMEMBERS=3", "SNR=40", "SEED=5", f"OUTPUT={scene}", f"OUTPUT_ABUNDANCES={truth}",
                        f"OUTPUT_ENDMEMBERS={csv_path}")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    proc = qgis_process(qgis_env, "--json", "run", "diffunmix:estimatecount", "--", f"INPUT={scene}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["results"]["ENDMEMBER_COUNT"] == 3
    out = tmp_path / "a.tif"
    proc = qgis_process(qgis_env, "--json", "run", "diffunmix:fcls", "--", f"INPUT={scene}",
                        f"ENDMEMBERS_CSV={csv_path}", f"OUTPUT={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["results"]["ENDMEMBER_COUNT"] == 3 and out.is_file()


def test_example_model_runs_from_its_file(qgis_env, tmp_path):
    out = {"unmix:Abundances": tmp_path / "abundances.tif", "unmix:Endmember spectra": tmp_path / "e.csv",
           "evaluate:Evaluation report": tmp_path / "scores.json"}
    proc = qgis_process(qgis_env, "--json", "run", MODEL, "--", "HEIGHT=32", "WIDTH=32", "TRUE_ENDMEMBERS=3",
                        "SEED=1", *(f"{k}={v}" for k, v in out.items()))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(proc.stdout)["results"]
    for key, path in out.items():
        assert results[key] == str(path) and path.is_file(), key
    scores = json.loads(out["evaluate:Evaluation report"].read_text())
    assert scores["p"] == 3 and scores["armse"] < 0.06


@pytest.mark.parametrize("size, seed", [(48, 1), (16, 0)])
def test_example_model_scores_whatever_count_the_estimate_gives(qgis_env, tmp_path, size, seed):
    """HySime may estimate more endmembers than the scene holds (small scenes: many more); the
    evaluation then scores the best-matching ones instead of refusing the result."""
    report = tmp_path / "scores.json"
    proc = qgis_process(qgis_env, "--json", "run", MODEL, "--", f"HEIGHT={size}", f"WIDTH={size}",
                        "TRUE_ENDMEMBERS=3", f"SEED={seed}", f"evaluate:Evaluation report={report}",
                        f"unmix:Abundances={tmp_path / 'a.tif'}", f"unmix:Endmember spectra={tmp_path / 'e.csv'}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    scores = json.loads(report.read_text())
    assert scores["p"] == 3 and 0 <= scores["armse"] < 0.5
