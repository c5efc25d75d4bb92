"""Processing algorithm ``diffunmix:unmix``: unmix a hyperspectral raster.

Thin by design: parse the parameters, call :func:`core.pipeline.unmix`, return
the outputs. Everything numeric lives in ``core``.
"""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
)
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP, QCoreApplication

import os

import numpy as np

from ...core import options as core_options
from ...core.io.library import bundled_library_path
from ..compat import torch_available
from ..feedback import FeedbackProgress, run_summary
from .base import DEVICES, QUALITIES, DiffUnmixAlgorithm, enum_options

#: the plugin's package ("diffunmix" when installed), for the Processing widget wrapper's class path
PLUGIN_PACKAGE = __name__.rsplit(".", 3)[0]
#: appended to the full engine's label when PyTorch is missing
NEEDS_TORCH = QT_TRANSLATE_NOOP("UnmixAlgorithm", "(needs PyTorch, not installed)")


class UnmixAlgorithm(DiffUnmixAlgorithm):
    """Estimate endmember spectra and abundance maps from a hyperspectral raster."""

    INPUT = "INPUT"
    ENDMEMBERS = "ENDMEMBERS"
    METHOD = "METHOD"
    QUALITY = "QUALITY"
    MODEL = "MODEL"
    LIBRARY = "LIBRARY"
    BANDS = "BANDS"
    DEVICE = "DEVICE"
    SEED = "SEED"
    RGB_ENDMEMBERS = "RGB_ENDMEMBERS"
    OUTPUT = "OUTPUT"
    OUTPUT_ENDMEMBERS = "OUTPUT_ENDMEMBERS"
    OUTPUT_PLOT = "OUTPUT_PLOT"
    OUTPUT_RESIDUAL = "OUTPUT_RESIDUAL"
    OUTPUT_UNCERTAINTY = "OUTPUT_UNCERTAINTY"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    ENDMEMBER_COUNT = "ENDMEMBER_COUNT"
    ENDMEMBER_NAMES = "ENDMEMBER_NAMES"

    #: (engine value, label) of the METHOD enum, in option order.
    METHODS = enum_options(core_options.METHODS, {
        "full": QT_TRANSLATE_NOOP("UnmixAlgorithm", "Full engine (HybridSTU + diffusion)"),
        "vca-fcls": QT_TRANSLATE_NOOP("UnmixAlgorithm", "VCA + FCLS (classical)"),
    })
    DEVICES = DEVICES
    SUMMARY = QT_TRANSLATE_NOOP(
        "UnmixAlgorithm",
        "Estimates the endmember spectra (pure materials) of a hyperspectral raster and one abundance "
        "map per endmember: the fraction of each material in each pixel, non-negative and summing to one.")
    HELP = {
        ENDMEMBERS: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Number of endmembers (0 = estimate)"),
            QT_TRANSLATE_NOOP(
                "UnmixAlgorithm",
                "How many materials to extract. 0 estimates the number from the data (HySime). Must be "
                "smaller than the number of bands. Ignored with a saved model."),
        ),
        METHOD: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Method"),
            QT_TRANSLATE_NOOP(
                "UnmixAlgorithm",
                "Full engine: a spectral-spatial CNN (HybridSTU) fitted to the scene, its abundances "
                "refined by a diffusion model (DDIM) and the spectra by a second one; needs PyTorch, "
                "takes minutes on a CPU. VCA + FCLS: vertex component analysis then fully constrained "
                "least squares; takes seconds and needs no PyTorch."),
        ),
        MODEL: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Saved model"),
            QT_TRANSLATE_NOOP(
                "UnmixAlgorithm",
                "A model file (.pt) written by 'Train unmixing model': applied instead of fitting the "
                "engine to this raster (same sensor and bands). Uses the full engine and the model's "
                "endmembers; Method and Number of endmembers are then ignored."),
        ),
    }

    def name(self) -> str:
        return "unmix"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("Unmix hyperspectral raster")

    def tags(self) -> list:
        return self.tr("hyperspectral,unmixing,endmember,abundance,vca,fcls,diffusion,spectral").split(",")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.add_input()
        self.add_endmember_count()
        # without PyTorch the full engine cannot run: say so in its label, default to what works
        has_torch = torch_available()
        methods = [self.tr(t) for _, t in self.METHODS]
        if not has_torch:
            methods = [f"{label} {self.tr(NEEDS_TORCH)}" if value == "full" else label
                       for (value, _), label in zip(self.METHODS, methods)]
        default = [v for v, _ in self.METHODS].index("full" if has_torch else "vca-fcls")
        self.add(QgsProcessingParameterEnum(self.METHOD, self.label(self.METHOD), options=methods,
                                            defaultValue=default))
        quality = self.add_quality()
        quality.setMetadata({"widget_wrapper": {"class": f"{PLUGIN_PACKAGE}.plugin.widgets.QualityWidgetWrapper"}})
        self.add(QgsProcessingParameterFile(self.MODEL, self.label(self.MODEL), extension="pt", optional=True),
                 advanced=True)
        self.add_library()  # the dialog offers the bundled library (plugin.widgets); scripts choose their own
        self.add_bands()
        self.add_device()
        self.add_seed()
        self.add_rgb()
        self.add_scheduler()
        self.add_unmix_outputs()
        self.addOutput(QgsProcessingOutputNumber(self.ENDMEMBER_COUNT, self.label(self.ENDMEMBER_COUNT)))
        self.addOutput(QgsProcessingOutputString(self.ENDMEMBER_NAMES, self.label(self.ENDMEMBER_NAMES)))

    def processAlgorithm(self, parameters, context, feedback) -> dict:  # noqa: N802
        from ...core.options import UnmixOptions
        from ...core.pipeline import unmix  # heavy: import at run time

        model = self.file_param(parameters, self.MODEL, context)
        method = self.enum_value(parameters, self.METHOD, context, self.METHODS)
        if method == "full" or model:
            self.require_torch()
        options = UnmixOptions(
            endmembers=0 if model else self.parameterAsInt(parameters, self.ENDMEMBERS, context),
            method=method,  # a model with VCA + FCLS is refused, as on the command line
            model=model,
            quality=self.enum_value(parameters, self.QUALITY, context, QUALITIES),
            library=self.library(parameters, context, feedback),
            device=self.enum_value(parameters, self.DEVICE, context, DEVICES),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            bands=self.text(parameters, self.BANDS, context),
        )
        return run_unmix(self, options, parameters, context, feedback, unmix)

    def library(self, parameters, context, feedback):
        """LIBRARY; the bundled library (the dialog's default choice) is left out, with a note, for a
        raster without wavelengths, which it cannot be matched to: the endmembers are then numbered."""
        from ...core.io.raster import read_info

        library = self.file_param(parameters, self.LIBRARY, context)
        if library and os.path.abspath(library) == str(bundled_library_path()) \
                and read_info(self.files[self.INPUT]).wavelengths_nm is None:
            feedback.pushInfo(self.tr("The raster has no band wavelengths, so the bundled USGS library cannot "
                                      "name its endmembers: they are numbered EM1, EM2, …"))
            return None
        return library


def run_unmix(alg: DiffUnmixAlgorithm, options, parameters, context, feedback, unmix) -> dict:
    """The shared body of ``unmix`` and ``apply``: outputs, one core call, styling."""
    rgb = alg.rgb(parameters, context)
    abundances = alg.tif_output(parameters, "OUTPUT", context)
    endmembers = alg.file_output(parameters, "OUTPUT_ENDMEMBERS", context)
    plot = alg.file_output(parameters, "OUTPUT_PLOT", context)
    residual = alg.tif_output(parameters, "OUTPUT_RESIDUAL", context)
    uncertainty = alg.tif_output(parameters, "OUTPUT_UNCERTAINTY", context)
    report = alg.file_output(parameters, "OUTPUT_REPORT", context)
    if uncertainty:
        options.uncertainty = alg.parameterAsInt(parameters, "UNCERTAINTY_SAMPLES", context)
    options.scheduler = alg.text(parameters, "SCHEDULER", context)
    result = alg.run_core(unmix, alg.files["INPUT"], abundances, endmembers, options=options, plot_path=plot,
                          report_path=report, residual_path=residual, progress=FeedbackProgress(feedback),
                          uncertainty_path=uncertainty)
    for line in run_summary(result.report, residual_mean(residual)):
        feedback.pushInfo(line)
    method = (QCoreApplication.translate("DiffUnmixAlgorithm", "saved model") if options.model else
              "VCA + FCLS" if options.method == "vca-fcls" else
              QCoreApplication.translate("DiffUnmixAlgorithm", "full engine"))
    label = QCoreApplication.translate("DiffUnmixAlgorithm", "{method}, {p} endmembers")
    alg.show_abundances(context, feedback, abundances, result.names, endmembers_csv=endmembers, rgb=rgb,
                        library=options.library, residual=residual, uncertainty=uncertainty,
                        label=label.format(method=method, p=int(result.p)))
    outputs = {"OUTPUT": abundances, "OUTPUT_ENDMEMBERS": endmembers, "ENDMEMBER_COUNT": int(result.p),
               "ENDMEMBER_NAMES": ",".join(result.names)}
    for name, path in (("OUTPUT_PLOT", plot), ("OUTPUT_RESIDUAL", residual), ("OUTPUT_UNCERTAINTY", uncertainty),
                       ("OUTPUT_REPORT", report)):
        if path:
            outputs[name] = path
    return outputs


def residual_mean(path):
    """Mean of a reconstruction-error raster (None without one)."""
    if not path:
        return None
    from osgeo import gdal

    ds = gdal.Open(path)
    if ds is None:
        return None
    band = ds.GetRasterBand(1)
    values = band.ReadAsArray().astype("float64")  # one band: small next to the input
    nodata = band.GetNoDataValue()
    values = values[np.isfinite(values) & ((values != nodata) if nodata is not None else True)]
    return float(values.mean()) if values.size else None
