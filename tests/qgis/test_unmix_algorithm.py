"""``diffunmix:unmix`` run through QGIS Processing on small synthetic rasters."""

import csv
import json
import os

import numpy as np
import pytest
from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
    QgsRasterLayer,
)
from qgisutil import RecordingFeedback
from scipy.optimize import linear_sum_assignment

pytestmark = pytest.mark.usefixtures("diffunmix_plugin")


def run(params, feedback=None):
    import processing

    return processing.run("diffunmix:unmix", params, feedback=feedback or RecordingFeedback())


def read_raster(path):
    """Re-read with rasterio, a reader independent of the writer (GDAL Python bindings)."""
    import rasterio

    with rasterio.open(path) as ds:
        return {
            "data": ds.read(masked=False), "count": ds.count, "dtypes": set(ds.dtypes),
            "transform": ds.transform.to_gdal(), "epsg": ds.crs.to_epsg() if ds.crs else None,
            "nodata": ds.nodata, "descriptions": list(ds.descriptions), "shape": (ds.height, ds.width),
        }


def armse_after_matching(A_ref, A_est):
    """Abundance RMSE after the best one-to-one matching. A_* (P, N)."""
    P = A_ref.shape[0]
    cost = np.array([[np.sqrt(np.mean((A_ref[i] - A_est[j]) ** 2)) for j in range(P)] for i in range(P)])
    rows, cols = linear_sum_assignment(cost)
    return float(np.sqrt(np.mean((A_ref[rows] - A_est[cols]) ** 2))), cols


def test_vca_fcls_recovers_abundances_with_georeferencing(mixture_scene, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    params = {
        "INPUT": mixture_scene["path"], "ENDMEMBERS": 3, "METHOD": 1, "SEED": 0,
        "OUTPUT": str(out / "abundances.tif"), "OUTPUT_ENDMEMBERS": str(out / "endmembers.csv"),
        "OUTPUT_PLOT": str(out / "endmembers.png"), "OUTPUT_REPORT": str(out / "report.json"),
    }
    feedback = RecordingFeedback()
    result = run(params, feedback)

    assert result["ENDMEMBER_COUNT"] == 3
    names = result["ENDMEMBER_NAMES"].split(",")
    assert len(names) == 3
    assert result["OUTPUT_ENDMEMBERS"] == params["OUTPUT_ENDMEMBERS"]
    assert result["OUTPUT_PLOT"] == params["OUTPUT_PLOT"]
    assert result["OUTPUT_REPORT"] == params["OUTPUT_REPORT"]
    assert sorted(os.listdir(out)) == ["abundances.tif", "endmembers.csv", "endmembers.png", "report.json"]
    assert feedback.progresses and max(feedback.progresses) == pytest.approx(100.0)
    assert feedback.infos  # engine messages reach the Processing log

    r = read_raster(params["OUTPUT"])
    assert r["count"] == 3 and r["dtypes"] == {"float32"} and r["shape"] == (32, 32)
    assert r["transform"] == pytest.approx(mixture_scene["geotransform"])
    assert r["epsg"] == mixture_scene["epsg"]
    assert r["descriptions"] == names
    valid = mixture_scene["valid"]
    A = r["data"]
    assert r["nodata"] is not None
    assert np.all(A[:, ~valid] == r["nodata"])
    A_valid = A[:, valid]
    assert np.all(A_valid >= -1e-6)
    assert np.allclose(A_valid.sum(axis=0), 1.0, atol=1e-4)
    err, perm = armse_after_matching(mixture_scene["A"][:, valid], A_valid)
    assert err < 0.05

    with open(params["OUTPUT_ENDMEMBERS"], newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0][0] in ("band", "wavelength_nm") and rows[0][1:] == names
    spectra = np.array([[float(v) for v in row[1:]] for row in rows[1:]]).T  # (P, B)
    assert spectra.shape == (3, 50)
    E_true = mixture_scene["E"]
    cos = np.sum(E_true * spectra[perm], axis=1) / (
        np.linalg.norm(E_true, axis=1) * np.linalg.norm(spectra[perm], axis=1))
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 3.0

    with open(params["OUTPUT_REPORT"], encoding="utf-8") as fh:
        report = json.load(fh)
    assert report["endmember_count"] == 3


def test_project_layer_input_temporary_outputs_and_optional_outputs_skipped(mixture_scene, qgis_new_project):
    layer = QgsRasterLayer(mixture_scene["path"], "scene")
    assert layer.isValid()
    qgis_new_project.addMapLayer(layer)
    context = QgsProcessingContext()
    context.setProject(qgis_new_project)
    import processing

    result = processing.run(
        "diffunmix:unmix",
        {"INPUT": layer.id(), "ENDMEMBERS": 3, "METHOD": 1,
         "OUTPUT": QgsProcessingOutputLayerDefinition("TEMPORARY_OUTPUT", qgis_new_project),
         "OUTPUT_ENDMEMBERS": "TEMPORARY_OUTPUT"},
        context=context, feedback=RecordingFeedback())
    # queued to load into the project as "Abundances", as the Processing dialog does
    to_load = context.layersToLoadOnCompletion()
    assert result["OUTPUT"] in to_load and to_load[result["OUTPUT"]].name == "Abundances"
    out_layer = QgsRasterLayer(result["OUTPUT"], "abundances")
    assert out_layer.isValid() and out_layer.bandCount() == 3
    assert out_layer.crs().authid() == f"EPSG:{mixture_scene['epsg']}"
    assert out_layer.extent() == layer.extent()
    assert os.path.isfile(result["OUTPUT_ENDMEMBERS"])
    assert result["OUTPUT_ENDMEMBERS"].endswith(".csv")
    assert "OUTPUT_PLOT" not in result and "OUTPUT_REPORT" not in result


def test_estimated_endmember_count(mixture_scene, tmp_path):
    result = run({"INPUT": mixture_scene["path"], "ENDMEMBERS": 0, "METHOD": 1,
                  "OUTPUT": str(tmp_path / "a.tif"), "OUTPUT_ENDMEMBERS": str(tmp_path / "e.csv")})
    assert 2 <= result["ENDMEMBER_COUNT"] <= 6
    assert read_raster(str(tmp_path / "a.tif"))["count"] == result["ENDMEMBER_COUNT"]


def test_band_subset(mixture_scene, tmp_path):
    result = run({"INPUT": mixture_scene["path"], "ENDMEMBERS": 3, "METHOD": 1, "BANDS": "1-20, 31-40",
                  "OUTPUT": str(tmp_path / "a.tif"), "OUTPUT_ENDMEMBERS": str(tmp_path / "e.csv")})
    assert result["ENDMEMBER_COUNT"] == 3
    with open(tmp_path / "e.csv", newline="", encoding="utf-8") as fh:
        assert len(list(csv.reader(fh))) == 1 + 30


# --- bad inputs: a QgsProcessingException with a message, and nothing written -----------------

BAD_INPUTS = {  # id: (raster kind, extra parameters, word the message must contain)
    "one-band": ("one_band", {"ENDMEMBERS": 2}, "band"),
    "endmembers>=bands": ("fifty_bands", {"ENDMEMBERS": 50}, "endmembers"),
    "bad-band-subset": ("fifty_bands", {"ENDMEMBERS": 3, "BANDS": "1-10,abc"}, "band"),
    "all-nodata": ("all_nodata", {"ENDMEMBERS": 3}, "valid"),
    "missing-library": ("fifty_bands", {"ENDMEMBERS": 3, "LIBRARY": "/nonexistent/library.csv"}, ""),
}


def _make_bad_input(kind, folder, write, spectra):
    rng = np.random.default_rng(0)
    if kind == "one_band":
        return write(folder / "one_band.tif", rng.random((1, 8, 8)))
    if kind == "all_nodata":
        return write(folder / "all_nodata.tif", np.full((10, 8, 8), -9999.0), nodata=-9999.0)
    A = rng.dirichlet([1, 1, 1], size=64).T.reshape(3, 8, 8)
    return write(folder / "fifty.tif", np.einsum("pb,phw->bhw", spectra(50), A))


@pytest.mark.parametrize("case", list(BAD_INPUTS), ids=list(BAD_INPUTS))
def test_bad_input_raises_and_writes_nothing(tmp_path, case, geotiff_writer, spectra):
    kind, extra, needle = BAD_INPUTS[case]
    src = tmp_path / "in"
    src.mkdir()
    path = _make_bad_input(kind, src, geotiff_writer, spectra)
    out = tmp_path / "out"
    out.mkdir()
    params = {"INPUT": path, "METHOD": 1, "OUTPUT": str(out / "a.tif"),
              "OUTPUT_ENDMEMBERS": str(out / "e.csv"), "OUTPUT_REPORT": str(out / "r.json"), **extra}
    with pytest.raises(QgsProcessingException) as info:
        run(params)
    message = str(info.value)
    assert message and "\n" not in message.strip()
    assert needle.lower() in message.lower()
    assert "Traceback" not in message
    assert os.listdir(out) == []


def test_non_file_layer_is_refused(tmp_path):
    xyz = QgsRasterLayer("type=xyz&url=http://127.0.0.1:9/%7Bz%7D/%7Bx%7D/%7By%7D.png&zmax=19&zmin=0",
                         "tiles", "wms")
    if not xyz.isValid():
        pytest.skip("the wms provider cannot open an XYZ layer here")
    feedback = RecordingFeedback()
    # refused in prepareAlgorithm: QGIS reports the message through the feedback
    with pytest.raises(QgsProcessingException):
        run({"INPUT": xyz, "ENDMEMBERS": 3, "METHOD": 1, "OUTPUT": str(tmp_path / "a.tif"),
             "OUTPUT_ENDMEMBERS": str(tmp_path / "e.csv")}, feedback)
    assert any("not a raster file" in e for e in feedback.errors), feedback.errors
    assert os.listdir(tmp_path) == []


def test_cancel_stops_the_run_and_writes_nothing(mixture_scene, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    feedback = RecordingFeedback(cancel_after_progress=1)
    with pytest.raises(QgsProcessingException, match="[Cc]ancel"):
        run({"INPUT": mixture_scene["path"], "ENDMEMBERS": 3, "METHOD": 1, "OUTPUT": str(out / "a.tif"),
             "OUTPUT_ENDMEMBERS": str(out / "e.csv")}, feedback)
    assert os.listdir(out) == []


def test_unsupported_output_format_is_refused(mixture_scene, tmp_path):
    with pytest.raises(QgsProcessingException, match="GeoTIFF"):
        run({"INPUT": mixture_scene["path"], "ENDMEMBERS": 3, "METHOD": 1,
             "OUTPUT": str(tmp_path / "a.img"), "OUTPUT_ENDMEMBERS": str(tmp_path / "e.csv")})
    assert os.listdir(tmp_path) == []
