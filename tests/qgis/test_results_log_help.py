"""What the Processing dialogs show around a run: blank optional outputs queue nothing for loading,
the log says in words what ran, the Help button opens the page shipped in the plugin, the example
model's step titles fit the modeler's boxes."""

import os

from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingOutputLayerDefinition
from qgisutil import RecordingFeedback


def test_blank_optional_raster_outputs_queue_no_empty_layer(diffunmix_plugin, mixture_scene, qgis_new_project,
                                                           tmp_path):
    """The batch dialog hands a blank optional raster output as an output definition with an empty
    sink; loading it then failed with "The following layers were not correctly generated. •"."""
    from processing.gui.Postprocessing import handleAlgorithmResults

    context = QgsProcessingContext()
    context.setProject(qgis_new_project)
    params = {"INPUT": mixture_scene["path"], "ENDMEMBERS": 3, "METHOD": 1,
              "OUTPUT": QgsProcessingOutputLayerDefinition(str(tmp_path / "a.tif"), qgis_new_project),
              "OUTPUT_ENDMEMBERS": str(tmp_path / "e.csv"), "OUTPUT_PLOT": "", "OUTPUT_REPORT": "",
              "OUTPUT_RESIDUAL": QgsProcessingOutputLayerDefinition("", qgis_new_project),
              "OUTPUT_UNCERTAINTY": QgsProcessingOutputLayerDefinition("", qgis_new_project)}
    feedback = RecordingFeedback()
    alg = QgsApplication.processingRegistry().createAlgorithmById("diffunmix:unmix")
    results, ok = alg.run(params, context, feedback)
    assert ok, feedback.errors
    assert list(context.layersToLoadOnCompletion()) == [str(tmp_path / "a.tif")]
    assert "OUTPUT_RESIDUAL" not in results
    assert handleAlgorithmResults(alg, context, feedback, False, params)
    assert not [e for e in feedback.errors if "not correctly generated" in e], feedback.errors
    assert sorted(os.listdir(tmp_path)) == ["a.tif", "e.csv"]


def test_the_log_says_in_words_what_ran(diffunmix_plugin, mixture_scene, tmp_path):
    import json

    import processing

    feedback = RecordingFeedback()
    res = processing.run("diffunmix:unmix", {
        "INPUT": mixture_scene["path"], "ENDMEMBERS": 3, "METHOD": 1, "OUTPUT": str(tmp_path / "a.tif"),
        "OUTPUT_ENDMEMBERS": str(tmp_path / "e.csv"), "OUTPUT_RESIDUAL": str(tmp_path / "err.tif"),
        "OUTPUT_REPORT": str(tmp_path / "r.json")}, feedback=feedback)
    ours = [line for line in feedback.infos if not line.startswith("Results: ")]  # that one is processing.run's
    assert not [line for line in ours if "{" in line or "':" in line], ours  # no raw dicts
    text = "\n".join(feedback.infos)
    assert "Method: VCA + FCLS (classical); 3 endmembers (as requested)." in text
    assert "Time: endmember estimation" in text and "abundances (FCLS)" in text and "(total " in text
    report = json.load(open(res["OUTPUT_REPORT"]))
    assert f"mean RMSE {report['mean_reconstruction_rmse']:.3g}" in text  # the raw number stays in the report
    assert res["OUTPUT_REPORT"] in text


def test_run_summary_of_the_full_engine_names_the_stages_and_why():
    from diffunmix.core.deep.engine import describe_gate
    from diffunmix.plugin.feedback import run_summary, seconds

    report = {"method": "full", "endmember_count": 4, "endmember_count_estimated": 4,
              "self_validation": {"fcls": 0.0123456789, "hybrid": 0.009876543, "refined": 0.0111,
                                  "use_correction": True, "use_refinement": False},
              "timings_s": {"estimation_s": 1.234, "fitting_s": 95.1, "calibration_s": 3.0, "inference_s": 12.5,
                            "total_s": 185.2}}
    lines = run_summary(report, residual_mean=0.01234)
    text = "\n".join(lines)
    assert "full engine (HybridSTU + diffusion); 4 endmembers (estimated by HySime)" in text
    assert "CNN correction: used" in text and "diffusion refinement: skipped" in text
    assert "fitting the engine to the scene 1 min 35 s" in text and "(total 3 min 5 s)" in text
    assert "mean RMSE 0.0123" in text and "0.0123456789" not in text
    assert seconds(0.25) == "0.2 s" and seconds(42) == "42 s"
    words = describe_gate(report["self_validation"])
    assert words == "the CNN correction is kept, the diffusion refinement is dropped (it did not lower the error)"
    # a stage the gates blended with the one before it says so, with its weight (report.json → stages)
    report["stages"] = [{"stage": "hybridstu", "ran": True, "weight": 0.4567}]
    assert "CNN correction: used at weight 0.46 (blended with the stage before it" in "\n".join(run_summary(report))
    assert "kept at weight 0.46" in describe_gate({**report["self_validation"], "weights": {"hybrid": 0.4567}})


def test_help_button_opens_the_page_shipped_in_the_plugin(diffunmix_plugin):
    from qgis.PyQt.QtCore import QUrl

    algs = [a for a in QgsApplication.processingRegistry().providerById("diffunmix").algorithms()
            if not a.name().startswith("diffunmix_")]
    assert len(algs) >= 7
    for alg in algs:
        url = QUrl(alg.helpUrl())
        assert url.isLocalFile() and url.fragment() == alg.name(), alg.helpUrl()
        with open(url.toLocalFile(), encoding="utf-8") as fh:
            page = fh.read()
        assert f'id="{alg.name()}"' in page and alg.displayName() in page


def test_labels_and_model_titles_fit(diffunmix_plugin):
    unmix = QgsApplication.processingRegistry().algorithmById("diffunmix:unmix")
    assert unmix.parameterDefinition("MODEL").description() == "Saved model"  # QGIS adds "[optional]"
    model = QgsApplication.processingRegistry().algorithmById("diffunmix:diffunmix_example")
    titles = [c.description() for c in model.childAlgorithms().values()]
    assert len(titles) == 4 and all(len(t) <= 20 for t in titles), titles
    # the inputs in the order a person fills them in, also in the copy a dialog gets
    copy = QgsApplication.processingRegistry().createAlgorithmById("diffunmix:diffunmix_example")
    for alg in (model, copy):
        names = [p.name() for p in alg.parameterDefinitions() if not p.isDestination()]
        assert names == ["HEIGHT", "WIDTH", "TRUE_ENDMEMBERS", "SEED"], names
