"""Processing algorithm ``diffunmix:evaluate``: scores against reference abundances/endmembers."""

from __future__ import annotations

import os

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP

from .base import DiffUnmixAlgorithm


class EvaluateAlgorithm(DiffUnmixAlgorithm):
    """aRMSE, SAD (Hungarian-matched endmembers) and reconstruction RMSE/PSNR of a result."""

    ABUNDANCES = "ABUNDANCES"
    REFERENCE_ABUNDANCES = "REFERENCE_ABUNDANCES"
    ENDMEMBERS_CSV = "ENDMEMBERS_CSV"
    REFERENCE_ENDMEMBERS_CSV = "REFERENCE_ENDMEMBERS_CSV"
    INPUT = "INPUT"
    OUTPUT = "OUTPUT"
    #: output name -> key of core.classical.metrics.evaluate's scores
    SCORES = {"ARMSE": "armse", "SAD_MEAN_RAD": "sad_mean_rad", "RMSE": "reconstruction_rmse",
              "PSNR": "reconstruction_psnr"}
    RASTER_INPUTS = (ABUNDANCES, REFERENCE_ABUNDANCES, INPUT)
    GROUP_ID = "evaluation"
    SUMMARY = QT_TRANSLATE_NOOP(
        "EvaluateAlgorithm",
        "Scores an unmixing result against a reference: endmembers are matched one to one (Hungarian "
        "method), then the abundance RMSE (aRMSE), the mean spectral angle (SAD, radians) and, with the "
        "input raster, the reconstruction RMSE and PSNR. Give abundances with reference abundances "
        "and/or endmembers with reference endmembers.")
    HELP = {
        ABUNDANCES: (QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Estimated abundances"),
                     QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Abundance raster to score (one band per endmember).")),
        REFERENCE_ABUNDANCES: (
            QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Reference abundances"),
            QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Known abundances on the same grid, one band per endmember."),
        ),
        ENDMEMBERS_CSV: (QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Estimated endmembers (CSV)"),
                         QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Endmember CSV to score.")),
        REFERENCE_ENDMEMBERS_CSV: (
            QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Reference endmembers (CSV)"),
            QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Known endmember spectra, same bands as the estimated ones."),
        ),
        INPUT: (
            QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Input raster (for the reconstruction error)"),
            QT_TRANSLATE_NOOP("EvaluateAlgorithm",
                              "Optional: the unmixed raster, to score how well abundances × endmembers "
                              "reconstruct it (RMSE, PSNR)."),
        ),
        OUTPUT: (
            QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Report"),
            QT_TRANSLATE_NOOP("EvaluateAlgorithm",
                              "The scores as JSON, or as an HTML table when the file name ends in .html."),
        ),
        "ARMSE": (QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Abundance RMSE"), ""),
        "SAD_MEAN_RAD": (QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Mean spectral angle (rad)"), ""),
        "RMSE": (QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Reconstruction RMSE"), ""),
        "PSNR": (QT_TRANSLATE_NOOP("EvaluateAlgorithm", "Reconstruction PSNR (dB)"), ""),
    }

    def name(self) -> str:
        return "evaluate"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("Evaluate unmixing result")

    def tags(self) -> list:
        return self.tr("hyperspectral,unmixing,evaluation,rmse,sad,psnr,accuracy").split(",")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        for name in (self.ABUNDANCES, self.REFERENCE_ABUNDANCES):
            self.add(QgsProcessingParameterRasterLayer(name, self.label(name), optional=True))
        for name in (self.ENDMEMBERS_CSV, self.REFERENCE_ENDMEMBERS_CSV):
            self.add(QgsProcessingParameterFile(name, self.label(name), extension="csv", optional=True))
        self.add(QgsProcessingParameterRasterLayer(self.INPUT, self.label(self.INPUT), optional=True))
        # a file output, not the HTML output QGIS infers from a filter that mentions HTML: the report
        # is JSON unless its name ends in .html
        self.add(QgsProcessingParameterFileDestination(
            self.OUTPUT, self.label(self.OUTPUT), fileFilter=self.tr("JSON files (*.json);;HTML files (*.html)"),
            optional=True, createByDefault=True), create_output=False)
        self.addOutput(QgsProcessingOutputFile(self.OUTPUT, self.label(self.OUTPUT)))
        for name in self.SCORES:
            self.addOutput(QgsProcessingOutputNumber(name, self.label(name)))

    def processAlgorithm(self, parameters, context, feedback) -> dict:  # noqa: N802
        from qgis.core import QgsProcessingException

        from ...core.run.tasks import evaluate_files

        endmembers = self.file_param(parameters, self.ENDMEMBERS_CSV, context)
        reference_endmembers = self.file_param(parameters, self.REFERENCE_ENDMEMBERS_CSV, context)
        abundances = self.files[self.ABUNDANCES]
        if not (abundances and self.files[self.REFERENCE_ABUNDANCES]) \
                and not (endmembers and reference_endmembers) \
                and not (abundances and endmembers and self.files[self.INPUT]):
            raise QgsProcessingException(self.tr(
                "Nothing to compare: give ABUNDANCES with REFERENCE_ABUNDANCES, ENDMEMBERS_CSV with "
                "REFERENCE_ENDMEMBERS_CSV, or ABUNDANCES and ENDMEMBERS_CSV with INPUT (reconstruction error)."))
        report = self.file_output(parameters, self.OUTPUT, context)
        is_html = bool(report) and os.path.splitext(report)[1].lower() in (".html", ".htm")
        scores = self.run_core(
            evaluate_files, self.files[self.ABUNDANCES], self.files[self.REFERENCE_ABUNDANCES],
            endmembers, reference_endmembers, input_path=self.files[self.INPUT], json_path=None if is_html else report,
            html_path=report if is_html else None)
        outputs = {name: scores[key] for name, key in self.SCORES.items() if scores.get(key) is not None}
        for name, value in outputs.items():
            feedback.pushInfo(f"{name}: {value:.5f}")
        if report:
            outputs[self.OUTPUT] = report
        return outputs
