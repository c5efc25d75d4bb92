"""The DiffUnmix Processing provider."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from . import ICON_PATH
from .algorithms import algorithm_classes

try:
    from ..core import __version__
except ImportError:  # pragma: no cover - core always ships with the plugin
    __version__ = ""


class DiffUnmixProvider(QgsProcessingProvider):
    """Provider ``diffunmix``: hyperspectral unmixing algorithms."""

    def id(self) -> str:
        return "diffunmix"

    def name(self) -> str:
        return self.tr("DiffUnmix")

    def longName(self) -> str:  # noqa: N802
        return f"{self.name()} {__version__}".strip()

    def icon(self) -> QIcon:
        return QIcon(ICON_PATH)

    def svgIconPath(self) -> str:  # noqa: N802
        return ICON_PATH

    def loadAlgorithms(self) -> None:  # noqa: N802
        for cls in algorithm_classes():
            self.addAlgorithm(cls())

    def versionInfo(self) -> str:  # noqa: N802
        return __version__

    # the engine writes files only, rasters as GeoTIFF
    def supportsNonFileBasedOutput(self) -> bool:  # noqa: N802
        return False

    def supportedOutputRasterLayerExtensions(self) -> list:  # noqa: N802
        return ["tif"]

    def defaultRasterFileExtension(self) -> str:  # noqa: N802
        return "tif"

    def tr(self, message: str) -> str:
        return QCoreApplication.translate("DiffUnmixProvider", message)
