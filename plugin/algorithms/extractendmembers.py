"""Processing algorithm ``diffunmix:extractendmembers``: endmember spectra to a CSV."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
)
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP

from ..feedback import FeedbackProgress
from .base import DiffUnmixAlgorithm


class ExtractEndmembersAlgorithm(DiffUnmixAlgorithm):
    """VCA (from the data) or library-guided endmember extraction."""

    INPUT = "INPUT"
    ENDMEMBERS = "ENDMEMBERS"
    METHOD = "METHOD"
    OUTPUT = "OUTPUT"
    GROUP_ID = "endmembers"
    METHODS = (
        ("vca", QT_TRANSLATE_NOOP("ExtractEndmembersAlgorithm", "VCA (from the data)")),
        ("library", QT_TRANSLATE_NOOP("ExtractEndmembersAlgorithm", "Library-guided (choose library spectra)")),
        ("robust", QT_TRANSLATE_NOOP("ExtractEndmembersAlgorithm",
                                     "Noise-robust (denoised VCA, minimum volume or representative spectra)")),
    )
    SUMMARY = QT_TRANSLATE_NOOP(
        "ExtractEndmembersAlgorithm",
        "Extracts endmember spectra from a hyperspectral raster with vertex component analysis (VCA), or "
        "chooses the library spectra that best explain it, and writes them to a CSV that 'Abundances for "
        "given endmembers (FCLS)' reads.")
    HELP = {
        ENDMEMBERS: (
            QT_TRANSLATE_NOOP("ExtractEndmembersAlgorithm", "Number of endmembers (0 = estimate)"),
            QT_TRANSLATE_NOOP("ExtractEndmembersAlgorithm",
                              "How many spectra to extract; 0 estimates the number (HySime)."),
        ),
        METHOD: (
            QT_TRANSLATE_NOOP("ExtractEndmembersAlgorithm", "Method"),
            QT_TRANSLATE_NOOP(
                "ExtractEndmembersAlgorithm",
                "VCA: the purest pixels' spectra, named after the closest library spectra when a library "
                "is given. Library-guided: library spectra chosen to explain the data (needs a library). "
                "Noise-robust: the full engine's start, slower and more accurate: VCA on spatially denoised "
                "pixels, then the smallest simplex that holds the data (endmembers no pixel shows pure), or, "
                "when the materials vary within the scene, the mean spectrum of each material's core."),
        ),
        OUTPUT: (
            QT_TRANSLATE_NOOP("ExtractEndmembersAlgorithm", "Endmember spectra"),
            QT_TRANSLATE_NOOP(
                "ExtractEndmembersAlgorithm",
                "CSV: first column wavelength_nm (or band), then one column per endmember."),
        ),
    }

    def name(self) -> str:
        return "extractendmembers"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("Extract endmembers")

    def tags(self) -> list:
        return self.tr("hyperspectral,endmember,vca,library,spectra,extraction").split(",")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.add_input()
        self.add_endmember_count()
        self.add(QgsProcessingParameterEnum(self.METHOD, self.label(self.METHOD),
                                            options=[self.tr(t) for _, t in self.METHODS], defaultValue=0))
        self.add_library()
        self.add_bands()
        self.add_seed()
        self.add_csv_output(self.OUTPUT)
        self.addOutput(QgsProcessingOutputNumber("ENDMEMBER_COUNT", self.label("ENDMEMBER_COUNT")))
        self.addOutput(QgsProcessingOutputString("ENDMEMBER_NAMES", self.label("ENDMEMBER_NAMES")))

    def processAlgorithm(self, parameters, context, feedback) -> dict:  # noqa: N802
        from qgis.core import QgsProcessingException

        from ...core.run.tasks import extract_endmembers

        method = self.enum_value(parameters, self.METHOD, context, self.METHODS)
        library = self.file_param(parameters, "LIBRARY", context)
        if method == "library" and not library:
            raise QgsProcessingException(self.tr("The library-guided METHOD needs a spectral LIBRARY."))
        out = self.file_output(parameters, self.OUTPUT, context)
        result = self.run_core(
            extract_endmembers, self.files[self.INPUT], out,
            p=self.parameterAsInt(parameters, self.ENDMEMBERS, context), library=library, method=method,
            bands=self.text(parameters, "BANDS", context),
            seed=self.parameterAsInt(parameters, "SEED", context),
            progress=FeedbackProgress(feedback))
        return {self.OUTPUT: out, "ENDMEMBER_COUNT": result["p"], "ENDMEMBER_NAMES": ",".join(result["names"])}
