"""Processing algorithm ``diffunmix:fcls``: abundances for given endmembers (baseline)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterDestination,
)
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP

from ..feedback import FeedbackProgress
from .base import DiffUnmixAlgorithm


class FclsAlgorithm(DiffUnmixAlgorithm):
    """Fully constrained least squares abundances of a raster for an endmember CSV."""

    INPUT = "INPUT"
    ENDMEMBERS_CSV = "ENDMEMBERS_CSV"
    OUTPUT = "OUTPUT"
    SUMMARY = QT_TRANSLATE_NOOP(
        "FclsAlgorithm",
        "Computes one abundance map per given endmember with fully constrained least squares (FCLS): "
        "non-negative fractions summing to one that best reconstruct each pixel. The classical baseline; "
        "fast, no PyTorch needed.")
    HELP = {
        ENDMEMBERS_CSV: (
            QT_TRANSLATE_NOOP("FclsAlgorithm", "Endmember spectra (CSV)"),
            QT_TRANSLATE_NOOP(
                "FclsAlgorithm",
                "CSV as written by 'Extract endmembers' or 'Unmix hyperspectral raster': a wavelength_nm "
                "(or band) column and one column per endmember; resampled by wavelength when its bands "
                "differ from the raster's."),
        ),
    }

    def name(self) -> str:
        return "fcls"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("Abundances for given endmembers (FCLS)")

    def tags(self) -> list:
        return self.tr("hyperspectral,abundance,fcls,least squares,baseline").split(",")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.add_input()
        self.add(QgsProcessingParameterFile(self.ENDMEMBERS_CSV, self.label(self.ENDMEMBERS_CSV), extension="csv"))
        self.add_bands()
        self.add_rgb()
        self.add(QgsProcessingParameterRasterDestination(self.OUTPUT, self.label(self.OUTPUT)))
        self.addOutput(QgsProcessingOutputNumber("ENDMEMBER_COUNT", self.label("ENDMEMBER_COUNT")))

    def processAlgorithm(self, parameters, context, feedback) -> dict:  # noqa: N802
        from ...core.run.tasks import fcls_raster

        rgb = self.rgb(parameters, context)
        csv_path = self.file_param(parameters, self.ENDMEMBERS_CSV, context)
        out = self.tif_output(parameters, self.OUTPUT, context)
        result = self.run_core(fcls_raster, self.files[self.INPUT], csv_path, out,
                               bands=self.text(parameters, "BANDS", context), progress=FeedbackProgress(feedback))
        self.show_abundances(context, feedback, out, result["names"], endmembers_csv=csv_path, rgb=rgb)
        return {self.OUTPUT: out, "ENDMEMBER_COUNT": result["p"]}
