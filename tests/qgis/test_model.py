"""The shipped example model (synthesize → estimatecount → unmix → evaluate) run by processing.run."""

import json
import os

import pytest
from qgis.core import QgsProcessingModelAlgorithm
from qgisutil import RecordingFeedback, read_raster

pytestmark = pytest.mark.usefixtures("diffunmix_plugin")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "resources", "models", "diffunmix_example.model3")


@pytest.fixture
def model():
    alg = QgsProcessingModelAlgorithm()
    assert alg.fromFile(MODEL)
    return alg


def test_model_file_is_valid(model):
    assert model.name() == "diffunmix_example"
    children = model.childAlgorithms()
    assert sorted(c.algorithmId() for c in children.values()) == sorted(
        f"diffunmix:{n}" for n in ("synthesize", "estimatecount", "unmix", "evaluate"))
    for child_id in children:
        ok, errors = model.validateChildAlgorithm(child_id)
        assert ok, (child_id, errors)
    # estimatecount's number feeds unmix's ENDMEMBERS: the modeler chain the issue asks for
    source = children["unmix"].parameterSources()["ENDMEMBERS"][0]
    assert (source.outputChildId(), source.outputName()) == ("estimatecount", "ENDMEMBER_COUNT")
    assert {p.name() for p in model.parameterDefinitions()} >= {
        "HEIGHT", "WIDTH", "TRUE_ENDMEMBERS", "SEED", "unmix:Abundances", "evaluate:Evaluation report"}


def test_model_runs_through_processing_run(model, tmp_path):
    import processing

    out = {"unmix:Abundances": str(tmp_path / "abundances.tif"),
           "unmix:Endmember spectra": str(tmp_path / "endmembers.csv"),
           "evaluate:Evaluation report": str(tmp_path / "scores.json")}
    result = processing.run(model, {"HEIGHT": 32, "WIDTH": 40, "TRUE_ENDMEMBERS": 4, "SEED": 2, **out},
                            feedback=RecordingFeedback())
    for key, path in out.items():
        assert result[key] == path and os.path.isfile(path), key
    r = read_raster(out["unmix:Abundances"])
    assert r["shape"] == (32, 40) and r["count"] == 4  # HySime found the 4 endmembers
    scores = json.load(open(out["evaluate:Evaluation report"]))
    assert scores["p"] == 4
    assert scores["armse"] < 0.06 and scores["sad_mean_rad"] < 0.06
    assert scores["reconstruction_psnr"] > 30


def _offered(model, child_id, param_name):
    """What the graphical modeler's widget offers for a child's parameter (its source combo boxes)."""
    from qgis.core import QgsProcessingContext
    from qgis.gui import QgsGui
    from qgis.PyQt.QtWidgets import QComboBox

    alg = model.childAlgorithm(child_id).algorithm()
    widget = QgsGui.processingGuiRegistry().createModelerParameterWidget(
        model, child_id, alg.parameterDefinition(param_name), QgsProcessingContext())
    return [cb.itemText(i) for cb in widget.findChildren(QComboBox) for i in range(cb.count())]


def test_modeler_offers_estimatecount_for_unmix_endmembers(model):
    offered = _offered(model, "unmix", "ENDMEMBERS")
    assert any("Estimated number of endmembers" in text for text in offered), offered


def test_extractendmembers_chains_into_fcls_in_a_model(mixture_scene, tmp_path):
    import processing
    from qgis.core import (
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterRasterLayer,
    )
    from qgis.core import (
        QgsProcessingModelChildParameterSource as Source,
    )

    model = QgsProcessingModelAlgorithm("chain", "DiffUnmix", "diffunmix")
    model.addModelParameter(QgsProcessingParameterRasterLayer("SCENE", "Scene"), QgsProcessingModelParameter("SCENE"))
    extract = QgsProcessingModelChildAlgorithm("diffunmix:extractendmembers")
    extract.setChildId("extract")
    for name, src in (("INPUT", Source.fromModelParameter("SCENE")), ("ENDMEMBERS", Source.fromStaticValue(3)),
                      ("METHOD", Source.fromStaticValue(0)), ("SEED", Source.fromStaticValue(0))):
        extract.addParameterSources(name, [src])
    model.addChildAlgorithm(extract)
    fcls = QgsProcessingModelChildAlgorithm("diffunmix:fcls")
    fcls.setChildId("fcls")
    fcls.addParameterSources("INPUT", [Source.fromModelParameter("SCENE")])
    output = QgsProcessingModelOutput("Abundances", "Abundances")
    output.setChildId("fcls")
    output.setChildOutputName("OUTPUT")
    fcls.setModelOutputs({"Abundances": output})
    model.addChildAlgorithm(fcls)
    assert any("Endmember spectra" in text for text in _offered(model, "fcls", "ENDMEMBERS_CSV"))
    fcls.addParameterSources("ENDMEMBERS_CSV", [Source.fromChildOutput("extract", "OUTPUT")])
    model.setChildAlgorithm(fcls)
    model.updateDestinationParameters()
    assert model.validateChildAlgorithm("fcls")[0]
    result = processing.run(model, {"SCENE": mixture_scene["path"], "fcls:Abundances": str(tmp_path / "a.tif")},
                            feedback=RecordingFeedback())
    r = read_raster(result["fcls:Abundances"])
    assert r["count"] == 3 and r["descriptions"] == ["EM1", "EM2", "EM3"]
