"""The plugin shell in a real QGIS: metadata, loading, registration, unloading."""

import configparser
import json
import os
import subprocess
import sys
import textwrap

import pytest
from qgis.core import QgsApplication
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QApplication

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _metadata():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(ROOT, "metadata.txt"), encoding="utf-8")
    return parser["general"]


def test_metadata_is_complete():
    meta = _metadata()
    for key in ("name", "qgisMinimumVersion", "description", "about", "version", "author",
                "email", "repository", "tracker", "homepage", "tags", "category", "icon",
                "experimental", "hasProcessingProvider", "changelog"):
        assert meta.get(key, "").strip(), key
    assert meta["name"] == "DiffUnmix"
    assert meta["qgisMinimumVersion"] == "3.22"
    assert meta["hasProcessingProvider"] == "yes"
    assert meta["category"] == "Raster"
    assert os.path.isfile(os.path.join(ROOT, meta["icon"]))
    from core import __version__

    assert meta["version"] == __version__


def test_qgis_plugin_loader_reads_metadata_starts_and_unloads(qgis_iface, qgis_processing, plugin_parent_dir):
    """The path QGIS itself takes: find the plugin, load, start (initGui), unload."""
    import qgis.utils

    registry = QgsApplication.processingRegistry()
    saved = list(qgis.utils.plugin_paths)
    try:
        qgis.utils.plugin_paths[:] = [plugin_parent_dir]
        qgis.utils.updateAvailablePlugins()
        assert "diffunmix" in qgis.utils.available_plugins
        assert qgis.utils.pluginMetadata("diffunmix", "name") == "DiffUnmix"
        assert qgis.utils.pluginMetadata("diffunmix", "hasProcessingProvider") == "yes"
        assert qgis.utils.loadPlugin("diffunmix")
        assert qgis.utils.startPlugin("diffunmix")
        assert "diffunmix" in qgis.utils.active_plugins
        assert registry.algorithmById("diffunmix:unmix") is not None
        assert qgis.utils.unloadPlugin("diffunmix")  # also drops diffunmix.* from sys.modules
        assert registry.providerById("diffunmix") is None
    finally:
        qgis.utils.plugin_paths[:] = saved
        qgis.utils.updateAvailablePlugins()


def test_root_init_is_light(plugin_parent_dir):
    """``import diffunmix`` imports neither the plugin module nor the engine."""
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {plugin_parent_dir!r})
        import diffunmix
        heavy = [m for m in sys.modules if m.startswith(("diffunmix.", "qgis", "torch"))]
        print(heavy)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_init_gui_registers_provider_and_menu_then_unload_removes_them(qgis_iface, qgis_processing,
                                                                         monkeypatch):
    import diffunmix
    from qgis.gui import QgsBrowserGuiModel

    # The pytest-qgis stub iface answers browserModel() with a MagicMock, which the
    # Processing dialog cannot use: give it a real browser model.
    browser_model = QgsBrowserGuiModel()
    qgis_iface.browserModel.return_value = browser_model
    # An exception in a Qt slot aborts the process unless an excepthook takes it.
    slot_errors = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc: slot_errors.append(exc))

    registry = QgsApplication.processingRegistry()
    assert registry.providerById("diffunmix") is None
    qgis_iface.addPluginToRasterMenu.reset_mock()
    qgis_iface.removePluginRasterMenu.reset_mock()

    plugin = diffunmix.classFactory(qgis_iface)
    plugin.initGui()
    try:
        provider = registry.providerById("diffunmix")
        assert provider is not None
        assert provider.name() == "DiffUnmix"
        assert not provider.icon().isNull()
        alg = registry.algorithmById("diffunmix:unmix")
        assert alg is not None
        assert alg.displayName() == "Unmix hyperspectral raster"
        assert alg.group() == "Unmixing" and alg.groupId() == "unmixing"

        # unmix + spectra dock on the toolbar; the dependency installer in the menu only
        assert [a.objectName() for a in plugin.actions] == ["diffunmix_unmix", "diffunmix_spectra",
                                                            "diffunmix_dependencies"]
        action = plugin.actions[0]
        assert action.text()
        assert not action.icon().isNull()
        assert [c.args for c in qgis_iface.addPluginToRasterMenu.call_args_list] == [
            ("&DiffUnmix", a) for a in plugin.actions]
        assert plugin.toolbar is not None and plugin.toolbar.actions() == plugin.actions[:2]
        # the spectra action has an icon of its own, not QGIS's generic "Add Image"
        from diffunmix.plugin import SPECTRA_ICON_PATH
        from qgis.PyQt.QtGui import QIcon

        def image(icon):
            return icon.pixmap(16, 16).toImage()

        spectra_icon = plugin.action("diffunmix_spectra").icon()
        assert image(spectra_icon) == image(QIcon(SPECTRA_ICON_PATH))
        assert image(spectra_icon) != image(QgsApplication.getThemeIcon("/mActionAddImage.svg"))

        # the spectra action opens (and closes) the plot dock
        plugin.action("diffunmix_spectra").trigger()
        assert plugin.dock is not None and not plugin.dock.isHidden()
        plugin.action("diffunmix_spectra").trigger()
        assert plugin.dock.isHidden()

        # the action opens the Processing dialog of diffunmix:unmix (closed right away)
        seen = []

        polls = []

        def close_dialog():
            dialogs = [w for w in QApplication.topLevelWidgets()
                       if w.isVisible() and hasattr(w, "algorithm") and w.isModal()]
            if not dialogs:  # not shown yet: poll again, for at most 10 s
                polls.append(1)
                if len(polls) < 200:
                    QTimer.singleShot(50, close_dialog)
                return
            seen.append(dialogs[0].algorithm().id())
            dialogs[0].reject()

        QTimer.singleShot(50, close_dialog)
        action.trigger()
        assert not slot_errors, slot_errors
        assert seen == ["diffunmix:unmix"]
    finally:
        plugin.unload()

    assert registry.providerById("diffunmix") is None
    assert registry.algorithmById("diffunmix:unmix") is None
    assert plugin.actions == []
    assert qgis_iface.removePluginRasterMenu.call_count == 3
    assert plugin.dock is None and plugin.toolbar is None


def test_init_processing_is_idempotent_and_unload_twice_is_safe(qgis_iface, qgis_processing):
    import diffunmix

    registry = QgsApplication.processingRegistry()
    plugin = diffunmix.classFactory(None)  # as qgis_process loads it: no iface
    plugin.initProcessing()
    plugin.initProcessing()
    plugin.initGui()  # no iface: provider only, no actions
    assert plugin.actions == []
    assert [p.id() for p in registry.providers()].count("diffunmix") == 1
    plugin.unload()
    plugin.unload()
    assert registry.providerById("diffunmix") is None


def test_without_torch_the_menu_offers_the_installer_and_the_classical_default(qgis_iface, qgis_processing,
                                                                              monkeypatch):
    """torch missing (as seen by the plugin): the menu's action opens the installer dialog; the unmix
    algorithm defaults to VCA + FCLS and labels the full engine as needing PyTorch."""
    import diffunmix
    from diffunmix.plugin import compat, installer
    from diffunmix.plugin import plugin as plugin_module
    from diffunmix.plugin.algorithms import unmix as unmix_module

    for module in (plugin_module, compat, unmix_module):
        monkeypatch.setattr(module, "torch_available", lambda: False)
    plugin = diffunmix.classFactory(qgis_iface)
    plugin.initGui()
    try:
        action = plugin.action("diffunmix_dependencies")
        assert action is not None and action.text() and action not in plugin.toolbar.actions()
        dialog = plugin.installer_dialog()
        assert "not installed" in dialog.status.text() and dialog.install_button.isEnabled()
        assert dialog.python == installer.qgis_python() and dialog.python != sys.executable
        shown = []
        monkeypatch.setattr(installer.InstallerDialog, "exec_", lambda self: shown.append(self))
        action.trigger()
        assert len(shown) == 1 and isinstance(shown[0], installer.InstallerDialog)
        # the CPU build unless there is an NVIDIA GPU: PyTorch's CPU index next to pip's own
        cpu = installer.pip_command(target="/t", build="cpu")
        assert cpu[-1].startswith("torch==") and cpu[cpu.index("--target") + 1] == "/t"
        assert cpu[cpu.index("--extra-index-url") + 1] == installer.CPU_INDEX_URL
        monkeypatch.setattr(installer.sys, "platform", "linux")
        assert "--extra-index-url" not in installer.pip_command(target="/t", build="cuda")  # PyPI's are CUDA
        assert installer.pip_command(["tomli_w==1.0.0"], target="/t")[-1] == "tomli_w==1.0.0"
        alg = QgsApplication.processingRegistry().createAlgorithmById("diffunmix:unmix")
        method = alg.parameterDefinition("METHOD")
        assert method.defaultValue() == 1
        assert method.options()[0].endswith("(needs PyTorch, not installed)")
    finally:
        plugin.unload()


def test_algorithm_contract(diffunmix_plugin):
    from qgis.core import QgsProcessingParameterDefinition

    alg = QgsApplication.processingRegistry().algorithmById("diffunmix:unmix")
    names = [p.name() for p in alg.parameterDefinitions()]
    assert names == ["INPUT", "ENDMEMBERS", "METHOD", "QUALITY", "MODEL", "LIBRARY", "BANDS", "DEVICE", "SEED",
                     "RGB_ENDMEMBERS", "SCHEDULER", "UNCERTAINTY_SAMPLES", "OUTPUT", "OUTPUT_ENDMEMBERS", "OUTPUT_PLOT",
                     "OUTPUT_RESIDUAL", "OUTPUT_UNCERTAINTY", "OUTPUT_REPORT"]
    params = {p.name(): p for p in alg.parameterDefinitions()}
    assert params["ENDMEMBERS"].defaultValue() == 0 and params["ENDMEMBERS"].minimum() == 0
    assert params["METHOD"].defaultValue() == 0
    assert len(params["METHOD"].options()) == 2
    assert len(params["DEVICE"].options()) == 3
    assert params["QUALITY"].defaultValue() == 1 and len(params["QUALITY"].options()) == 3
    assert params["MODEL"].extension() == "pt"
    for optional in ("MODEL", "LIBRARY", "BANDS", "RGB_ENDMEMBERS", "OUTPUT_PLOT", "OUTPUT_RESIDUAL",
                     "OUTPUT_REPORT"):
        assert params[optional].flags() & QgsProcessingParameterDefinition.FlagOptional, optional
    assert not params["OUTPUT_PLOT"].createByDefault()
    assert not params["OUTPUT_RESIDUAL"].createByDefault()
    assert params["OUTPUT_ENDMEMBERS"].defaultFileExtension() == "csv"
    assert params["OUTPUT_PLOT"].defaultFileExtension() == "png"
    assert params["OUTPUT"].defaultFileExtension() == "tif"
    for p in alg.parameterDefinitions():  # help kept as data, one entry per parameter
        assert p.help(), p.name()
        assert p.description() in alg.shortHelpString()
    outputs = {o.name(): o.type() for o in alg.outputDefinitions()}
    assert outputs["ENDMEMBER_COUNT"] == "outputNumber"
    assert outputs["OUTPUT"] == "outputRaster"
    assert outputs["OUTPUT_ENDMEMBERS"] == "outputFile"
    instance = alg.create()
    assert type(instance) is type(alg) and instance is not alg
    assert sorted(a.id() for a in diffunmix_plugin.provider.algorithms()) == sorted([
        f"diffunmix:{n}" for n in ("unmix", "train", "apply", "estimatecount", "extractendmembers", "fcls",
                                   "evaluate", "synthesize", "diffunmix_example")])


def test_feedback_adapter_maps_progress_cancel_and_messages(qgis_app):
    from diffunmix.plugin.feedback import FeedbackProgress
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.messages = []

        def pushInfo(self, info):  # noqa: N802
            self.messages.append(info)

    fb = Recorder()
    progress = FeedbackProgress(fb)
    progress.set_progress(42.0)
    assert fb.progress() == pytest.approx(42.0)
    progress.sub(50, 100).set_progress(50)
    assert fb.progress() == pytest.approx(75.0)
    progress.info("hello")
    assert fb.messages == ["hello"]
    assert not progress.is_canceled()
    progress.check()
    fb.cancel()
    assert progress.is_canceled()
    from diffunmix.core.errors import Cancelled

    with pytest.raises(Cancelled):
        progress.check()
    silent = FeedbackProgress(None)
    silent.set_progress(10)
    silent.info("x")
    assert not silent.is_canceled()


_TORCH_BLOCKED = textwrap.dedent("""
    import importlib.abc, json, os, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, BlockTorch())
    plugin_parent, scene, out_dir = sys.argv[1:4]
    sys.path.insert(0, plugin_parent)
    sys.path.append("/usr/share/qgis/python/plugins")

    from qgis.core import QgsApplication, QgsProcessingException
    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing
    Processing.initialize()
    import processing

    import diffunmix
    plugin = diffunmix.classFactory(None)
    plugin.initProcessing()
    registry = QgsApplication.processingRegistry()
    report = {
        "provider": registry.providerById("diffunmix") is not None,
        "algorithm": registry.algorithmById("diffunmix:unmix") is not None,
    }
    params = {"INPUT": scene, "ENDMEMBERS": 3, "OUTPUT": os.path.join(out_dir, "a_full.tif"),
              "OUTPUT_ENDMEMBERS": os.path.join(out_dir, "e_full.csv")}
    try:
        processing.run("diffunmix:unmix", dict(params, METHOD=0))
        report["full_error"] = None
    except QgsProcessingException as exc:
        report["full_error"] = str(exc)
    res = processing.run("diffunmix:unmix", dict(
        params, METHOD=1, OUTPUT=os.path.join(out_dir, "a.tif"),
        OUTPUT_ENDMEMBERS=os.path.join(out_dir, "e.csv")))
    report["classical_count"] = res["ENDMEMBER_COUNT"]
    report["torch_imported"] = "torch" in sys.modules
    plugin.unload()
    report["unloaded"] = registry.providerById("diffunmix") is None
    print("REPORT " + json.dumps(report), flush=True)
    os._exit(0)  # skip QGIS teardown: the report is what matters
""")


def test_plugin_loads_and_classical_method_runs_without_torch(tmp_path, mixture_scene, plugin_parent_dir):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               QGIS_CUSTOM_CONFIG_PATH=str(tmp_path / "profile"))
    env.pop("QGIS_OPTIONS_PATH", None)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", _TORCH_BLOCKED, plugin_parent_dir, mixture_scene["path"], str(out_dir)],
        capture_output=True, text=True, timeout=300, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(lines[-1][len("REPORT "):])
    assert report["provider"] and report["algorithm"]
    assert report["full_error"] and "Install Dependencies" in report["full_error"]
    assert report["classical_count"] == 3
    assert not report["torch_imported"]
    assert report["unloaded"]
    assert sorted(os.listdir(out_dir)) == ["a.tif", "e.csv"]

