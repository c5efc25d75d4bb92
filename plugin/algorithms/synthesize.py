"""Processing algorithm ``diffunmix:synthesize``: a synthetic scene with known truth."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP

from ...core import options as core_options
from .base import DiffUnmixAlgorithm, enum_options


class SynthesizeAlgorithm(DiffUnmixAlgorithm):
    """Linear mixtures of library spectra with spatially structured abundances, plus noise."""

    HEIGHT = "HEIGHT"
    WIDTH = "WIDTH"
    ENDMEMBERS = "ENDMEMBERS"
    FAMILY = "FAMILY"
    PURITY = "PURITY"
    SNR = "SNR"
    ILLUMINATION = "ILLUMINATION"
    VARIABILITY = "VARIABILITY"
    SEED = "SEED"
    OUTPUT = "OUTPUT"
    OUTPUT_ABUNDANCES = "OUTPUT_ABUNDANCES"
    OUTPUT_ENDMEMBERS = "OUTPUT_ENDMEMBERS"
    RASTER_INPUTS = ()
    GROUP_ID = "evaluation"
    FAMILIES = enum_options(core_options.FAMILIES, {
        "grf": QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Gaussian random fields"),
        "legendre": QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Legendre polynomials"),
        "mosaic": QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Mosaic (patches with soft edges)"),
    })
    SUMMARY = QT_TRANSLATE_NOOP(
        "SynthesizeAlgorithm",
        "Generates a hyperspectral scene with known truth: endmembers drawn from a spectral library (the "
        "bundled USGS one by default), spatially structured abundance maps that sum to one, and white "
        "noise at a given SNR. Use it to try the algorithms and to score them with 'Evaluate unmixing "
        "result'.")
    HELP = {
        HEIGHT: (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Height (pixels)"),
                 QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Number of rows of the scene.")),
        WIDTH: (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Width (pixels)"),
                QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Number of columns of the scene.")),
        ENDMEMBERS: (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Number of endmembers"),
                     QT_TRANSLATE_NOOP("SynthesizeAlgorithm",
                                       "How many library spectra to mix (at least 2, at least 10° apart).")),
        FAMILY: (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Abundance pattern"),
                 QT_TRANSLATE_NOOP("SynthesizeAlgorithm",
                                   "Spatial structure of the abundance maps: smooth random fields, smooth "
                                   "polynomials, or patches.")),
        PURITY: (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Purity"),
                 QT_TRANSLATE_NOOP("SynthesizeAlgorithm",
                                   "0 = highly mixed pixels, 1 = many nearly pure pixels.")),
        SNR: (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Signal-to-noise ratio (dB)"),
              QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Noise level; 0 = no noise.")),
        ILLUMINATION: (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Illumination variability"),
                       QT_TRANSLATE_NOOP("SynthesizeAlgorithm",
                                         "Standard deviation of a smooth per-pixel brightness factor (shade, "
                                         "topography), e.g. 0.1; 0 = none.")),
        VARIABILITY: (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Within-material variability"),
                      QT_TRANSLATE_NOOP("SynthesizeAlgorithm",
                                        "Each pixel mixes its own smoothly perturbed copies of the spectra, as real "
                                        "materials vary; relative standard deviation per band, e.g. 0.05; 0 = "
                                        "none. The true endmembers are the unperturbed spectra.")),
        SEED: (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Random seed"),
               QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "The same seed gives the same scene.")),
        OUTPUT: (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Scene"),
                 QT_TRANSLATE_NOOP("SynthesizeAlgorithm",
                                   "The synthetic hyperspectral raster (Float32, wavelengths in the metadata).")),
        OUTPUT_ABUNDANCES: (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "True abundances"),
                            QT_TRANSLATE_NOOP("SynthesizeAlgorithm",
                                              "One band per endmember, named after it: the truth to score "
                                              "against.")),
        OUTPUT_ENDMEMBERS: (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "True endmembers"),
                            QT_TRANSLATE_NOOP("SynthesizeAlgorithm",
                                              "CSV of the mixed library spectra (wavelength_nm, one column per "
                                              "endmember).")),
        "LIBRARY": (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Spectral library"),
                    QT_TRANSLATE_NOOP("SynthesizeAlgorithm",
                                      "Library to draw the endmembers from (ENVI .sli/.hdr or CSV); empty: the "
                                      "bundled USGS library.")),
        "ENDMEMBER_NAMES": (QT_TRANSLATE_NOOP("SynthesizeAlgorithm", "Endmember names (comma-separated)"), ""),
    }

    def name(self) -> str:
        return "synthesize"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("Synthesize test scene")

    def tags(self) -> list:
        return self.tr("hyperspectral,synthetic,simulation,test,truth,benchmark").split(",")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        integer = QgsProcessingParameterNumber.Integer
        self.add(QgsProcessingParameterNumber(self.HEIGHT, self.label(self.HEIGHT), type=integer, defaultValue=64,
                                              minValue=1, maxValue=4096))
        self.add(QgsProcessingParameterNumber(self.WIDTH, self.label(self.WIDTH), type=integer, defaultValue=64,
                                              minValue=1, maxValue=4096))
        self.add(QgsProcessingParameterNumber(self.ENDMEMBERS, self.label(self.ENDMEMBERS), type=integer,
                                              defaultValue=4, minValue=2, maxValue=20))
        self.add(QgsProcessingParameterEnum(self.FAMILY, self.label(self.FAMILY),
                                            options=[self.tr(t) for _, t in self.FAMILIES], defaultValue=0))
        self.add(QgsProcessingParameterNumber(self.PURITY, self.label(self.PURITY),
                                              type=QgsProcessingParameterNumber.Double, defaultValue=0.5,
                                              minValue=0.0, maxValue=1.0), advanced=True)
        self.add(QgsProcessingParameterNumber(self.SNR, self.label(self.SNR), type=QgsProcessingParameterNumber.Double,
                                              defaultValue=30.0, minValue=0.0))
        for name in (self.ILLUMINATION, self.VARIABILITY):  # optional: models saved before them stay valid
            self.add(QgsProcessingParameterNumber(name, self.label(name), type=QgsProcessingParameterNumber.Double,
                                                  defaultValue=0.0, minValue=0.0, maxValue=1.0, optional=True),
                     advanced=True)
        self.add(QgsProcessingParameterNumber(self.SEED, self.label(self.SEED), type=integer, defaultValue=0,
                                              minValue=0))
        self.add_library()
        self.add(QgsProcessingParameterRasterDestination(self.OUTPUT, self.label(self.OUTPUT)))
        self.add(QgsProcessingParameterRasterDestination(self.OUTPUT_ABUNDANCES, self.label(self.OUTPUT_ABUNDANCES)))
        self.add_csv_output(self.OUTPUT_ENDMEMBERS)
        self.addOutput(QgsProcessingOutputString("ENDMEMBER_NAMES", self.label("ENDMEMBER_NAMES")))

    def processAlgorithm(self, parameters, context, feedback) -> dict:  # noqa: N802
        from ...core.run.tasks import synthesize

        scene = self.tif_output(parameters, self.OUTPUT, context)
        abundances = self.tif_output(parameters, self.OUTPUT_ABUNDANCES, context)
        endmembers = self.file_output(parameters, self.OUTPUT_ENDMEMBERS, context)
        result = self.run_core(
            synthesize, height=self.parameterAsInt(parameters, self.HEIGHT, context),
            width=self.parameterAsInt(parameters, self.WIDTH, context),
            p=self.parameterAsInt(parameters, self.ENDMEMBERS, context),
            family=self.enum_value(parameters, self.FAMILY, context, self.FAMILIES),
            purity=self.parameterAsDouble(parameters, self.PURITY, context),
            snr_db=self.parameterAsDouble(parameters, self.SNR, context),
            illumination=self.parameterAsDouble(parameters, self.ILLUMINATION, context),
            variability=self.parameterAsDouble(parameters, self.VARIABILITY, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            library=self.file_param(parameters, "LIBRARY", context),
            scene_path=scene, abundances_path=abundances, endmembers_path=endmembers)
        self.show_abundances(context, feedback, abundances, result["names"], endmembers_csv=endmembers)
        return {self.OUTPUT: scene, self.OUTPUT_ABUNDANCES: abundances, self.OUTPUT_ENDMEMBERS: endmembers,
                "ENDMEMBER_NAMES": ",".join(result["names"])}
