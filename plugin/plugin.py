"""The QGIS plugin object: Processing provider, DiffUnmix menu and toolbar, spectra dock."""

from __future__ import annotations

import os

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, Qt, QTranslator
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction, QMessageBox

from . import ICON_PATH, PLUGIN_DIR
from .compat import dependency_help_text, torch_available
from .provider import DiffUnmixProvider

UNMIX_ALGORITHM_ID = "diffunmix:unmix"


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
        spectra = self._add_action("diffunmix_spectra", QgsApplication.getThemeIcon("/mActionAddImage.svg"),
                                   self.tr("Endmember Spectra"),
                                   self.tr("Show the endmember spectra of the latest result"),
                                   self.toggle_spectra_dock)
        spectra.setCheckable(True)
        if not torch_available():
            self._add_action("diffunmix_dependencies", QgsApplication.getThemeIcon("/mActionHelpContents.svg"),
                             self.tr("Install Dependencies…"),
                             self.tr("How to install PyTorch for the full DiffUnmix engine"),
                             self.show_dependency_help, toolbar=False)
        add_result_listener(self.on_result)

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

    def open_unmix_dialog(self) -> None:
        """Open the Processing dialog of ``diffunmix:unmix``."""
        import processing  # QGIS's processing plugin, loaded with the desktop

        processing.execAlgorithmDialog(UNMIX_ALGORITHM_ID, {})

    def spectra_dock(self):
        """The spectra dock, created (and docked on the right) on first use."""
        if self.dock is None:
            from .spectra_dock import SpectraDock

            self.dock = SpectraDock(self.iface.mainWindow())
            self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
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

    def show_dependency_help(self) -> None:
        QMessageBox.information(self.iface.mainWindow(), self.tr("DiffUnmix: install dependencies"),
                                dependency_help_text())
