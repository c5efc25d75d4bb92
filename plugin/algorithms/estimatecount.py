"""Processing algorithm ``diffunmix:estimatecount``: the number of endmembers (HySime)."""

from __future__ import annotations

from qgis.core import QgsProcessingOutputNumber
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP

from ..feedback import FeedbackProgress
from .base import DiffUnmixAlgorithm


class EstimateCountAlgorithm(DiffUnmixAlgorithm):
    """HySime estimate of the number of endmembers, as a number output for models."""

    INPUT = "INPUT"
    ENDMEMBER_COUNT = "ENDMEMBER_COUNT"
    BAND_COUNT = "BAND_COUNT"
    GROUP_ID = "endmembers"
    SUMMARY = QT_TRANSLATE_NOOP(
        "EstimateCountAlgorithm",
        "Estimates how many endmembers (materials) a hyperspectral raster holds with HySime (signal "
        "subspace identification from the noise and signal correlation). The number is an output that "
        "the graphical modeler can pass to 'Unmix hyperspectral raster' or 'Extract endmembers'.")
    HELP = {
        ENDMEMBER_COUNT: (QT_TRANSLATE_NOOP("EstimateCountAlgorithm", "Estimated number of endmembers"), ""),
        BAND_COUNT: (QT_TRANSLATE_NOOP("EstimateCountAlgorithm", "Number of bands used"), ""),
    }

    def name(self) -> str:
        return "estimatecount"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("Estimate number of endmembers")

    def tags(self) -> list:
        return self.tr("hyperspectral,endmember,hysime,count,subspace").split(",")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.add_input()
        self.add_bands()
        self.add_seed()
        self.addOutput(QgsProcessingOutputNumber(self.ENDMEMBER_COUNT, self.label(self.ENDMEMBER_COUNT)))
        self.addOutput(QgsProcessingOutputNumber(self.BAND_COUNT, self.label(self.BAND_COUNT)))

    def processAlgorithm(self, parameters, context, feedback) -> dict:  # noqa: N802
        from ...core.run.tasks import count_endmembers

        result = self.run_core(count_endmembers, self.files[self.INPUT], bands=self.text(parameters, "BANDS", context),
                               seed=self.parameterAsInt(parameters, "SEED", context),
                               progress=FeedbackProgress(feedback))
        feedback.pushInfo(self.tr("Estimated number of endmembers: {count}").format(count=result["endmembers"]))
        if result.get("warning"):
            feedback.pushWarning(result["warning"])
        return {self.ENDMEMBER_COUNT: result["endmembers"], self.BAND_COUNT: result["bands"]}
