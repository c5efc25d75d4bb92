"""Runs inside the real QGIS desktop (``qgis --code driver.py``), started by tests/desktop/conftest.py.

It drives DiffUnmix as an analyst would, through the calls the dialogs use (the algorithm
dialog with "Open output file after running" on, the batch dialog with "Load layers on
completion" on, the plugin's own actions), and writes what it saw to
``$DIFFUNMIX_DESKTOP_OUT/report.json`` (layer tree, renderers, message log, dialog logs,
widget states) plus screenshots, then quits QGIS. The pytest side asserts on the JSON.

Steps run one after another from the Qt event loop (a generator that yields "wait until"
conditions), so that QGIS keeps painting and Processing's tasks and post-processors run
exactly as in a user's session. Any exception is recorded, never swallowed.

Environment: ``DIFFUNMIX_DESKTOP_OUT`` (output folder), ``DIFFUNMIX_DESKTOP_PIP_SPEC`` (a small
package for the dependency installer's real install; empty: skip that step).
"""

import json
import os
import time
import traceback

from qgis.core import QgsApplication, QgsLayerTreeGroup, QgsLayerTreeLayer, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication, QTextEdit
from qgis.utils import iface, plugins

OUT = os.environ["DIFFUNMIX_DESKTOP_OUT"]
PIP_SPEC = os.environ.get("DIFFUNMIX_DESKTOP_PIP_SPEC", "")
REPORT = {"steps": {}, "log": [], "errors": []}
STEP_TIMEOUT = 90.0


def _on_message(message, tag, level):
    REPORT["log"].append({"message": message, "tag": tag, "level": int(level)})


QgsApplication.messageLog().messageReceived.connect(_on_message)


# what the user sees ---------------------------------------------------------------
def tree(node=None):
    """The layer tree as nested dicts (groups: name, children; layers: name, renderer, visible)."""
    node = node or QgsProject.instance().layerTreeRoot()
    out = []
    for child in node.children():
        if isinstance(child, QgsLayerTreeGroup):
            out.append({"group": child.name(), "children": tree(child)})
        elif isinstance(child, QgsLayerTreeLayer):
            layer = child.layer()
            out.append({"layer": child.name(), "id": layer.id() if layer else None,
                        "renderer": layer.renderer().type() if isinstance(layer, QgsRasterLayer) else None,
                        "role": layer.customProperty("diffunmix/role") if layer else None,
                        "source": layer.source() if layer else None,
                        "visible": child.isVisible(), "checked": child.itemVisibilityChecked()})
    return out


def shot(name, widget=None):
    """Screenshot of a widget (default: the main window) to OUT/<name>.png."""
    QApplication.processEvents()
    widget = widget or iface.mainWindow()
    path = os.path.join(OUT, f"{name}.png")
    widget.grab().save(path)
    return path


def dialog_log(dlg):
    edit = dlg.findChild(QTextEdit, "txtLog")
    return edit.toPlainText() if edit is not None else ""


def layer_in_tree(name_prefix):
    for node in QgsProject.instance().layerTreeRoot().findLayers():
        if node.name().startswith(name_prefix):
            return node.layer()
    return None


def wait(seconds):
    end = time.time() + seconds
    return lambda: time.time() >= end


# steps ------------------------------------------------------------------------------
def step_startup(rec):
    from diffunmix.plugin.compat import torch_available

    iface.mainWindow().showMaximized()  # as most analysts work

    rec["plugins"] = sorted(plugins)
    rec["torch"] = torch_available()
    rec["actions"] = [a.objectName() for a in plugins["diffunmix"].actions]
    yield wait(0.5)


def step_scene(rec):
    import processing

    folder = os.path.join(OUT, "scene")
    os.makedirs(folder, exist_ok=True)
    result = processing.run("diffunmix:synthesize", {
        "HEIGHT": 40, "WIDTH": 48, "ENDMEMBERS": 3, "SNR": 40.0, "SEED": 3,
        "OUTPUT": os.path.join(folder, "scene.tif"), "OUTPUT_ABUNDANCES": os.path.join(folder, "truth.tif"),
        "OUTPUT_ENDMEMBERS": os.path.join(folder, "truth.csv")})
    rec["scene"] = result["OUTPUT"]
    before = len(REPORT["log"])
    layer = iface.addRasterLayer(result["OUTPUT"], "scene")
    yield wait(1.0)
    rec["crs_valid"] = layer.crs().isValid()
    rec["crs"] = layer.crs().authid() or layer.crs().description()
    rec["log_on_load"] = REPORT["log"][before:]


def run_dialog(rec, alg_id, params, select=None, name="run"):
    """Open ``alg_id``'s dialog prefilled with ``params``, select a layer, press Run, wait."""
    import processing

    if select is not None:
        iface.layerTreeView().setCurrentLayer(select)
    dlg = processing.createAlgorithmDialog(alg_id, params)
    finished = {}
    dlg.algorithmFinished.connect(lambda ok, res: finished.update(ok=ok, results=res))
    dlg.show()
    yield wait(0.3)
    dlg.runAlgorithm()
    start = time.time()
    yield lambda: finished or time.time() - start > STEP_TIMEOUT or (
        QgsApplication.taskManager().countActiveTasks() == 0 and "Execution failed" in dialog_log(dlg))
    rec[f"{name}_ok"] = bool(finished.get("ok"))
    rec[f"{name}_log"] = dialog_log(dlg)
    yield wait(0.5)
    dlg.close()


def enabled(wrapper):
    """Whether a Processing parameter's widget is enabled (Python or C++ wrapper)."""
    if wrapper is None:
        return None
    widget = getattr(wrapper, "widget", None) or wrapper.wrappedWidget()
    return bool(widget.isEnabled())


def step_unmix_dialog(rec):
    """The unmix dialog as it opens (defaults, labels, size) and a screenshot of it."""
    dlg = plugins["diffunmix"].unmix_dialog()  # what the menu and toolbar action opens
    dlg.show()
    yield wait(1.0)
    panel = dlg.mainWidget()
    alg = dlg.algorithm()
    values = panel.createProcessingParameters() if hasattr(panel, "createProcessingParameters") else {}
    rec["defaults"] = {k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v))
                       for k, v in values.items()}
    rec["method_options"] = alg.parameterDefinition("METHOD").options()
    wrappers = getattr(panel, "wrappers", {})
    quality = wrappers.get("QUALITY")
    rec["quality_enabled"] = enabled(quality)
    rec["size"] = [dlg.width(), dlg.height()]
    rec["help_url"] = alg.helpUrl()
    rec["labels"] = {p.name(): p.description() for p in alg.parameterDefinitions()}
    rec["screenshot"] = shot("unmix_dialog", dlg)
    method = wrappers.get("METHOD")
    if method is not None:  # switching to VCA + FCLS greys out Quality
        vca = [i for i, t in enumerate(rec["method_options"]) if t.startswith("VCA")][0]
        from processing.tools import dataobjects

        method.setParameterValue(vca, dataobjects.createContext())
        yield wait(0.3)
        rec["quality_enabled_vca"] = enabled(quality)
    dlg.close()


def unmix_params(folder, residual=True):
    os.makedirs(folder, exist_ok=True)
    params = {"INPUT": REPORT["steps"]["scene"]["scene"], "ENDMEMBERS": 3, "METHOD": 1,
              "OUTPUT": os.path.join(folder, "abundances.tif"),
              "OUTPUT_ENDMEMBERS": os.path.join(folder, "endmembers.csv")}
    if residual:
        params["OUTPUT_RESIDUAL"] = os.path.join(folder, "error.tif")
    return params


def step_unmix_first(rec):
    yield from run_dialog(rec, "diffunmix:unmix", unmix_params(os.path.join(OUT, "run1")),
                          select=layer_in_tree("scene"), name="unmix")
    rec["tree"] = tree()


def step_unmix_selected(rec):
    """A second run while a layer of the first result is selected in the Layers panel."""
    group = QgsProject.instance().layerTreeRoot().children()[0]
    selected = group.findLayers()[0].layer() if isinstance(group, QgsLayerTreeGroup) else None
    rec["selected"] = selected.name() if selected else None
    yield from run_dialog(rec, "diffunmix:unmix", unmix_params(os.path.join(OUT, "run2")),
                          select=selected, name="unmix")
    rec["tree"] = tree()


def step_batch(rec):
    """Two rows in the batch dialog, optional outputs left blank, load layers on."""
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from processing.tools import dataobjects

    alg = QgsApplication.processingRegistry().createAlgorithmById("diffunmix:unmix")
    dlg = BatchAlgorithmDialog(alg, iface.mainWindow())
    dlg.show()
    panel = dlg.mainWidget()
    panel.addRow()  # two rows
    yield wait(0.3)
    context = dataobjects.createContext()
    for row in range(panel.batchRowCount()):
        params = unmix_params(os.path.join(OUT, f"batch{row + 1}"), residual=False)
        for name, value in params.items():
            col = panel.parameter_to_column[name]
            if name.startswith("OUTPUT"):
                panel.tblParameters.cellWidget(row + 1, col).setValue(value)
            else:
                panel.wrappers[row][col].setParameterValue(value, context)
    panel.checkLoadLayersOnCompletion.setChecked(True)
    group = QgsProject.instance().layerTreeRoot().children()[0]
    iface.layerTreeView().setCurrentLayer(group.findLayers()[0].layer())
    dlg.runAlgorithm()  # synchronous, as when the user presses Run
    yield wait(0.5)
    rec["log"] = dialog_log(dlg)
    rec["tree"] = tree()
    dlg.close()


def step_model(rec):
    """The example model through its dialog."""
    folder = os.path.join(OUT, "model")
    os.makedirs(folder, exist_ok=True)
    alg = QgsApplication.processingRegistry().algorithmById("diffunmix:diffunmix_example")
    rec["inputs"] = [p.name() for p in alg.parameterDefinitions()] if alg else None
    rec["input_labels"] = [p.description() for p in alg.parameterDefinitions()] if alg else None
    params = {}
    for p in alg.parameterDefinitions():
        if p.isDestination():
            params[p.name()] = os.path.join(folder, p.name().split(":")[-1] + (
                ".tif" if p.type() == "rasterDestination" else ".json" if "report" in p.name().lower()
                else ".csv"))
    params.update({n: v for n, v in (("height", 32), ("width", 32)) for p in alg.parameterDefinitions()
                   if p.name() == n})
    rec["params"] = {k: str(v) for k, v in params.items()}
    yield from run_dialog(rec, "diffunmix:diffunmix_example", params, name="model")
    rec["tree"] = tree()


def step_modeler(rec):
    """The unmix step's dialog in the graphical modeler (the custom QUALITY widget included): it opens
    and gives back a child algorithm with the chosen quality."""
    from processing.modeler.ModelerParametersDialog import ModelerParametersDialog
    from qgis.core import QgsProcessingModelAlgorithm

    alg = QgsApplication.processingRegistry().createAlgorithmById("diffunmix:unmix")
    dlg = ModelerParametersDialog(alg, QgsProcessingModelAlgorithm("m", "g"))
    dlg.show()
    yield wait(0.5)
    child = dlg.createAlgorithm()
    rec["child"] = child is not None
    if child is not None:
        sources = child.parameterSources().get("QUALITY") or []
        rec["quality_static"] = sources[0].staticValue() if sources else None
    dlg.close()


def step_spectra(rec):
    """The spectra dock beside the styled result; the dock follows the selected group."""
    plugin = plugins["diffunmix"]
    dock = plugin.spectra_dock()
    dock.setUserVisible(True)
    yield wait(0.5)
    rec["dock_size"] = [dock.width(), dock.height()]
    rec["curves"] = dock.curve_count()
    rec["runs"] = dock.run_names() if hasattr(dock, "run_names") else None
    rec["legend_outside"] = dock.legend_outside() if hasattr(dock, "legend_outside") else None
    root = QgsProject.instance().layerTreeRoot()
    groups = [c for c in root.children() if isinstance(c, QgsLayerTreeGroup)]
    if len(groups) > 1:  # select a layer of an older result: the dock follows
        iface.layerTreeView().setCurrentLayer(groups[-1].findLayers()[0].layer())
        yield wait(0.5)
        rec["followed_group"] = groups[-1].name()
        rec["dock_title_after_select"] = dock.source.text()
        iface.layerTreeView().setCurrentLayer(groups[0].findLayers()[0].layer())
        yield wait(0.5)
        # selecting a result's group (not a layer in it) follows too
        view = iface.layerTreeView()
        index = view.layerTreeModel().node2index(groups[-1])
        if view.model() is not view.layerTreeModel():  # QGIS 3.22's Layers panel filters through a proxy
            index = view.model().mapFromSource(index)
        view.setCurrentIndex(index)
        yield wait(0.5)
        rec["dock_title_after_group_select"] = dock.source.text()
        node = view.currentNode()
        rec["current_node_after_group_select"] = node.name() if node is not None else None
    for name in ("png", "csv"):
        if hasattr(dock, "export"):
            path = os.path.join(OUT, f"spectra.{name}")
            dock.export(path)
            rec[f"export_{name}"] = os.path.isfile(path) and os.path.getsize(path) > 0
    # the picture for the README: the first dialog run selected, the other groups folded, the
    # Results Viewer (opened by the model's HTML report) closed
    shown = next((g for g in reversed(groups) if g.name().startswith("scene")), groups[0] if groups else None)
    for group in groups:
        group.setExpanded(group is shown)
    if shown is not None:
        iface.layerTreeView().setCurrentLayer(shown.findLayers()[0].layer())
    from qgis.PyQt.QtWidgets import QDockWidget

    for other in iface.mainWindow().findChildren(QDockWidget):
        if type(other).__name__ == "ResultsDock":  # Processing's Results Viewer
            other.hide()
    iface.mapCanvas().zoomToFullExtent()
    iface.mapCanvas().refreshAllLayers()
    yield wait(2.0)
    rec["screenshot"] = shot("result_spectra")


def step_installer(rec):
    """The dependency installer: its dialog as a user without PyTorch meets it, then a real pip
    install of a small package through the same dialog, usable at once in this session."""
    import sys

    from diffunmix.plugin import installer

    plugin = plugins["diffunmix"]
    rec["has_action"] = plugin.action("diffunmix_dependencies") is not None
    rec["python"] = installer.qgis_python()
    rec["executable"] = sys.executable
    rec["target"] = installer.deps_dir()
    rec["build"] = installer.torch_build()
    rec["torch_command"] = installer.pip_command()
    dlg = plugin.installer_dialog()  # PyTorch: shown, not started
    dlg.show()
    yield wait(0.5)
    rec["status"] = dlg.status.text()
    rec["install_enabled"] = dlg.install_button.isEnabled()
    rec["screenshot"] = shot("dependency_installer", dlg)
    dlg.close()
    if not PIP_SPEC:
        return
    module = PIP_SPEC.split("==")[0].replace("-", "_")
    try:
        __import__(module)
        rec["importable_before"] = True
    except ImportError:
        rec["importable_before"] = False
    dlg = plugin.installer_dialog(packages=[PIP_SPEC])
    dlg.show()
    dlg.install_button.click()  # as the user does
    start = time.time()
    yield lambda: dlg.finished_ok is not None or time.time() - start > STEP_TIMEOUT
    rec["finished_ok"] = dlg.finished_ok
    rec["log"] = dlg.log_text()
    rec["seconds_pip"] = round(time.time() - start, 1)
    try:
        __import__(module)
        rec["imported"] = module
    except ImportError as exc:
        rec["imported"] = None
        rec["import_error"] = str(exc)
    rec["on_sys_path"] = installer.deps_dir() in sys.path
    site = [i for i, p in enumerate(sys.path) if os.path.basename(os.path.normpath(p)) in ("dist-packages",
                                                                                         "site-packages")]
    rec["before_site_packages"] = bool(site) and sys.path.index(installer.deps_dir()) < min(site)
    rec["after_qgis_python"] = sys.path.index(installer.deps_dir()) > sys.path.index("/usr/share/qgis/python") \
        if "/usr/share/qgis/python" in sys.path else True
    rec["screenshot_done"] = shot("dependency_installer_done", dlg)
    dlg.close()
    # a real failing install (no such package, no index): a clear message in the dialog, no traceback
    dlg = plugin.installer_dialog(packages=["--no-index", "diffunmix-no-such-package==0"])
    dlg.show()
    dlg.install_button.click()
    start = time.time()
    yield lambda: dlg.finished_ok is not None or time.time() - start > STEP_TIMEOUT
    rec["failing_ok"] = dlg.finished_ok
    rec["failing_status"] = dlg.status.text()
    rec["failing_button_enabled"] = dlg.install_button.isEnabled()
    dlg.close()
    # pip itself missing or failing: a clear message, not a traceback
    rec["no_pip_message"] = installer.explain_failure("/usr/bin/python3: No module named pip", 1)
    rec["offline_message"] = installer.explain_failure(
        "WARNING: Retrying ... NewConnectionError('Failed to establish a new connection: [Errno -3] "
        "Temporary failure in name resolution')\nERROR: No matching distribution found for torch", 1)


def step_install_torch(rec):
    """(benchmarks/install_torch.py only) The Install button with the default package, PyTorch; then
    torch imports and the full engine is the unmix default in this session, no restart."""
    from diffunmix.plugin.compat import torch_available

    plugin = plugins["diffunmix"]
    rec["torch_before"] = torch_available()
    dlg = plugin.installer_dialog()
    dlg.show()
    rec["command"] = dlg.python + " " + " ".join(__import__("diffunmix.plugin.installer", fromlist=["x"])
                                                .pip_command())
    started = time.time()
    dlg.install_button.click()
    yield lambda: dlg.finished_ok is not None or time.time() - started > 900
    rec["install_seconds"] = round(time.time() - started, 1)
    rec["finished_ok"] = dlg.finished_ok
    rec["log_tail"] = dlg.log_text()[-3000:]
    rec["torch_after"] = torch_available()
    alg = QgsApplication.processingRegistry().algorithmById("diffunmix:unmix")
    rec["method_default_after"] = alg.parameterDefinition("METHOD").defaultValue()
    rec["method_options_after"] = alg.parameterDefinition("METHOD").options()
    rec["screenshot"] = shot("dependency_installer_torch", dlg)
    dlg.close()
    import torch

    rec["torch_version"] = torch.__version__
    rec["torch_file"] = torch.__file__


def step_full_engine(rec):
    """(benchmarks/install_torch.py only) The full engine, Fast, on a small synthetic scene, in the
    session that has just installed PyTorch."""
    import processing

    folder = os.path.join(OUT, "full")
    os.makedirs(folder, exist_ok=True)
    scene = processing.run("diffunmix:synthesize", {
        "HEIGHT": 24, "WIDTH": 24, "ENDMEMBERS": 3, "SNR": 40.0, "SEED": 3,
        "OUTPUT": os.path.join(folder, "scene.tif"), "OUTPUT_ABUNDANCES": os.path.join(folder, "truth.tif"),
        "OUTPUT_ENDMEMBERS": os.path.join(folder, "truth.csv")})["OUTPUT"]
    yield wait(0.1)
    started = time.time()
    result = processing.run("diffunmix:unmix", {
        "INPUT": scene, "ENDMEMBERS": 3, "METHOD": 0, "QUALITY": 0,
        "OUTPUT": os.path.join(folder, "a.tif"), "OUTPUT_ENDMEMBERS": os.path.join(folder, "e.csv"),
        "OUTPUT_REPORT": os.path.join(folder, "report.json")})
    rec["seconds_unmix"] = round(time.time() - started, 1)
    rec["method"] = json.load(open(result["OUTPUT_REPORT"]))["method"]
    rec["endmember_names"] = result["ENDMEMBER_NAMES"]


STEPS = [step_startup, step_scene, step_unmix_dialog, step_unmix_first, step_unmix_selected, step_batch,
         step_model, step_modeler, step_spectra, step_installer]
if os.environ.get("DIFFUNMIX_DESKTOP_STEPS"):  # e.g. "startup,scene,install_torch" (benchmarks)
    STEPS = [globals()[f"step_{name}"] for name in os.environ["DIFFUNMIX_DESKTOP_STEPS"].split(",")]


# runner -----------------------------------------------------------------------------
def _steps():
    for fn in STEPS:
        rec = REPORT["steps"].setdefault(fn.__name__[5:], {})
        started = time.time()
        try:
            yield from fn(rec)
        except Exception:
            rec["exception"] = traceback.format_exc()
        rec["seconds"] = round(time.time() - started, 2)
        _write()


def _write():
    with open(os.path.join(OUT, "report.json"), "w", encoding="utf-8") as f:
        json.dump(REPORT, f, indent=1, default=str)


_RUNNER = _steps()
_PENDING = [None]


def _tick():
    try:
        while True:
            cond = _PENDING[0]
            if cond is not None and not cond():
                QTimer.singleShot(100, _tick)
                return
            _PENDING[0] = next(_RUNNER)
    except StopIteration:
        REPORT["done"] = True
        _write()
        QTimer.singleShot(200, lambda: QgsApplication.exit(0))
    except Exception:
        REPORT["errors"].append(traceback.format_exc())
        _write()
        QgsApplication.exit(1)


QTimer.singleShot(1500, _tick)  # after QGIS has loaded the plugins and shown the window
