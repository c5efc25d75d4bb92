"""The QGIS plugin object: registers the Processing provider and a menu entry."""

from __future__ import annotations

import os

from qgis.core import QgsApplication, QgsSettings
from qgis.PyQt.QtCore import QCoreApplication, QTranslator
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

from . import ICON_PATH, PLUGIN_DIR
from .provider import DiffUnmixProvider

UNMIX_ALGORITHM_ID = "diffunmix:unmix"


class DiffUnmixPlugin:
    """DiffUnmix plugin, created by :func:`diffunmix.classFactory`.

    ``qgis_process`` calls only :meth:`initProcessing` (with ``iface=None``);
    the QGIS desktop calls :meth:`initGui`, which also registers the provider.

    Args:
        iface: the ``QgisInterface``, or ``None`` outside the desktop.
    """

    def __init__(self, iface):
        self.iface = iface
        self.provider: DiffUnmixProvider | None = None
        self.actions: list[QAction] = []
        self.translator: QTranslator | None = None
        self._install_translator()
        self.menu = self.tr("&DiffUnmix")

    # translations --------------------------------------------------------
    def tr(self, message: str) -> str:
        """Translate a user-visible string (context: the class name, as pylupdate5)."""
        return QCoreApplication.translate("DiffUnmixPlugin", message)

    def _install_translator(self) -> None:
        locale = str(QgsSettings().value("locale/userLocale", "") or "")[:2]
        qm_path = os.path.join(PLUGIN_DIR, "i18n", f"diffunmix_{locale}.qm")
        if locale and os.path.exists(qm_path):
            translator = QTranslator()
            if translator.load(qm_path):
                QCoreApplication.installTranslator(translator)
                self.translator = translator

    # QGIS plugin API -------------------------------------------------------
    def initProcessing(self) -> None:  # noqa: N802
        """Register the Processing provider (idempotent)."""
        if self.provider is None:
            self.provider = DiffUnmixProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802
        """Register the provider and add the Raster ▸ DiffUnmix menu entry."""
        self.initProcessing()
        if self.iface is None:
            return
        action = QAction(
            QIcon(ICON_PATH),
            self.tr("Unmix Hyperspectral Raster…"),
            self.iface.mainWindow(),
        )
        action.setObjectName("diffunmix_unmix")
        action.setToolTip(self.tr("Estimate endmember spectra and abundance maps"))
        action.triggered.connect(self.open_unmix_dialog)
        self.iface.addPluginToRasterMenu(self.menu, action)
        self.actions.append(action)

    def unload(self) -> None:
        """Remove every menu action, the provider and the translator."""
        for action in self.actions:
            if self.iface is not None:
                self.iface.removePluginRasterMenu(self.menu, action)
            action.deleteLater()
        self.actions = []
        if self.provider is not None:
            # the registry owns (and deletes) the provider
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.translator is not None:
            QCoreApplication.removeTranslator(self.translator)
            self.translator = None

    # actions ---------------------------------------------------------------
    def open_unmix_dialog(self) -> None:
        """Open the Processing dialog of ``diffunmix:unmix``."""
        import processing  # QGIS's processing plugin, loaded with the desktop

        processing.execAlgorithmDialog(UNMIX_ALGORITHM_ID, {})
