"""Results in the canvas: pseudocolour layers per endmember (0–1, Viridis) named after the
endmembers, in a group named after the input, an optional RGB composite, the shipped .qml, and a
rendered picture of a styled result (benchmarks/results/canvas_abundances.png)."""

import os

import pytest
from qgis.core import (
    QgsLayerTreeGroup,
    QgsMultiBandColorRenderer,
    QgsProcessingContext,
    QgsRasterLayer,
    QgsSingleBandPseudoColorRenderer,
)
from qgisutil import RecordingFeedback

pytestmark = pytest.mark.usefixtures("diffunmix_plugin")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CANVAS_PNG = os.path.join(ROOT, "benchmarks", "results", "canvas_abundances.png")


def group_layers(project, group_name):
    group = project.layerTreeRoot().findGroup(group_name)
    assert group is not None, [c.name() for c in project.layerTreeRoot().children()]
    return group, [node.layer() for node in group.findLayers()]


def assert_abundance_renderer(layer, band):
    renderer = layer.renderer()
    assert isinstance(renderer, QgsSingleBandPseudoColorRenderer), type(renderer)
    assert renderer.band() == band
    assert renderer.classificationMin() == 0.0 and renderer.classificationMax() == 1.0
    items = renderer.shader().rasterShaderFunction().colorRampItemList()
    assert items[0].value == 0.0 and items[-1].value == 1.0
    assert items[0].color.name() == "#440154" and items[-1].color.name() == "#fde725"  # Viridis


@pytest.fixture
def scene_layer(library_scene, qgis_new_project):
    layer = QgsRasterLayer(library_scene["paths"]["scene"], "Test scene")
    assert layer.isValid()
    qgis_new_project.addMapLayer(layer)
    return layer


def test_run_and_load_results_styles_one_layer_per_endmember_in_a_group(scene_layer, qgis_new_project):
    import processing
    from diffunmix.core.io.library import bundled_library_path

    result = processing.runAndLoadResults("diffunmix:unmix", {
        "INPUT": scene_layer.id(), "ENDMEMBERS": 3, "METHOD": 1, "LIBRARY": str(bundled_library_path()),
        "RGB_ENDMEMBERS": "3,1,2", "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_ENDMEMBERS": "TEMPORARY_OUTPUT"},
        feedback=RecordingFeedback())
    names = result["ENDMEMBER_NAMES"].split(",")
    group, layers = group_layers(qgis_new_project, "Test scene — VCA + FCLS, 3 endmembers")
    rgb, endmember_layers = layers[0], layers[1:]
    assert [lyr.name() for lyr in endmember_layers] == names
    for band, lyr in enumerate(endmember_layers, start=1):
        assert lyr.source() == result["OUTPUT"]
        assert_abundance_renderer(lyr, band)
    assert isinstance(rgb.renderer(), QgsMultiBandColorRenderer)
    r = rgb.renderer()
    assert (r.redBand(), r.greenBand(), r.blueBand()) == (3, 1, 2)
    assert r.redContrastEnhancement().minimumValue() == 0 and r.redContrastEnhancement().maximumValue() == 1
    assert rgb.name() == f"RGB: {names[2]} / {names[0]} / {names[1]}"
    # only the top layer is shown; the input stays where it was
    assert [group.findLayer(lyr.id()).itemVisibilityChecked() for lyr in layers] == [True, False, False, False]
    assert qgis_new_project.layerTreeRoot().findLayer(scene_layer.id()).parent() == qgis_new_project.layerTreeRoot()


def test_post_processor_called_directly_in_the_main_thread(library_scene, qgis_new_project, tmp_path):
    """The post-processor on its own, with a QgsProcessingContext, as Processing calls it."""
    from diffunmix.plugin.styling import AbundanceStyler, add_result_listener, remove_result_listener

    seen = []
    add_result_listener(seen.append)
    try:
        path = library_scene["paths"]["abundances"]
        layer = QgsRasterLayer(path, "Abundances")
        qgis_new_project.addMapLayer(layer)
        context = QgsProcessingContext()
        context.setProject(qgis_new_project)
        styler = AbundanceStyler(names=["a", "b", "c"], group_name="truth", endmembers_csv="e.csv")
        styler.postProcessLayer(layer, context, RecordingFeedback())
    finally:
        remove_result_listener(seen.append)
    _, layers = group_layers(qgis_new_project, "truth")
    assert [lyr.name() for lyr in layers] == ["a", "b", "c"]
    for band, lyr in enumerate(layers, start=1):
        assert_abundance_renderer(lyr, band)
    assert seen and seen[0]["endmembers_csv"] == "e.csv" and seen[0]["names"] == ["a", "b", "c"]


def test_fcls_and_synthesize_outputs_are_styled_too(library_scene, qgis_new_project):
    import processing

    res = processing.runAndLoadResults("diffunmix:synthesize", {
        "HEIGHT": 12, "WIDTH": 12, "ENDMEMBERS": 3, "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_ABUNDANCES": "TEMPORARY_OUTPUT", "OUTPUT_ENDMEMBERS": "TEMPORARY_OUTPUT"},
        feedback=RecordingFeedback())
    group_name = os.path.splitext(os.path.basename(res["OUTPUT_ABUNDANCES"]))[0]
    _, layers = group_layers(qgis_new_project, group_name)
    assert [lyr.name() for lyr in layers] == res["ENDMEMBER_NAMES"].split(",")
    processing.runAndLoadResults("diffunmix:fcls", {
        "INPUT": res["OUTPUT"], "ENDMEMBERS_CSV": res["OUTPUT_ENDMEMBERS"], "OUTPUT": "TEMPORARY_OUTPUT"},
        feedback=RecordingFeedback())
    groups = [g.name() for g in qgis_new_project.layerTreeRoot().children()]
    assert len(groups) == 3  # fcls' group (top), synthesize's group, the scene layer


def test_shipped_qml_style_is_a_0_to_1_pseudocolor(library_scene):
    from diffunmix.plugin.styling import ABUNDANCE_QML

    layer = QgsRasterLayer(library_scene["paths"]["abundances"], "a")
    message, ok = layer.loadNamedStyle(ABUNDANCE_QML)
    assert ok, message
    assert_abundance_renderer(layer, 1)


def test_render_styled_result_to_png(scene_layer, qgis_new_project):
    """A picture for people: each endmember's abundance layer and the RGB composite, rendered by QGIS."""
    import processing
    from diffunmix.core.io.library import bundled_library_path
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings
    from qgis.PyQt.QtCore import QRectF, QSize, Qt
    from qgis.PyQt.QtGui import QColor, QFont, QImage, QPainter

    processing.runAndLoadResults("diffunmix:unmix", {
        "INPUT": scene_layer.id(), "ENDMEMBERS": 3, "METHOD": 1, "LIBRARY": str(bundled_library_path()),
        "RGB_ENDMEMBERS": "1,2,3", "OUTPUT": "TEMPORARY_OUTPUT", "OUTPUT_ENDMEMBERS": "TEMPORARY_OUTPUT"},
        feedback=RecordingFeedback())
    _, layers = group_layers(qgis_new_project, "Test scene — VCA + FCLS, 3 endmembers")
    from diffunmix.plugin.styling import viridis_ramp

    panels = layers[1:] + layers[:1]  # endmembers, then the RGB composite
    size, title_h, gap, bar_h = 240, 44, 10, 40
    step = size + gap
    sheet = QImage(step * len(panels) - gap, title_h + size + bar_h, QImage.Format_ARGB32)
    sheet.fill(QColor("white"))
    painter = QPainter(sheet)
    painter.setFont(QFont("Sans", 8))
    ramp, bar_w, y0 = viridis_ramp(), step * (len(panels) - 1) - gap, title_h + size + 8
    for x in range(bar_w):  # the 0-1 colour ramp of the endmember panels
        painter.fillRect(x, y0, 1, 12, ramp.color(x / (bar_w - 1)))
    for x, text, align in ((0, "0", Qt.AlignLeft), (bar_w / 2 - 60, "abundance", Qt.AlignCenter),
                           (bar_w - 120, "1", Qt.AlignRight)):
        painter.drawText(QRectF(x, y0 + 12, 120, bar_h - 20), align | Qt.AlignTop, text)
    for i, lyr in enumerate(panels):
        settings = QgsMapSettings()
        settings.setLayers([lyr])
        settings.setExtent(lyr.extent())
        settings.setOutputSize(QSize(size, size))
        settings.setBackgroundColor(QColor("white"))
        job = QgsMapRendererParallelJob(settings)
        job.start()
        job.waitForFinished()
        image = job.renderedImage()
        colours = {image.pixel(x, y) for x in range(0, size, 8) for y in range(0, size, 8)}
        assert len(colours) > 20, f"{lyr.name()} rendered almost blank"
        painter.drawImage(i * step, title_h, image)
        painter.drawText(QRectF(i * step, 0, size, title_h), Qt.AlignCenter | Qt.TextWordWrap, lyr.name())
    painter.end()
    os.makedirs(os.path.dirname(CANVAS_PNG), exist_ok=True)
    assert sheet.save(CANVAS_PNG, "PNG")
    assert os.path.getsize(CANVAS_PNG) > 5000


def test_a_second_run_into_the_same_file_leaves_the_first_group_whole(library_scene, scene_layer,
                                                                      qgis_new_project, tmp_path):
    import processing

    out = str(tmp_path / "same.tif")
    for _ in range(2):
        processing.runAndLoadResults("diffunmix:fcls", {
            "INPUT": scene_layer.id(), "ENDMEMBERS_CSV": library_scene["paths"]["endmembers"], "OUTPUT": out},
            feedback=RecordingFeedback())
    groups = [g for g in qgis_new_project.layerTreeRoot().children() if isinstance(g, QgsLayerTreeGroup)]
    assert [g.name() for g in groups] == ["Test scene (2)", "Test scene"]  # newest on top, told apart
    for g in groups:  # three endmember layers in each, band 1..3
        layers = [node.layer() for node in g.findLayers()]
        assert [lyr.renderer().band() for lyr in layers] == [1, 2, 3]


def test_error_raster_joins_the_result_group_below_the_abundances(scene_layer, qgis_new_project, tmp_path):
    import processing

    result = processing.runAndLoadResults("diffunmix:unmix", {
        "INPUT": scene_layer.id(), "ENDMEMBERS": 3, "METHOD": 1, "OUTPUT": "TEMPORARY_OUTPUT",
        "OUTPUT_ENDMEMBERS": "TEMPORARY_OUTPUT", "OUTPUT_RESIDUAL": str(tmp_path / "err.tif")},
        feedback=RecordingFeedback())
    groups = [g for g in qgis_new_project.layerTreeRoot().children() if isinstance(g, QgsLayerTreeGroup)]
    assert len(groups) == 1  # one group for the run: abundances and the error raster
    layers = [node.layer() for node in groups[0].findLayers()]
    assert [lyr.name() for lyr in layers] == result["ENDMEMBER_NAMES"].split(",") + ["Reconstruction error"]
    err = layers[-1]
    assert err.source() == result["OUTPUT_RESIDUAL"]
    assert isinstance(err.renderer(), QgsSingleBandPseudoColorRenderer) and err.renderer().band() == 1
    assert err.renderer().classificationMin() == 0.0 and err.renderer().classificationMax() > 0.0
    assert not groups[0].findLayer(err.id()).itemVisibilityChecked()


def test_uncertainty_raster_gets_one_layer_per_endmember(library_scene, qgis_new_project):
    from diffunmix.plugin.styling import ResultGroup, add_diagnostic_layers

    layer = QgsRasterLayer(library_scene["paths"]["abundances"], "u")  # any 3-band raster stands in
    qgis_new_project.addMapLayer(layer)
    shared = ResultGroup("run")
    group = shared.get(qgis_new_project)
    assert shared.get(qgis_new_project) is group  # the run's stylers share one group
    names = ["a (uncertainty)", "b (uncertainty)", "c (uncertainty)"]
    layers = add_diagnostic_layers(layer, qgis_new_project, group, names)
    assert [lyr.name() for lyr in layers] == names
    assert [lyr.renderer().band() for lyr in layers] == [1, 2, 3]
    assert [node.layer() for node in group.findLayers()] == layers
    qgis_new_project.layerTreeRoot().removeChildNode(group)  # the user deletes the group
    assert shared.get(qgis_new_project) is not group
