"""Processing algorithm ``diffunmix:train``: fit the engine to a raster and save the model."""

from __future__ import annotations

from qgis.core import (
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP

from ...core import options as core_options
from ..feedback import FeedbackProgress
from .base import DEVICES, QUALITIES, DiffUnmixAlgorithm, enum_options


class TrainAlgorithm(DiffUnmixAlgorithm):
    """Fit HybridSTU and both diffusion models to a raster; save a checkpoint for ``apply``."""

    INPUT = "INPUT"
    ENDMEMBERS = "ENDMEMBERS"
    REFERENCE_ABUNDANCES = "REFERENCE_ABUNDANCES"
    STAGE = "STAGE"
    RESUME = "RESUME"
    OUTPUT = "OUTPUT"
    #: (engine stages, label) of the STAGE enum, in option order
    STAGES = ((core_options.STAGES, QT_TRANSLATE_NOOP("TrainAlgorithm", "All three networks, in order")),) + tuple(
        ((stage,), label) for stage, label in enum_options(core_options.STAGES, {
            "hybridstu": QT_TRANSLATE_NOOP("TrainAlgorithm", "HybridSTU only"),
            "abundance-diffusion":
                QT_TRANSLATE_NOOP("TrainAlgorithm", "Abundance diffusion only (needs a model to resume)"),
            "endmember-diffusion":
                QT_TRANSLATE_NOOP("TrainAlgorithm", "Endmember diffusion only (needs a model to resume)"),
        }))
    RASTER_INPUTS = (INPUT, REFERENCE_ABUNDANCES)
    SUMMARY = QT_TRANSLATE_NOOP(
        "TrainAlgorithm",
        "Fits the deep engine (HybridSTU and the abundance and endmember diffusion models) to a raster "
        "and saves it as a model file, to be applied to other rasters of the same sensor with 'Apply "
        "unmixing model'. Semi-blind by default; supervised when reference abundances are given. Needs "
        "PyTorch; takes minutes on a CPU.")
    HELP = {
        ENDMEMBERS: (
            QT_TRANSLATE_NOOP("TrainAlgorithm", "Number of endmembers (0 = estimate)"),
            QT_TRANSLATE_NOOP(
                "TrainAlgorithm",
                "How many materials the model separates. 0: estimated from the data (HySime), or the "
                "band count of the reference abundances when given."),
        ),
        REFERENCE_ABUNDANCES: (
            QT_TRANSLATE_NOOP("TrainAlgorithm", "Reference abundances (optional)"),
            QT_TRANSLATE_NOOP(
                "TrainAlgorithm",
                "Optional raster of known abundances on the input's grid (one band per endmember): "
                "supervised training."),
        ),
        STAGE: (
            QT_TRANSLATE_NOOP("TrainAlgorithm", "Networks to fit"),
            QT_TRANSLATE_NOOP(
                "TrainAlgorithm",
                "All three (default), or one: fit the engine stage by stage, e.g. HybridSTU first, then the "
                "abundance diffusion with the first model as the model to resume."),
        ),
        RESUME: (
            QT_TRANSLATE_NOOP("TrainAlgorithm", "Model to resume (optional)"),
            QT_TRANSLATE_NOOP(
                "TrainAlgorithm",
                "A model file (.pt) to go on from (same bands): its endmembers and fitted networks are kept, "
                "the chosen networks are fitted (further) on this raster."),
        ),
        OUTPUT: (
            QT_TRANSLATE_NOOP("TrainAlgorithm", "Model file"),
            QT_TRANSLATE_NOOP(
                "TrainAlgorithm",
                "The fitted model (.pt): weights, endmembers, band count and wavelengths. Holds tensors "
                "and plain settings only."),
        ),
    }

    def name(self) -> str:
        return "train"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("Train unmixing model")

    def tags(self) -> list:
        return self.tr("hyperspectral,unmixing,training,model,diffusion,checkpoint").split(",")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        self.add_input()
        self.add_endmember_count()
        self.add(QgsProcessingParameterRasterLayer(self.REFERENCE_ABUNDANCES, self.label(self.REFERENCE_ABUNDANCES),
                                                   optional=True))
        self.add_quality()
        self.add(QgsProcessingParameterEnum(self.STAGE, self.label(self.STAGE),
                                            options=[self.tr(t) for _, t in self.STAGES], defaultValue=0),
                 advanced=True)
        self.add(QgsProcessingParameterFile(self.RESUME, self.label(self.RESUME), extension="pt", optional=True),
                 advanced=True)
        self.add_library()
        self.add_bands()
        self.add_device()
        self.add_seed()
        self.add(QgsProcessingParameterFileDestination(self.OUTPUT, self.label(self.OUTPUT),
                                                       fileFilter=self.tr("DiffUnmix models (*.pt)")))
        self.addOutput(QgsProcessingOutputNumber("ENDMEMBER_COUNT", self.label("ENDMEMBER_COUNT")))
        self.addOutput(QgsProcessingOutputString("ENDMEMBER_NAMES", self.label("ENDMEMBER_NAMES")))

    def processAlgorithm(self, parameters, context, feedback) -> dict:  # noqa: N802
        self.require_torch()
        from ...core.options import UnmixOptions

        stages = self.enum_value(parameters, self.STAGE, context, self.STAGES)
        resume = self.file_param(parameters, self.RESUME, context)

        def train(input_path, model_path, opts, progress, reference):  # the import needs torch: inside run_core
            from ...core.deep.run import train_model  # holds the one-engine-at-a-time lock

            return train_model(input_path, model_path, opts, progress, reference, stages=stages, resume=resume)

        options = UnmixOptions(
            endmembers=self.parameterAsInt(parameters, self.ENDMEMBERS, context),
            method="full",
            quality=self.enum_value(parameters, "QUALITY", context, QUALITIES),
            library=self.file_param(parameters, "LIBRARY", context),
            device=self.enum_value(parameters, "DEVICE", context, DEVICES),
            seed=self.parameterAsInt(parameters, "SEED", context),
            bands=self.text(parameters, "BANDS", context),
        )
        model = self.file_output(parameters, self.OUTPUT, context)
        engine, _ = self.run_core(train, self.files[self.INPUT], model, options, FeedbackProgress(feedback),
                                  self.files.get(self.REFERENCE_ABUNDANCES))
        return {self.OUTPUT: model, "ENDMEMBER_COUNT": int(engine.P), "ENDMEMBER_NAMES": ",".join(engine.names)}
