"""Processing algorithm ``diffunmix:apply``: apply a saved model to a raster (batch workhorse)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFile,
)
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP

from .base import DEVICES, DiffUnmixAlgorithm
from .unmix import run_unmix


class ApplyAlgorithm(DiffUnmixAlgorithm):
    """Unmix a raster with a model fitted once by ``train`` (no fitting: fast)."""

    INPUT = "INPUT"
    MODEL = "MODEL"
    SUMMARY = QT_TRANSLATE_NOOP(
        "ApplyAlgorithm",
        "Unmixes a raster with a saved model (written by 'Train unmixing model') instead of fitting the "
        "engine again: fast, and the same endmembers for every raster. Made for the batch dialog: one "
        "row per raster of the same sensor. Needs PyTorch.")
    HELP = {
        MODEL: (
            QT_TRANSLATE_NOOP("ApplyAlgorithm", "Model"),
            QT_TRANSLATE_NOOP(
                "ApplyAlgorithm",
                "Model file (.pt) written by 'Train unmixing model'. The raster must have the bands the "
                "model was trained on (the same band subset)."),
        ),
    }

    def name(self) -> str:
        return "apply"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("Apply unmixing model")

    def tags(self) -> list:
        return self.tr("hyperspectral,unmixing,model,batch,checkpoint,abundance").split(",")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.add_input()
        self.add(QgsProcessingParameterFile(self.MODEL, self.label(self.MODEL), extension="pt"))
        self.add_library()
        self.add_bands()
        self.add_device()
        self.add_seed()
        self.add_rgb()
        self.add_scheduler()
        self.add_unmix_outputs()
        self.addOutput(QgsProcessingOutputNumber("ENDMEMBER_COUNT", self.label("ENDMEMBER_COUNT")))
        self.addOutput(QgsProcessingOutputString("ENDMEMBER_NAMES", self.label("ENDMEMBER_NAMES")))

    def processAlgorithm(self, parameters, context, feedback) -> dict:  # noqa: N802
        from ...core.options import UnmixOptions
        from ...core.pipeline import unmix

        self.require_torch()
        options = UnmixOptions(
            method="full",
            model=self.file_param(parameters, self.MODEL, context),
            library=self.file_param(parameters, "LIBRARY", context),
            device=self.enum_value(parameters, "DEVICE", context, DEVICES),
            seed=self.parameterAsInt(parameters, "SEED", context),
            bands=self.text(parameters, "BANDS", context),
        )
        return run_unmix(self, options, parameters, context, feedback, unmix)
