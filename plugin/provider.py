"""The DiffUnmix Processing provider."""

from __future__ import annotations

import os

from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingProvider
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from . import ICON_PATH, PLUGIN_DIR
from .algorithms import algorithm_classes

try:
    from ..core import __version__
except ImportError:  # pragma: no cover - core always ships with the plugin
    __version__ = ""


#: the example workflow shipped with the plugin (rebuilt by scripts/make_example_model.py)
EXAMPLE_MODEL = os.path.join(PLUGIN_DIR, "resources", "models", "diffunmix_example.model3")


#: the example model's inputs in the order a person fills them in (QGIS 3.22 lists a model's
#: inputs by name: HEIGHT, SEED, TRUE_ENDMEMBERS, WIDTH)
EXAMPLE_INPUT_ORDER = ("HEIGHT", "WIDTH", "TRUE_ENDMEMBERS", "SEED")


def example_model():
    """The example model as an algorithm of this provider (``diffunmix:diffunmix_example``), or
    None when its file is missing or unreadable. Its steps (this provider's algorithms) resolve
    only once the provider is registered: :meth:`DiffUnmixPlugin.initProcessing` reloads the
    algorithms after registering it."""
    model = ExampleModel()
    if not os.path.isfile(EXAMPLE_MODEL) or not model.fromFile(EXAMPLE_MODEL):
        return None
    model.order_inputs()
    return model


class ExampleModel(QgsProcessingModelAlgorithm):
    """The shipped example model, its inputs in :data:`EXAMPLE_INPUT_ORDER` (also in each copy
    Processing makes of it for a dialog, :meth:`createInstance`)."""

    def order_inputs(self) -> None:
        names = [p.name() for p in self.parameterDefinitions()]
        first = [n for n in EXAMPLE_INPUT_ORDER if n in names]
        for name in first + [n for n in names if n not in first]:  # re-added in this order
            definition = self.parameterDefinition(name).clone()
            self.removeParameter(name)
            self.addParameter(definition)

    def createInstance(self):  # noqa: N802
        copy = ExampleModel()
        copy.loadVariant(self.toVariant())
        copy.setSourceFilePath(self.sourceFilePath())
        copy.order_inputs()
        return copy


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
        model = example_model()
        if model is not None:  # the shipped example workflow, runnable from the Toolbox
            self.addAlgorithm(model)

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
