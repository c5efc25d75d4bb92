"""Abundance rasters in the map: one pseudocolour layer per endmember (0–1,
Viridis), named after the endmember, in a group named after the input, plus an
optional RGB composite of three endmembers.

Styling touches the project and renderers, so it runs in the main thread: the
algorithms attach an :class:`AbundanceStyler` (a
``QgsProcessingLayerPostProcessorInterface``) to their output in
``processAlgorithm`` and Processing calls it after loading the layer. The
stylers are kept alive in a module-level table (sip does not keep them alive,
and Processing calls them after the algorithm instance is gone).
"""

from __future__ import annotations

import os
from typing import Callable, List, Optional, Sequence

from qgis.core import (
    QgsColorRampShader,
    QgsContrastEnhancement,
    QgsGradientColorRamp,
    QgsGradientStop,
    QgsLayerTreeGroup,
    QgsMultiBandColorRenderer,
    QgsProcessingLayerPostProcessorInterface,
    QgsProject,
    QgsRasterBandStats,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsStyle,
)
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QColor

from . import PLUGIN_DIR

#: The .qml style shipped for manual use (Layer Properties ▸ Style ▸ Load Style).
ABUNDANCE_QML = os.path.join(PLUGIN_DIR, "resources", "styles", "abundance.qml")

#: Viridis (matplotlib), used when the QGIS style database has no "Viridis" ramp.
VIRIDIS = ("#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
           "#b5de2b", "#fde725")


def parse_rgb(text: Optional[str]):
    """'1,2,3' → (1, 2, 3) (1-based endmember numbers); None/'' → None.

    Raises:
        ValueError: not three positive integers.
    """
    if text is None or not str(text).strip():
        return None
    parts = [p.strip() for p in str(text).replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    values = tuple(int(p) for p in parts)  # ValueError on non-numbers
    if len(values) != 3 or min(values) < 1:
        raise ValueError(f"expected three endmember numbers >= 1, got {text!r}")
    return values


def viridis_ramp() -> QgsGradientColorRamp:
    """The perceptual Viridis colour ramp (from the style database when it has one)."""
    ramp = QgsStyle.defaultStyle().colorRamp("Viridis")
    if isinstance(ramp, QgsGradientColorRamp):
        return ramp
    n = len(VIRIDIS) - 1
    stops = [QgsGradientStop(i / n, QColor(c)) for i, c in enumerate(VIRIDIS[1:-1], start=1)]
    return QgsGradientColorRamp(QColor(VIRIDIS[0]), QColor(VIRIDIS[-1]), False, stops)


def pseudocolor_renderer(provider, band: int, vmin: float = 0.0, vmax: float = 1.0,
                         classes: int = 11, ramp: Optional[QgsGradientColorRamp] = None,
                         label_format: str = "{:.1f}") -> QgsSingleBandPseudoColorRenderer:
    """A continuous pseudocolour renderer (Viridis unless ``ramp``) of ``band`` stretched over [vmin, vmax]."""
    ramp = ramp or viridis_ramp()
    fn = QgsColorRampShader(vmin, vmax)
    fn.setColorRampType(QgsColorRampShader.Interpolated)
    fn.setClassificationMode(QgsColorRampShader.EqualInterval)
    fn.setSourceColorRamp(ramp.clone())
    items = []
    for i in range(classes):
        t = i / (classes - 1)
        value = vmin + t * (vmax - vmin)
        items.append(QgsColorRampShader.ColorRampItem(value, ramp.color(t), label_format.format(value)))
    fn.setColorRampItemList(items)
    shader = QgsRasterShader(vmin, vmax)
    shader.setRasterShaderFunction(fn)
    renderer = QgsSingleBandPseudoColorRenderer(provider, band, shader)
    renderer.setClassificationMin(vmin)
    renderer.setClassificationMax(vmax)
    return renderer


def rgb_renderer(provider, bands: Sequence[int], vmin: float = 0.0, vmax: float = 1.0) -> QgsMultiBandColorRenderer:
    """Red, green, blue = three abundance bands, each stretched over [vmin, vmax]."""
    renderer = QgsMultiBandColorRenderer(provider, *bands)
    enhancements = []
    for band in bands:
        ce = QgsContrastEnhancement(provider.dataType(band))
        ce.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum, False)
        ce.setMinimumValue(vmin)
        ce.setMaximumValue(vmax)
        enhancements.append(ce)
    renderer.setRedContrastEnhancement(enhancements[0])
    renderer.setGreenContrastEnhancement(enhancements[1])
    renderer.setBlueContrastEnhancement(enhancements[2])
    return renderer


def band_names(path: str) -> List[str]:
    """Band descriptions of a raster file (the endmember names), 'Band i' where empty."""
    from osgeo import gdal

    ds = gdal.Open(path)
    if ds is None:
        return []
    return [ds.GetRasterBand(i).GetDescription() or f"Band {i}" for i in range(1, ds.RasterCount + 1)]


def _move_into(group: QgsLayerTreeGroup, layer, project: QgsProject, index: int) -> None:
    """Put ``layer``'s tree node at ``index`` in ``group``, wherever Processing inserted it (the root,
    the group the Layers panel points into, or this group at another place)."""
    root = project.layerTreeRoot()
    node = root.findLayer(layer.id())
    if node is None:
        group.insertLayer(index, layer)
        return
    old_parent = node.parent()
    siblings = old_parent.children()
    if old_parent is group and siblings.index(node) == min(index, len(siblings) - 1):
        return
    if old_parent is group and siblings.index(node) < index:
        index += 1  # the old node, still above, goes away below
    # clone first, then remove: a layer whose last node is removed leaves the project
    group.insertChildNode(min(index, len(group.children())), node.clone())
    old_parent.removeChildNode(node)


#: custom layer property naming what a DiffUnmix layer shows ('abundance', 'rgb', 'diagnostic')
ROLE = "diffunmix/role"
#: custom layer property: the endmember CSV of the result a layer shows (``…_library``, ``…_group``:
#: its library and group name), so the spectra dock can follow the Layers panel, also in a saved project
RESULT_PROPERTY = "diffunmix/endmembers_csv"


class ResultGroup:
    """The layer group of one run, shared by the post-processors of its outputs.

    Processing post-processes a run's output layers one after another in the main
    thread, in no fixed order: the first to need the group creates it (on top of
    the layer tree), the others add to it. Every run gets a group of its own.
    """

    def __init__(self, name: str):
        self.name = name
        self._group = None

    def get(self, project: QgsProject) -> QgsLayerTreeGroup:
        if self._group is None or sip.isdeleted(self._group) or self._group.parent() is None:
            root = project.layerTreeRoot()
            taken = {c.name() for c in root.children() if isinstance(c, QgsLayerTreeGroup)}
            name, k = self.name, 1
            while name in taken:  # a batch over files of one name, or a rerun: "scene (2)", "scene (3)"…
                k += 1
                name = f"{self.name} ({k})"
            self._group = root.insertGroup(0, name)
        return self._group


def _own_layer(layer: QgsRasterLayer, project: QgsProject, name: str) -> QgsRasterLayer:
    """``layer``, or a fresh layer of its file when ``layer`` already belongs to a DiffUnmix result
    (an earlier result written to the same file, handed back by Processing): that result stays whole.

    A layer Processing has just loaded is no result yet, wherever the Layers panel made it land
    (inside a selected result's group, or the group of this run's first output): it is used
    and moved, so no unstyled copy stays behind.
    """
    if layer.customProperty(ROLE):
        return QgsRasterLayer(layer.source(), name, layer.providerType())
    return layer


def diagnostic_ramp() -> QgsGradientColorRamp:
    """Magma (dark = low, bright = high) for error and uncertainty layers; Viridis when the
    style database has no Magma ramp."""
    ramp = QgsStyle.defaultStyle().colorRamp("Magma")
    return ramp if isinstance(ramp, QgsGradientColorRamp) else viridis_ramp()


def add_diagnostic_layers(layer: QgsRasterLayer, project: QgsProject, group: QgsLayerTreeGroup,
                          names: Sequence[str]) -> list:
    """A per-pixel error or uncertainty raster as one layer per band at the bottom of a result
    group: Magma from 0 to the band's maximum, hidden until the user turns it on."""
    path = layer.source()
    layer = _own_layer(layer, project, names[0])
    layers = []
    for band in range(1, layer.bandCount() + 1):
        lyr = layer if band == 1 else QgsRasterLayer(path, names[band - 1], layer.providerType())
        lyr.setName(names[band - 1] if band - 1 < len(names) else f"Band {band}")
        vmax = lyr.dataProvider().bandStatistics(band, QgsRasterBandStats.Max).maximumValue
        vmax = float(vmax) if vmax == vmax and vmax > 0 else 1.0  # NaN or an all-zero band
        renderer = pseudocolor_renderer(lyr.dataProvider(), band, 0.0, vmax, ramp=diagnostic_ramp(),
                                        label_format="{:.3g}")
        lyr.setRenderer(renderer)
        lyr.setCustomProperty(ROLE, "diagnostic")
        if project.mapLayer(lyr.id()) is None:
            project.addMapLayer(lyr, False)
        _move_into(group, lyr, project, len(group.children()))
        node = group.findLayer(lyr.id())
        if node is not None:
            node.setItemVisibilityChecked(False)
        layers.append(lyr)
    return layers


def add_abundance_group(layer: QgsRasterLayer, project: QgsProject, names: Optional[Sequence[str]] = None,
                        group_name: Optional[str] = None, rgb: Optional[Sequence[int]] = None,
                        shared: Optional[ResultGroup] = None) -> tuple:
    """Show an abundance raster as one pseudocolour layer per endmember in a new group.

    ``layer`` itself becomes the first endmember's layer (it may already be in the
    project, e.g. loaded by Processing); one layer per further band is added.

    Args:
        layer: the abundance raster (P bands).
        project: the project to add to.
        names: P endmember names (default: the band descriptions).
        group_name: name of the layer group (default: the file name).
        rgb: optional three 1-based band numbers for an RGB composite layer (on top).

    Returns:
        (group, [endmember layers], rgb layer or None)
    """
    path = layer.source()
    names = list(names or band_names(path))
    count = layer.bandCount()
    names = (names + [f"Band {i}" for i in range(len(names) + 1, count + 1)])[:count]
    group_name = group_name or os.path.splitext(os.path.basename(path))[0]
    layer = _own_layer(layer, project, names[0] if names else group_name)
    group = (shared or ResultGroup(group_name)).get(project)
    if project.mapLayer(layer.id()) is None:
        project.addMapLayer(layer, False)
    layers = []
    for band in range(1, count + 1):
        lyr = layer if band == 1 else QgsRasterLayer(path, names[band - 1], layer.providerType())
        lyr.setName(names[band - 1])
        lyr.setRenderer(pseudocolor_renderer(lyr.dataProvider(), band))
        lyr.setCustomProperty(ROLE, "abundance")
        if lyr is not layer:
            project.addMapLayer(lyr, False)
            group.insertLayer(band - 1, lyr)
        else:
            _move_into(group, lyr, project, 0)
        lyr.triggerRepaint()
        layers.append(lyr)
    rgb_layer = None
    if rgb is not None and max(rgb) <= count:
        title = QCoreApplication.translate("AbundanceStyler", "RGB: {r} / {g} / {b}")
        rgb_layer = QgsRasterLayer(path, title.format(r=names[rgb[0] - 1], g=names[rgb[1] - 1], b=names[rgb[2] - 1]),
                                   layer.providerType())
        rgb_layer.setRenderer(rgb_renderer(rgb_layer.dataProvider(), rgb))
        rgb_layer.setCustomProperty(ROLE, "rgb")
        project.addMapLayer(rgb_layer, False)
        group.insertLayer(0, rgb_layer)
    # the layers are opaque and stacked: show only the top one, the others are a click away
    top = rgb_layer or layers[0]
    for lyr in layers + ([rgb_layer] if rgb_layer else []):
        node = group.findLayer(lyr.id())
        if node is not None:
            node.setItemVisibilityChecked(lyr is top)
    return group, layers, rgb_layer


# result listeners (the spectra dock) --------------------------------------------
_LISTENERS: List[Callable[[dict], None]] = []


def add_result_listener(fn: Callable[[dict], None]) -> None:
    """Call ``fn(result)`` in the main thread whenever an abundance result is shown."""
    if fn not in _LISTENERS:
        _LISTENERS.append(fn)


def remove_result_listener(fn: Callable[[dict], None]) -> None:
    if fn in _LISTENERS:
        _LISTENERS.remove(fn)


class AbundanceStyler(QgsProcessingLayerPostProcessorInterface):
    """Post-processor of an abundance output (runs in the main thread).

    Args:
        names: endmember names (band order).
        group_name: layer group name (the input's name).
        rgb: optional (r, g, b) 1-based endmember numbers.
        endmembers_csv: the run's endmember CSV, passed on to the listeners (spectra dock).
        library: the spectral library of the run, if any (dashed reference lines in the dock).
    """

    def __init__(self, names=None, group_name=None, rgb=None, endmembers_csv=None, library=None, shared=None):
        super().__init__()
        self.names = list(names or [])
        self.group_name = group_name
        self.rgb = rgb
        self.endmembers_csv = endmembers_csv
        self.library = library
        self.shared = shared
        self.layers = []

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        project = _raster_project(layer, context)
        if project is None:
            return
        group, layers, rgb_layer = add_abundance_group(layer, project, self.names, self.group_name, self.rgb,
                                                       shared=self.shared)
        self.layers = [lyr.id() for lyr in layers] + ([rgb_layer.id()] if rgb_layer else [])
        if self.endmembers_csv:
            for lyr in layers + ([rgb_layer] if rgb_layer else []):
                lyr.setCustomProperty(RESULT_PROPERTY, self.endmembers_csv)
                lyr.setCustomProperty(RESULT_PROPERTY + "_library", self.library or "")
                lyr.setCustomProperty(RESULT_PROPERTY + "_group", group.name())
        result = {"abundances": layer.source(), "names": [lyr.name() for lyr in layers],
                  "endmembers_csv": self.endmembers_csv, "library": self.library, "group": group.name()}
        for fn in list(_LISTENERS):
            try:
                fn(result)
            except Exception as exc:  # a listener must never break result loading
                if feedback is not None:
                    feedback.reportError(str(exc))


def _raster_project(layer, context) -> Optional[QgsProject]:
    """The project a loaded output raster goes into; None when the output is no raster layer."""
    if not isinstance(layer, QgsRasterLayer):
        return None
    return layer.project() or context.project() or QgsProject.instance()


class DiagnosticStyler(QgsProcessingLayerPostProcessorInterface):
    """Post-processor of a run's reconstruction-error or uncertainty raster: its bands join the
    run's result group (:class:`ResultGroup`), below the abundances, styled by
    :func:`add_diagnostic_layers`."""

    def __init__(self, names, shared: ResultGroup):
        super().__init__()
        self.names = list(names)
        self.shared = shared
        self.layers = []

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        project = _raster_project(layer, context)
        if project is None:
            return
        self.layers = [lyr.id() for lyr in add_diagnostic_layers(layer, project, self.shared.get(project),
                                                                 self.names)]


#: destination path -> styler: keeps each alive until Processing has called it (bounded: oldest dropped).
_STYLERS = {}
_KEEP = 256


def attach_abundance_styler(context, path: str, diagnostics=(), **kwargs) -> Optional[AbundanceStyler]:
    """Attach an :class:`AbundanceStyler` to output ``path`` if it will be loaded on completion,
    and a :class:`DiagnosticStyler` to each ``(path, layer names)`` of ``diagnostics`` (the
    run's error and uncertainty rasters), all sharing one :class:`ResultGroup`.

    Safe to call from ``processAlgorithm`` (a worker thread): it only creates the
    objects; Processing calls them in the main thread.
    """
    shared = ResultGroup(kwargs.get("group_name") or os.path.splitext(os.path.basename(path))[0])
    for extra, names in diagnostics:
        if extra and context.willLoadLayerOnCompletion(extra):
            _keep(context, extra, DiagnosticStyler(names, shared))
    if not context.willLoadLayerOnCompletion(path):
        return None
    return _keep(context, path, AbundanceStyler(shared=shared, **kwargs))


def _keep(context, path: str, styler):
    """Attach ``styler`` to output ``path`` and keep it alive until Processing has called it."""
    _STYLERS.pop(path, None)
    _STYLERS[path] = styler
    while len(_STYLERS) > _KEEP:
        _STYLERS.pop(next(iter(_STYLERS)))
    context.layerToLoadOnCompletionDetails(path).setPostProcessor(styler)
    return styler
