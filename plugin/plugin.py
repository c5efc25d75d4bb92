"""The QGIS plugin object: Processing provider, DiffUnmix menu and toolbar, spectra dock."""

from __future__ import annotations

import os

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, Qt, QTranslator
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QDockWidget

from . import ICON_PATH, PLUGIN_DIR, SPECTRA_ICON_PATH
from .compat import torch_available
from .provider import DiffUnmixProvider

UNMIX_ALGORITHM_ID = "diffunmix:unmix"
#: the unmix dialog's size when opened from the DiffUnmix menu or toolbar (within the screen)
UNMIX_DIALOG_SIZE = (1040, 720)
#: the spectra dock's width when it first opens
SPECTRA_DOCK_WIDTH = 440


def translation_path(locale: str):
    """The compiled translation for a locale ('de', 'de_DE', ...), or None."""
    for code in (locale, locale[:2]):
        path = os.path.join(PLUGIN_DIR, "i18n", f"diffunmix_{code}.qm")
        if code and os.path.exists(path):
            return path
    return None


class DiffUnmixPlugin:
    """DiffUnmix plugin, created by :func:`diffunmix.classFactory`.

    ``qgis_process`` calls only :meth:`initProcessing` (with ``iface=None``);
    the QGIS desktop calls :meth:`initGui`, which also registers the provider
    and adds the *Raster ▸ DiffUnmix* menu, a toolbar and the spectra dock.

    Args:
        iface: the ``QgisInterface``, or ``None`` outside the desktop.
    """

    def __init__(self, iface):
        self.iface = iface
        self.provider: DiffUnmixProvider | None = None
        self.actions: list[QAction] = []
        self.toolbar = None
        self.dock = None
        self._view = None
        self.translator: QTranslator | None = None
        self._install_translator()
        self.menu = self.tr("&DiffUnmix")

    # translations --------------------------------------------------------
    def tr(self, message: str) -> str:
        """Translate a user-visible string (context: the class name, as pylupdate5)."""
        return QCoreApplication.translate("DiffUnmixPlugin", message)

    def _install_translator(self) -> None:
        locale = str(QgsSettings().value("locale/userLocale", "") or "")
        qm_path = translation_path(locale)
        if qm_path:
            translator = QTranslator()
            if translator.load(qm_path):
                QCoreApplication.installTranslator(translator)
                self.translator = translator

    # QGIS plugin API -------------------------------------------------------
    def initProcessing(self) -> None:  # noqa: N802
        """Register the Processing provider (idempotent)."""
        if self.provider is None:
            from .installer import activate

            activate()  # packages installed by Install Dependencies… (PyTorch) import from now on
            provider = DiffUnmixProvider()
            # the registry takes ownership; it refuses (and deletes) a second provider with the same id
            if QgsApplication.processingRegistry().addProvider(provider):
                self.provider = provider
                # once more, now that the provider is registered: the example model's steps are
                # its own algorithms, which it can only look up (outputs, help) from the registry
                provider.refreshAlgorithms()

    def initGui(self) -> None:  # noqa: N802
        """Register the provider; add the menu, the toolbar and the spectra dock's action."""
        self.initProcessing()
        if self.iface is None or self.actions:
            return
        from .styling import add_result_listener

        self.toolbar = self.iface.addToolBar(self.tr("DiffUnmix"))
        self.toolbar.setObjectName("DiffUnmixToolbar")
        self._add_action("diffunmix_unmix", QIcon(ICON_PATH), self.tr("Unmix Hyperspectral Raster…"),
                         self.tr("Estimate endmember spectra and abundance maps"), self.open_unmix_dialog)
        spectra = self._add_action("diffunmix_spectra", QIcon(SPECTRA_ICON_PATH),
                                   self.tr("Endmember Spectra"),
                                   self.tr("Show the endmember spectra of the latest result"),
                                   self.toggle_spectra_dock)
        spectra.setCheckable(True)
        self._add_action("diffunmix_dependencies", QgsApplication.getThemeIcon("/mActionHelpContents.svg"),
                         self.tr("Install Dependencies…"),
                         self.tr("Install PyTorch for the full DiffUnmix engine") if not torch_available()
                         else self.tr("PyTorch is installed: the full engine is available"),
                         self.show_installer, toolbar=False)
        add_result_listener(self.on_result)
        view = self.iface.layerTreeView()
        if view is not None:  # the spectra dock follows the result selected in the Layers panel
            view.currentLayerChanged.connect(self.on_current_layer)
            self._view = view

    def _add_action(self, name, icon, text, tip, slot, toolbar=True) -> QAction:
        action = QAction(icon, text, self.iface.mainWindow())
        action.setObjectName(name)
        action.setToolTip(tip)
        action.triggered.connect(slot)
        self.iface.addPluginToRasterMenu(self.menu, action)
        if toolbar:
            self.toolbar.addAction(action)
        self.actions.append(action)
        return action

    def unload(self) -> None:
        """Remove the actions, toolbar, dock, provider and translator."""
        from .styling import remove_result_listener

        remove_result_listener(self.on_result)
        view = getattr(self, "_view", None)
        if view is not None:
            try:
                view.currentLayerChanged.disconnect(self.on_current_layer)
            except (TypeError, RuntimeError):  # never connected, or the view is gone
                pass
            self._view = None
        for action in self.actions:
            if self.iface is not None:
                self.iface.removePluginRasterMenu(self.menu, action)
            action.deleteLater()
        self.actions = []
        if self.dock is not None:
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.toolbar is not None:
            self.toolbar.deleteLater()
            self.toolbar = None
        if self.provider is not None:
            # the registry owns (and deletes) the provider
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.translator is not None:
            QCoreApplication.removeTranslator(self.translator)
            self.translator = None

    # actions ---------------------------------------------------------------
    def action(self, name: str):
        """The action with object name ``name`` (or None)."""
        return next((a for a in self.actions if a.objectName() == name), None)

    def unmix_dialog(self):
        """The Processing dialog of ``diffunmix:unmix``, not yet shown, sized so that the parameters
        and the help panel both read well (Processing's default is about 690×520)."""
        import processing  # QGIS's processing plugin, loaded with the desktop
        from qgis.PyQt.QtWidgets import QSplitter

        dlg = processing.createAlgorithmDialog(UNMIX_ALGORITHM_ID, {})
        screen = dlg.screen().availableGeometry() if hasattr(dlg, "screen") else None
        width, height = UNMIX_DIALOG_SIZE
        if screen is not None:
            width, height = min(width, screen.width() - 40), min(height, screen.height() - 60)
        dlg.resize(max(width, dlg.width()), max(height, dlg.height()))
        splitter = dlg.findChild(QSplitter)
        if splitter is not None and splitter.count() == 2:
            splitter.setSizes([int(dlg.width() * 0.58), int(dlg.width() * 0.42)])
        return dlg

    def open_unmix_dialog(self) -> None:
        """Open the Processing dialog of ``diffunmix:unmix`` (modal, as the Toolbox does)."""
        dlg = self.unmix_dialog()
        dlg.show()
        dlg.exec_()

    def spectra_dock(self):
        """The spectra dock, created (and docked on the right) on first use."""
        if self.dock is None:
            from .spectra_dock import SpectraDock

            self.dock = SpectraDock(self.iface.mainWindow())
            self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
            # stacked under the Processing Toolbox it would get ~300×260 px, too small to read: share
            # the tallest right-hand dock's place as a tab instead, and widen the right dock area
            window = self.iface.mainWindow()
            others = [d for d in window.findChildren(QDockWidget) if d is not self.dock and d.isVisible()
                      and not d.isFloating() and window.dockWidgetArea(d) == Qt.RightDockWidgetArea]
            if others:
                window.tabifyDockWidget(max(others, key=lambda d: d.height()), self.dock)
            window.resizeDocks([self.dock], [SPECTRA_DOCK_WIDTH], Qt.Horizontal)
            action = self.action("diffunmix_spectra")
            if action is not None:
                self.dock.visibilityChanged.connect(action.setChecked)
        return self.dock

    def toggle_spectra_dock(self, checked=None) -> None:
        dock = self.spectra_dock()
        visible = dock.isHidden() if checked is None else bool(checked)
        if visible:
            dock.setUserVisible(True)  # shows it, and raises it when tabbed behind another dock
        else:
            dock.hide()

    def on_result(self, result: dict) -> None:
        """A run's abundances were loaded: plot its endmembers in the dock."""
        if self.iface is None or not result.get("endmembers_csv"):
            return
        dock = self.spectra_dock()
        dock.show_result(result)
        dock.setUserVisible(True)

    def installer_dialog(self, packages=None):
        """The dependency installer (:class:`plugin.installer.InstallerDialog`), not yet shown."""
        from .installer import InstallerDialog

        return InstallerDialog(self.iface.mainWindow() if self.iface else None, packages=packages,
                               on_installed=self.on_dependencies_installed)

    def on_current_layer(self, layer) -> None:
        """A layer or group was selected in the Layers panel: when it shows a DiffUnmix result (a
        result group: its first layer) and the spectra dock is open, plot that result's spectra."""
        if self.dock is None or not self.dock.isVisible():
            return
        if layer is None and self._view is not None:
            from qgis.core import QgsLayerTree

            node = self._view.currentNode()
            if node is not None and QgsLayerTree.isGroup(node):
                layer = next((n.layer() for n in node.findLayers() if n.layer() is not None), None)
        self.dock.show_layer(layer)

    def show_installer(self) -> None:
        self.installer_dialog().exec_()

    def on_dependencies_installed(self) -> None:
        """PyTorch has just been installed: rebuild the algorithms, so the full engine is offered
        (and is the default) in every dialog opened from now on."""
        if self.provider is not None:
            self.provider.refreshAlgorithms()
        action = self.action("diffunmix_dependencies")
        if action is not None and torch_available():
            action.setToolTip(self.tr("PyTorch is installed: the full engine is available"))
