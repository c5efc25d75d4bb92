"""The endmember-spectra dock: created by the plugin with the QGIS interface, updated when a run
finishes (one curve per endmember, matched library spectra dashed)."""

import os

import pytest
from qgis.core import QgsRasterLayer
from qgisutil import RecordingFeedback


@pytest.fixture
def gui_plugin(qgis_iface, qgis_processing, qgis_new_project):
    import diffunmix

    plugin = diffunmix.classFactory(qgis_iface)
    plugin.initGui()
    yield plugin
    plugin.unload()


def test_dock_follows_finished_runs(gui_plugin, library_scene, qgis_new_project, tmp_path):
    import processing
    from diffunmix.core.io.library import bundled_library_path

    assert gui_plugin.dock is None  # created on first use
    layer = QgsRasterLayer(library_scene["paths"]["scene"], "scene")
    qgis_new_project.addMapLayer(layer)
    result = processing.runAndLoadResults("diffunmix:unmix", {
        "INPUT": layer.id(), "ENDMEMBERS": 3, "METHOD": 1, "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_ENDMEMBERS": str(tmp_path / "e.csv")}, feedback=RecordingFeedback())
    dock = gui_plugin.dock
    assert dock is not None and not dock.isHidden()
    assert dock.curve_count() == 3 and dock.library_lines == []
    assert [line.get_label() for line in dock.endmember_lines] == result["ENDMEMBER_NAMES"].split(",")
    assert dock.axes.get_xlabel() == "Wavelength (nm)"
    assert dock.source.text() == "scene — VCA + FCLS, 3 endmembers"

    # with a library: the endmembers are named after library spectra, drawn dashed beside them
    processing.runAndLoadResults("diffunmix:unmix", {
        "INPUT": layer.id(), "ENDMEMBERS": 3, "METHOD": 1, "LIBRARY": str(bundled_library_path()),
        "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_ENDMEMBERS": str(tmp_path / "e_lib.csv")},
        feedback=RecordingFeedback())
    assert dock.curve_count() == 3 and len(dock.library_lines) == 3
    assert {line.get_linestyle() for line in dock.library_lines} == {"--"}
    assert sorted(line.get_label() for line in dock.endmember_lines) == sorted(library_scene["names"])

    # both runs stay listed (newest first); the legend is a list beside the plot, not a box on it
    assert dock.run_names() == ["scene — VCA + FCLS, 3 endmembers (2)", "scene — VCA + FCLS, 3 endmembers"]
    assert dock.axes.get_legend() is None and dock.legend_outside() and dock.legend.count() == 6
    # selecting a layer of the first result in the Layers panel shows that result again
    first = qgis_new_project.layerTreeRoot().findGroup("scene — VCA + FCLS, 3 endmembers").findLayers()[0].layer()
    assert dock.show_layer(first)
    assert dock.source.text() == "scene — VCA + FCLS, 3 endmembers" and dock.library_lines == []
    assert not dock.show_layer(layer)  # the input raster is no result
    # export: the plot (with its legend) as PNG, the spectra as CSV
    from diffunmix.core.io.library import read_library

    png, csv = dock.export(str(tmp_path / "plot.png")), dock.export(str(tmp_path / "spectra.csv"))
    assert os.path.getsize(png) > 5000 and dock.axes.get_legend() is None
    assert read_library(csv).names == result["ENDMEMBER_NAMES"].split(",")
    with pytest.raises(ValueError):
        dock.export(str(tmp_path / "plot.txt"))


def test_dock_plots_a_csv_by_hand(gui_plugin, library_scene):
    dock = gui_plugin.spectra_dock()
    assert dock.load_csv(library_scene["paths"]["endmembers"]) == 3
    x = dock.endmember_lines[0].get_xdata()
    assert 300 < x[0] < x[-1] < 2600  # nm
    dock.clear()
    assert dock.curve_count() == 0


def test_unload_removes_the_dock_and_listener(qgis_iface, qgis_processing, library_scene, qgis_new_project):
    import diffunmix
    import processing
    from diffunmix.plugin import styling

    plugin = diffunmix.classFactory(qgis_iface)
    plugin.initGui()
    plugin.spectra_dock()
    plugin.unload()
    plugin.initProcessing()  # provider only: a run after unload must not reach the deleted dock
    try:
        assert plugin.on_result not in styling._LISTENERS and plugin.dock is None
        processing.runAndLoadResults("diffunmix:fcls", {
            "INPUT": library_scene["paths"]["scene"], "ENDMEMBERS_CSV": library_scene["paths"]["endmembers"],
            "OUTPUT": "TEMPORARY_OUTPUT"}, feedback=RecordingFeedback())
        assert plugin.dock is None
    finally:
        plugin.unload()
    assert os.path.isfile(library_scene["paths"]["endmembers"])
