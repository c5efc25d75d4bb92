"""Every DiffUnmix algorithm through QGIS Processing on small rasters: contract, outputs, errors, batch."""

import csv
import json
import os

import numpy as np
import pytest
from qgis.core import QgsApplication, QgsProcessingException, QgsProcessingParameterDefinition
from qgisutil import RecordingFeedback, read_raster, run_alg
from scipy.optimize import linear_sum_assignment

pytestmark = pytest.mark.usefixtures("diffunmix_plugin")

ALGORITHMS = ("unmix", "train", "apply", "estimatecount", "extractendmembers", "fcls", "evaluate", "synthesize")
#: output name -> type, per algorithm (what the graphical modeler chains on)
OUTPUT_TYPES = {
    "unmix": {"OUTPUT": "outputRaster", "OUTPUT_ENDMEMBERS": "outputFile", "OUTPUT_PLOT": "outputFile",
              "OUTPUT_RESIDUAL": "outputRaster", "OUTPUT_UNCERTAINTY": "outputRaster", "OUTPUT_REPORT": "outputFile",
              "ENDMEMBER_COUNT": "outputNumber", "ENDMEMBER_NAMES": "outputString"},
    "train": {"OUTPUT": "outputFile", "ENDMEMBER_COUNT": "outputNumber", "ENDMEMBER_NAMES": "outputString"},
    "apply": {"OUTPUT": "outputRaster", "OUTPUT_ENDMEMBERS": "outputFile", "OUTPUT_RESIDUAL": "outputRaster",
              "OUTPUT_UNCERTAINTY": "outputRaster", "ENDMEMBER_COUNT": "outputNumber"},
    "estimatecount": {"ENDMEMBER_COUNT": "outputNumber", "BAND_COUNT": "outputNumber"},
    "extractendmembers": {"OUTPUT": "outputFile", "ENDMEMBER_COUNT": "outputNumber"},
    "fcls": {"OUTPUT": "outputRaster", "ENDMEMBER_COUNT": "outputNumber"},
    # the report is JSON or HTML by its file name: a plain file output
    "evaluate": {"OUTPUT": "outputFile", "ARMSE": "outputNumber", "SAD_MEAN_RAD": "outputNumber",
                 "RMSE": "outputNumber", "PSNR": "outputNumber"},
    "synthesize": {"OUTPUT": "outputRaster", "OUTPUT_ABUNDANCES": "outputRaster", "OUTPUT_ENDMEMBERS": "outputFile"},
}


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], np.array([[float(v) for v in row[1:]] for row in rows[1:]]).T  # header, (P, B)


def armse_matched(A_ref, A_est):
    """aRMSE after the best one-to-one matching of endmembers. A: (P, N)."""
    cost = np.array([[np.sqrt(np.mean((r - e) ** 2)) for e in A_est] for r in A_ref])
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(np.mean((A_ref[rows] - A_est[cols]) ** 2)))


# --- contract -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ALGORITHMS)
def test_algorithm_contract(name):
    registry = QgsApplication.processingRegistry()
    alg = registry.algorithmById(f"diffunmix:{name}")
    assert alg is not None and alg.name() == name and alg.provider().id() == "diffunmix"
    assert alg.displayName() and alg.group() and alg.groupId() in ("unmixing", "endmembers", "evaluation")
    assert type(alg.createInstance()) is type(alg)
    assert not alg.icon().isNull()
    assert type(alg).__module__.rsplit(".", 1)[-1] == name  # one class per file, file named for it
    help_text = alg.shortHelpString()
    for p in alg.parameterDefinitions():
        assert p.name() == p.name().upper(), p.name()
        assert p.help(), f"{name}.{p.name()} has no help"
        assert p.description() in help_text
    outputs = {o.name(): o.type() for o in alg.outputDefinitions()}
    for out, kind in OUTPUT_TYPES[name].items():
        assert outputs.get(out) == kind, (name, out, outputs.get(out))


def test_provider_lists_every_algorithm_and_the_example_workflow(diffunmix_plugin):
    ids = sorted(a.id() for a in diffunmix_plugin.provider.algorithms())
    assert ids == sorted([f"diffunmix:{n}" for n in ALGORITHMS] + ["diffunmix:diffunmix_example"])


def test_example_workflow_runs_from_the_toolbox(diffunmix_plugin, tmp_path):
    """The shipped model, registered in the provider: found by id and run like any algorithm."""
    alg = QgsApplication.processingRegistry().algorithmById("diffunmix:diffunmix_example")
    assert alg is not None and alg.displayName() and alg.group()
    # its steps resolved at registration: outputs listed (qgis_process help, the dialog) as in the file
    assert {o.name() for o in alg.outputDefinitions()} == {
        "unmix:Abundances", "unmix:Endmember spectra", "evaluate:Evaluation report"}
    assert alg.childAlgorithm("unmix").algorithm() is not None
    report = str(tmp_path / "scores.json")
    result = run_alg("diffunmix:diffunmix_example", {
        "HEIGHT": 24, "WIDTH": 24, "TRUE_ENDMEMBERS": 3, "SEED": 0, "evaluate:Evaluation report": report,
        "unmix:Abundances": str(tmp_path / "a.tif"), "unmix:Endmember spectra": str(tmp_path / "e.csv")})
    assert result["evaluate:Evaluation report"] == report
    assert json.load(open(report))["p"] == 3


# --- each algorithm on a small scene ------------------------------------------------------------

def test_estimatecount(mixture_scene):
    feedback = RecordingFeedback()
    result = run_alg("diffunmix:estimatecount", {"INPUT": mixture_scene["path"]}, feedback)
    assert result["ENDMEMBER_COUNT"] == 3
    assert result["BAND_COUNT"] == 50
    assert any("3" in m for m in feedback.infos)


def test_extractendmembers_then_fcls(mixture_scene, tmp_path):
    csv_path = str(tmp_path / "E.csv")
    result = run_alg("diffunmix:extractendmembers",
                     {"INPUT": mixture_scene["path"], "ENDMEMBERS": 3, "OUTPUT": csv_path})
    assert result == {"OUTPUT": csv_path, "ENDMEMBER_COUNT": 3, "ENDMEMBER_NAMES": "EM1,EM2,EM3"}
    header, E = read_csv(csv_path)
    assert header == ["band", "EM1", "EM2", "EM3"] and E.shape == (3, 50)

    out = str(tmp_path / "A.tif")
    result = run_alg("diffunmix:fcls", {"INPUT": mixture_scene["path"], "ENDMEMBERS_CSV": csv_path, "OUTPUT": out})
    assert result == {"OUTPUT": out, "ENDMEMBER_COUNT": 3}
    r = read_raster(out)
    assert r["count"] == 3 and r["descriptions"] == ["EM1", "EM2", "EM3"]
    assert r["transform"] == pytest.approx(mixture_scene["geotransform"]) and r["epsg"] == mixture_scene["epsg"]
    valid = mixture_scene["valid"]
    A = r["data"][:, valid]
    assert np.all(r["data"][:, ~valid] == r["nodata"])
    assert np.allclose(A.sum(axis=0), 1.0, atol=1e-4) and A.min() >= -1e-6
    assert armse_matched(mixture_scene["A"][:, valid], A) < 0.05


def test_noise_robust_extraction(mixture_scene, tmp_path):
    """METHOD 2 (noise-robust: the engine's start) on a scene with a nodata corner."""
    from diffunmix.core.classical.metrics import match_endmembers, sad

    out = str(tmp_path / "E.csv")
    result = run_alg("diffunmix:extractendmembers", {"INPUT": mixture_scene["path"], "ENDMEMBERS": 3, "METHOD": 2,
                                                      "OUTPUT": out})
    assert result == {"OUTPUT": out, "ENDMEMBER_COUNT": 3, "ENDMEMBER_NAMES": "EM1,EM2,EM3"}
    header, E = read_csv(out)
    assert header == ["band", "EM1", "EM2", "EM3"] and E.shape == (3, 50) and np.isfinite(E).all()
    truth = mixture_scene["E"]
    assert sad(truth, E[match_endmembers(truth, E)]).mean() < 0.02


def test_library_guided_extraction_names_the_true_spectra(library_scene, tmp_path):
    from diffunmix.core.io.library import bundled_library_path

    out = str(tmp_path / "E.csv")
    result = run_alg("diffunmix:extractendmembers", {
        "INPUT": library_scene["paths"]["scene"], "ENDMEMBERS": 3, "METHOD": 1,
        "LIBRARY": str(bundled_library_path()), "OUTPUT": out})
    assert sorted(result["ENDMEMBER_NAMES"].split(",")) == sorted(library_scene["names"])
    assert read_csv(out)[0][0] == "wavelength_nm"


def test_synthesize(tmp_path):
    out = {"OUTPUT": str(tmp_path / "scene.tif"), "OUTPUT_ABUNDANCES": str(tmp_path / "truth.tif"),
           "OUTPUT_ENDMEMBERS": str(tmp_path / "truth.csv")}
    result = run_alg("diffunmix:synthesize", {"HEIGHT": 20, "WIDTH": 30, "ENDMEMBERS": 4, "FAMILY": 2, "SNR": 35,
                                              "SEED": 4, **out})
    assert {k: result[k] for k in out} == out
    assert sorted(os.listdir(tmp_path)) == ["scene.tif", "truth.csv", "truth.tif"]  # nothing else left behind
    names = result["ENDMEMBER_NAMES"].split(",")
    scene, truth = read_raster(out["OUTPUT"]), read_raster(out["OUTPUT_ABUNDANCES"])
    assert scene["shape"] == truth["shape"] == (20, 30)
    assert truth["count"] == 4 and truth["descriptions"] == names
    assert np.allclose(truth["data"].sum(axis=0), 1.0, atol=1e-5)
    header, E = read_csv(out["OUTPUT_ENDMEMBERS"])
    assert header[1:] == names and E.shape == (4, scene["count"])
    again = str(tmp_path / "again")
    os.mkdir(again)
    run_alg("diffunmix:synthesize", {"HEIGHT": 20, "WIDTH": 30, "ENDMEMBERS": 4, "FAMILY": 2, "SNR": 35, "SEED": 4,
                                     "OUTPUT": f"{again}/s.tif", "OUTPUT_ABUNDANCES": f"{again}/a.tif",
                                     "OUTPUT_ENDMEMBERS": f"{again}/e.csv"})
    assert np.array_equal(read_raster(f"{again}/s.tif")["data"], scene["data"])  # same seed, same scene
    varied = str(tmp_path / "varied")
    os.mkdir(varied)
    run_alg("diffunmix:synthesize", {"HEIGHT": 20, "WIDTH": 30, "ENDMEMBERS": 4, "FAMILY": 2, "SNR": 0, "SEED": 4,
                                     "ILLUMINATION": 0.1, "VARIABILITY": 0.05, "OUTPUT": f"{varied}/s.tif",
                                     "OUTPUT_ABUNDANCES": f"{varied}/a.tif", "OUTPUT_ENDMEMBERS": f"{varied}/e.csv"})
    # same abundances and endmembers; the pixels are no longer exact mixtures of them
    assert np.array_equal(read_raster(f"{varied}/a.tif")["data"], truth["data"])
    assert np.array_equal(read_csv(f"{varied}/e.csv")[1], E)
    Y = read_raster(f"{varied}/s.tif")["data"].reshape(scene["count"], -1).T.astype(np.float64)
    A = truth["data"].reshape(4, -1).T.astype(np.float64)
    rel = np.linalg.norm(Y - A @ E) / np.linalg.norm(Y)
    assert 0.03 < rel < 0.3, rel


def test_unmix_writes_residual_plot_and_report(library_scene, tmp_path):
    p = {k: str(tmp_path / v) for k, v in (("OUTPUT", "a.tif"), ("OUTPUT_ENDMEMBERS", "e.csv"),
                                            ("OUTPUT_PLOT", "e.png"), ("OUTPUT_RESIDUAL", "res.tif"),
                                            ("OUTPUT_REPORT", "r.json"))}
    result = run_alg("diffunmix:unmix", {"INPUT": library_scene["paths"]["scene"], "ENDMEMBERS": 3, "METHOD": 1,
                                         "QUALITY": 0, **p})
    for key, path in p.items():
        assert result[key] == path and os.path.isfile(path), key
    res = read_raster(p["OUTPUT_RESIDUAL"])
    assert res["count"] == 1 and res["descriptions"] == ["reconstruction_rmse"]
    assert 0 <= np.nanmax(res["data"]) < 0.05  # 40 dB scene, exact linear mixtures
    with open(p["OUTPUT_PLOT"], "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert json.load(open(p["OUTPUT_REPORT"]))["endmember_count"] == 3


@pytest.mark.parametrize("report", ["scores.json", "scores.html"])
def test_evaluate(library_scene, tmp_path, report):
    a, e = str(tmp_path / "a.tif"), str(tmp_path / "e.csv")
    run_alg("diffunmix:unmix", {"INPUT": library_scene["paths"]["scene"], "ENDMEMBERS": 3, "METHOD": 1,
                                "OUTPUT": a, "OUTPUT_ENDMEMBERS": e})
    out = str(tmp_path / report)
    paths = library_scene["paths"]
    result = run_alg("diffunmix:evaluate", {
        "ABUNDANCES": a, "REFERENCE_ABUNDANCES": paths["abundances"], "ENDMEMBERS_CSV": e,
        "REFERENCE_ENDMEMBERS_CSV": paths["endmembers"], "INPUT": paths["scene"], "OUTPUT": out})
    assert result["OUTPUT"] == out
    assert 0 <= result["ARMSE"] < 0.05
    assert 0 <= result["SAD_MEAN_RAD"] < 0.05
    assert 0 <= result["RMSE"] < 0.01 and result["PSNR"] > 30
    text = open(out, encoding="utf-8").read()
    if report.endswith(".json"):
        scores = json.loads(text)
        assert scores["armse"] == pytest.approx(result["ARMSE"])
        assert scores["reconstruction_psnr"] == pytest.approx(result["PSNR"])
    else:
        assert text.startswith("<!DOCTYPE html>") and "armse" in text


def test_evaluate_endmembers_only_gives_only_sad(library_scene, tmp_path):
    e = library_scene["paths"]["endmembers"]
    result = run_alg("diffunmix:evaluate", {"ENDMEMBERS_CSV": e, "REFERENCE_ENDMEMBERS_CSV": e})
    assert result["SAD_MEAN_RAD"] == pytest.approx(0.0, abs=1e-6)
    assert "ARMSE" not in result and "PSNR" not in result and "OUTPUT" not in result


# --- errors name the bad input, and leave nothing behind ------------------------------------------

def test_fcls_with_csv_of_other_bands_names_the_csv(mixture_scene, tmp_path):
    bad = tmp_path / "five_bands.csv"
    bad.write_text("band,a,b\n" + "".join(f"{i},0.{i},0.{9 - i}\n" for i in range(1, 6)))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(QgsProcessingException, match="five_bands.csv"):
        run_alg("diffunmix:fcls", {"INPUT": mixture_scene["path"], "ENDMEMBERS_CSV": str(bad),
                                   "OUTPUT": str(out / "a.tif")})
    assert os.listdir(out) == []


def test_bad_rgb_endmembers_is_refused_before_running(mixture_scene, tmp_path):
    with pytest.raises(QgsProcessingException, match="RGB_ENDMEMBERS"):
        run_alg("diffunmix:unmix", {"INPUT": mixture_scene["path"], "ENDMEMBERS": 3, "METHOD": 1,
                                    "RGB_ENDMEMBERS": "1,2,x", "OUTPUT": str(tmp_path / "a.tif"),
                                    "OUTPUT_ENDMEMBERS": str(tmp_path / "e.csv")})
    assert os.listdir(tmp_path) == []


def test_evaluate_without_pairs_says_what_to_give(library_scene):
    with pytest.raises(QgsProcessingException, match="REFERENCE_ABUNDANCES"):
        run_alg("diffunmix:evaluate", {})
    with pytest.raises(QgsProcessingException, match="REFERENCE_ENDMEMBERS_CSV"):
        run_alg("diffunmix:evaluate", {"ENDMEMBERS_CSV": library_scene["paths"]["endmembers"]})


def test_unmix_with_a_file_that_is_no_model_names_it(mixture_scene, tmp_path):
    fake = tmp_path / "not_a_model.pt"
    fake.write_bytes(b"this is not a checkpoint")
    with pytest.raises(QgsProcessingException, match="not_a_model.pt"):
        run_alg("diffunmix:unmix", {"INPUT": mixture_scene["path"], "MODEL": str(fake),
                                    "OUTPUT": str(tmp_path / "a.tif"), "OUTPUT_ENDMEMBERS": str(tmp_path / "e.csv")})
    assert sorted(os.listdir(tmp_path)) == ["not_a_model.pt"]


def test_extract_library_method_without_library(mixture_scene, tmp_path):
    with pytest.raises(QgsProcessingException, match="LIBRARY"):
        run_alg("diffunmix:extractendmembers", {"INPUT": mixture_scene["path"], "ENDMEMBERS": 3, "METHOD": 1,
                                                "OUTPUT": str(tmp_path / "e.csv")})


def test_cancelled_fcls_writes_nothing(mixture_scene, tmp_path):
    csv_path = str(tmp_path / "E.csv")
    run_alg("diffunmix:extractendmembers", {"INPUT": mixture_scene["path"], "ENDMEMBERS": 3, "OUTPUT": csv_path})
    feedback = RecordingFeedback()
    feedback.cancel()
    with pytest.raises(QgsProcessingException, match="[Cc]ancel"):
        run_alg("diffunmix:fcls", {"INPUT": mixture_scene["path"], "ENDMEMBERS_CSV": csv_path,
                                   "OUTPUT": str(tmp_path / "A.tif")}, feedback)
    assert sorted(os.listdir(tmp_path)) == ["E.csv"]


# --- batch: the same algorithm instance, two rasters, nothing carried over ------------------------

def test_batch_of_two_rasters_keeps_no_state(mixture_scene, library_scene, tmp_path):
    import processing

    alg = QgsApplication.processingRegistry().createAlgorithmById("diffunmix:unmix")
    rows = [(mixture_scene["path"], "one"), (library_scene["paths"]["scene"], "two")]
    results = []
    for path, tag in rows:  # as the batch dialog does: one parameter set per row, separate outputs
        out = tmp_path / tag
        out.mkdir()
        results.append(processing.run(alg, {
            "INPUT": path, "ENDMEMBERS": 0, "METHOD": 1, "RGB_ENDMEMBERS": "1,2,3",
            "OUTPUT": str(out / "a.tif"), "OUTPUT_ENDMEMBERS": str(out / "e.csv"),
            "OUTPUT_REPORT": str(out / "r.json")}, feedback=RecordingFeedback()))
    first, second = results
    assert first["OUTPUT"] != second["OUTPUT"]
    r1, r2 = read_raster(first["OUTPUT"]), read_raster(second["OUTPUT"])
    assert r1["shape"] == (32, 32) and r2["shape"] == (40, 48)
    assert r1["count"] == first["ENDMEMBER_COUNT"] and r2["count"] == second["ENDMEMBER_COUNT"]
    assert r1["epsg"] == 32633 and r2["epsg"] == 32631  # each output on its own input's grid (synthetic: UTM 31N)
    rep1, rep2 = (json.load(open(r["OUTPUT_REPORT"])) for r in results)
    assert rep1["input"] == os.path.abspath(rows[0][0]) and rep2["input"] == os.path.abspath(rows[1][0])
    assert len(read_csv(first["OUTPUT_ENDMEMBERS"])[0]) == 1 + 3 and rep1["bands_used"] == list(range(1, 51))
    assert len(rep2["bands_used"]) == read_raster(rows[1][0])["count"]
    # a third run of the first row gives the first result again: nothing was carried over
    out = tmp_path / "again"
    out.mkdir()
    again = processing.run(alg, {"INPUT": rows[0][0], "ENDMEMBERS": 0, "METHOD": 1, "OUTPUT": str(out / "a.tif"),
                                 "OUTPUT_ENDMEMBERS": str(out / "e.csv")}, feedback=RecordingFeedback())
    assert np.array_equal(read_raster(again["OUTPUT"])["data"], r1["data"])


def test_optional_flags():
    registry = QgsApplication.processingRegistry()
    alg = registry.algorithmById("diffunmix:evaluate")
    for p in alg.parameterDefinitions():  # everything optional: any pair of references is enough
        assert p.flags() & QgsProcessingParameterDefinition.FlagOptional, p.name()


def test_a_run_leaves_gdal_exception_mode_as_it_found_it(mixture_scene, tmp_path):
    """GDAL's Python exception mode is process-wide: the engine must not switch it inside QGIS."""
    from osgeo import gdal

    before = gdal.GetUseExceptions()
    run_alg("diffunmix:unmix", {"INPUT": mixture_scene["path"], "ENDMEMBERS": 3, "METHOD": 1,
                                "OUTPUT": str(tmp_path / "a.tif"), "OUTPUT_ENDMEMBERS": str(tmp_path / "e.csv")})
    assert gdal.GetUseExceptions() == before


def test_evaluate_reconstruction_only_needs_no_reference(library_scene, tmp_path):
    """Real scenes have no truth: abundances × endmembers against the input is still a score."""
    a, e = str(tmp_path / "a.tif"), str(tmp_path / "e.csv")
    run_alg("diffunmix:unmix", {"INPUT": library_scene["paths"]["scene"], "ENDMEMBERS": 3, "METHOD": 1,
                                "OUTPUT": a, "OUTPUT_ENDMEMBERS": e})
    result = run_alg("diffunmix:evaluate", {"ABUNDANCES": a, "ENDMEMBERS_CSV": e,
                                            "INPUT": library_scene["paths"]["scene"], "OUTPUT": "TEMPORARY_OUTPUT"})
    assert 0 <= result["RMSE"] < 0.01 and result["PSNR"] > 30
    assert "ARMSE" not in result and "SAD_MEAN_RAD" not in result
