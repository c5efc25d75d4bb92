"""Processing algorithm ``diffunmix:unmix``: unmix a hyperspectral raster.

Thin by design: parse the parameters, call :func:`core.pipeline.unmix`, return
the outputs. Everything numeric lives in ``core``.
"""

from __future__ import annotations

import os
import re

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)
from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP, QCoreApplication
from qgis.PyQt.QtGui import QIcon

from ...core.errors import Cancelled, UnmixError
from .. import ICON_PATH
from ..compat import is_torch_import_error, torch_available, torch_missing_message
from ..feedback import FeedbackProgress

_CTX = "UnmixAlgorithm"  # translation context of every string in this file

# GDAL subdataset syntax, e.g. NETCDF:"/data/x.nc":radiance or HDF5:/data/x.h5://cube
_SUBDATASET = re.compile(r"^[A-Za-z0-9_]+:")


class UnmixAlgorithm(QgsProcessingAlgorithm):
    """Estimate endmember spectra and abundance maps from a hyperspectral raster."""

    INPUT = "INPUT"
    ENDMEMBERS = "ENDMEMBERS"
    METHOD = "METHOD"
    LIBRARY = "LIBRARY"
    BANDS = "BANDS"
    DEVICE = "DEVICE"
    SEED = "SEED"
    OUTPUT = "OUTPUT"
    OUTPUT_ENDMEMBERS = "OUTPUT_ENDMEMBERS"
    OUTPUT_PLOT = "OUTPUT_PLOT"
    OUTPUT_REPORT = "OUTPUT_REPORT"
    ENDMEMBER_COUNT = "ENDMEMBER_COUNT"
    ENDMEMBER_NAMES = "ENDMEMBER_NAMES"

    #: (engine value, label) of the METHOD enum, in option order.
    METHODS = (
        ("full", QT_TRANSLATE_NOOP("UnmixAlgorithm", "Full engine (HybridSTU + diffusion)")),
        ("vca-fcls", QT_TRANSLATE_NOOP("UnmixAlgorithm", "VCA + FCLS (classical)")),
    )
    #: (engine value, label) of the DEVICE enum, in option order.
    DEVICES = (
        ("auto", QT_TRANSLATE_NOOP("UnmixAlgorithm", "Automatic (CUDA GPU when available)")),
        ("cpu", QT_TRANSLATE_NOOP("UnmixAlgorithm", "CPU")),
        ("cuda", QT_TRANSLATE_NOOP("UnmixAlgorithm", "CUDA GPU")),
    )

    #: Parameter help kept as data: name -> (label, help). Translated on use.
    HELP = {
        INPUT: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Hyperspectral raster"),
            QT_TRANSLATE_NOOP(
                "UnmixAlgorithm",
                "Raster file with one band per wavelength (GeoTIFF, ENVI or any "
                "format GDAL reads), e.g. reflectance. Pixels with nodata in any "
                "band and bands flagged bad (ENVI bbl) are skipped. The layer "
                "must be stored in a file.",
            ),
        ),
        ENDMEMBERS: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Number of endmembers (0 = estimate)"),
            QT_TRANSLATE_NOOP(
                "UnmixAlgorithm",
                "How many materials to extract. 0 estimates the number from the "
                "data (HySime). Must be smaller than the number of bands.",
            ),
        ),
        METHOD: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Method"),
            QT_TRANSLATE_NOOP(
                "UnmixAlgorithm",
                "Full engine: a spectral-spatial CNN (HybridSTU) fitted to the "
                "scene, its abundances refined by a diffusion model (DDIM) and the "
                "spectra by a second one; needs PyTorch, takes minutes on a CPU. "
                "VCA + FCLS: vertex component analysis then fully constrained "
                "least squares; takes seconds and needs no PyTorch.",
            ),
        ),
        LIBRARY: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Spectral library"),
            QT_TRANSLATE_NOOP(
                "UnmixAlgorithm",
                "Optional library of reference spectra (ENVI .sli/.hdr, or CSV with "
                "a wavelength column and one column per spectrum), resampled to "
                "the raster's wavelengths. It guides the endmember search and "
                "names the endmembers.",
            ),
        ),
        BANDS: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Band subset"),
            QT_TRANSLATE_NOOP(
                "UnmixAlgorithm",
                "Optional 1-based bands to use, e.g. '1-50,60,70-90'. Empty: every "
                "band not flagged bad.",
            ),
        ),
        DEVICE: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Device"),
            QT_TRANSLATE_NOOP(
                "UnmixAlgorithm",
                "Where the full engine runs. Automatic uses a CUDA GPU when one is "
                "available, else the CPU.",
            ),
        ),
        SEED: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Random seed"),
            QT_TRANSLATE_NOOP(
                "UnmixAlgorithm", "The same seed and inputs give the same result."
            ),
        ),
        OUTPUT: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Abundances"),
            QT_TRANSLATE_NOOP(
                "UnmixAlgorithm",
                "GeoTIFF with one Float32 band per endmember (band descriptions are "
                "the endmember names): fractions in [0, 1] that sum to one, on the "
                "input's grid, nodata where the input had no valid value.",
            ),
        ),
        OUTPUT_ENDMEMBERS: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Endmember spectra"),
            QT_TRANSLATE_NOOP(
                "UnmixAlgorithm",
                "CSV: first column wavelength_nm (or band when the raster has no "
                "wavelengths), then one column per endmember, in the order of the "
                "abundance bands.",
            ),
        ),
        OUTPUT_PLOT: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Endmember plot"),
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Optional PNG plot of the endmember spectra."),
        ),
        OUTPUT_REPORT: (
            QT_TRANSLATE_NOOP("UnmixAlgorithm", "Report"),
            QT_TRANSLATE_NOOP(
                "UnmixAlgorithm", "Optional JSON report: parameters, timings and diagnostics."
            ),
        ),
    }

    # identity ----------------------------------------------------------------
    def name(self) -> str:
        return "unmix"

    def displayName(self) -> str:  # noqa: N802
        return self.tr("Unmix hyperspectral raster")

    def group(self) -> str:
        return self.tr("Unmixing")

    def groupId(self) -> str:  # noqa: N802
        return "unmixing"

    def tags(self) -> list:
        return self.tr(
            "hyperspectral,unmixing,endmember,abundance,vca,fcls,diffusion,spectral"
        ).split(",")

    def icon(self) -> QIcon:
        return QIcon(ICON_PATH)

    def shortHelpString(self) -> str:  # noqa: N802
        summary = self.tr(
            "Estimates the endmember spectra (pure materials) of a hyperspectral "
            "raster and one abundance map per endmember: the fraction of each "
            "material in each pixel, non-negative and summing to one."
        )
        items = "".join(
            f"<dt><b>{self.tr(label)}</b></dt><dd>{self.tr(text)}</dd>"
            for label, text in self.HELP.values()
        )
        return f"<p>{summary}</p><dl>{items}</dl>"

    def helpUrl(self) -> str:  # noqa: N802
        return "https://example.org/diffunmix"

    def createInstance(self) -> "UnmixAlgorithm":  # noqa: N802
        return type(self)()

    def tr(self, message: str) -> str:
        return QCoreApplication.translate(_CTX, message)

    # parameters --------------------------------------------------------------
    def initAlgorithm(self, config=None) -> None:  # noqa: N802
        label = self._label
        self._add(QgsProcessingParameterRasterLayer(self.INPUT, label(self.INPUT)))
        self._add(
            QgsProcessingParameterNumber(
                self.ENDMEMBERS,
                label(self.ENDMEMBERS),
                type=QgsProcessingParameterNumber.Integer,
                defaultValue=0,
                minValue=0,
            )
        )
        self._add(
            QgsProcessingParameterEnum(
                self.METHOD,
                label(self.METHOD),
                options=[self.tr(text) for _, text in self.METHODS],
                defaultValue=0,
            )
        )
        self._add(
            QgsProcessingParameterFile(
                self.LIBRARY,
                label(self.LIBRARY),
                behavior=QgsProcessingParameterFile.File,
                optional=True,
                fileFilter=self.tr("Spectral libraries (*.csv *.sli *.hdr);;All files (*.*)"),
            )
        )
        self._add(QgsProcessingParameterString(self.BANDS, label(self.BANDS), optional=True))
        self._add(
            QgsProcessingParameterEnum(
                self.DEVICE,
                label(self.DEVICE),
                options=[self.tr(text) for _, text in self.DEVICES],
                defaultValue=0,
            ),
            advanced=True,
        )
        self._add(
            QgsProcessingParameterNumber(
                self.SEED,
                label(self.SEED),
                type=QgsProcessingParameterNumber.Integer,
                defaultValue=0,
                minValue=0,
            ),
            advanced=True,
        )
        self._add(QgsProcessingParameterRasterDestination(self.OUTPUT, label(self.OUTPUT)))
        self._add(
            QgsProcessingParameterFileDestination(
                self.OUTPUT_ENDMEMBERS,
                label(self.OUTPUT_ENDMEMBERS),
                fileFilter=self.tr("CSV files (*.csv)"),
            )
        )
        self._add(
            QgsProcessingParameterFileDestination(
                self.OUTPUT_PLOT,
                label(self.OUTPUT_PLOT),
                fileFilter=self.tr("PNG images (*.png)"),
                optional=True,
                createByDefault=False,
            )
        )
        self._add(
            QgsProcessingParameterFileDestination(
                self.OUTPUT_REPORT,
                label(self.OUTPUT_REPORT),
                fileFilter=self.tr("JSON files (*.json)"),
                optional=True,
                createByDefault=False,
            )
        )
        self.addOutput(
            QgsProcessingOutputNumber(self.ENDMEMBER_COUNT, self.tr("Number of endmembers"))
        )
        self.addOutput(
            QgsProcessingOutputString(
                self.ENDMEMBER_NAMES, self.tr("Endmember names (comma-separated)")
            )
        )

    def _label(self, name: str) -> str:
        return self.tr(self.HELP[name][0])

    def _add(self, param: QgsProcessingParameterDefinition, advanced: bool = False) -> None:
        param.setHelp(self.tr(self.HELP[param.name()][1]))
        if advanced:
            param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(param)

    # running -----------------------------------------------------------------
    def prepareAlgorithm(self, parameters, context, feedback) -> bool:  # noqa: N802
        # Runs in the main thread: resolve the project layer here, not in the worker.
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.tr("The input raster could not be loaded."))
        self._input_path = self._file_source(layer)
        return True

    def _file_source(self, layer) -> str:
        """The GDAL-openable path of a file-based raster layer.

        Raises:
            QgsProcessingException: the layer is not read from a file by GDAL
                (a web service, a database, a memory layer, ...).
        """
        source = layer.source().split("|")[0]  # drop provider options
        is_file = (
            os.path.isfile(source)
            or source.startswith("/vsi")
            or (_SUBDATASET.match(source) is not None and not os.path.exists(source))
        )
        if layer.providerType() != "gdal" or not is_file:
            raise QgsProcessingException(
                self.tr(
                    "Layer '{name}' is not a raster file (provider '{provider}'). "
                    "Save it as a GeoTIFF first (Export ▸ Save As…)."
                ).format(name=layer.name(), provider=layer.providerType())
            )
        return source

    def processAlgorithm(self, parameters, context, feedback) -> dict:  # noqa: N802
        from ...core.pipeline import UnmixOptions, unmix  # heavy: import at run time

        method = self.METHODS[self.parameterAsEnum(parameters, self.METHOD, context)][0]
        device = self.DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)][0]
        if method == "full" and not torch_available():
            raise QgsProcessingException(torch_missing_message())
        options = UnmixOptions(
            endmembers=self.parameterAsInt(parameters, self.ENDMEMBERS, context),
            method=method,
            library=self.parameterAsFile(parameters, self.LIBRARY, context) or None,
            device=device,
            seed=self.parameterAsInt(parameters, self.SEED, context),
            bands=self.parameterAsString(parameters, self.BANDS, context).strip() or None,
        )
        abundances = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if os.path.splitext(abundances)[1].lower() not in (".tif", ".tiff"):
            raise QgsProcessingException(
                self.tr("The abundances are written as GeoTIFF: give them a .tif file name, not {path}.").format(
                    path=abundances
                )
            )
        endmembers = self.parameterAsFileOutput(parameters, self.OUTPUT_ENDMEMBERS, context)
        plot = self.parameterAsFileOutput(parameters, self.OUTPUT_PLOT, context) or None
        report = self.parameterAsFileOutput(parameters, self.OUTPUT_REPORT, context) or None

        try:
            result = unmix(
                self._input_path,
                abundances,
                endmembers,
                options=options,
                plot_path=plot,
                report_path=report,
                progress=FeedbackProgress(feedback),
            )
        except UnmixError as exc:
            raise QgsProcessingException(str(exc)) from exc
        except Cancelled as exc:
            raise QgsProcessingException(self.tr("Cancelled by the user.")) from exc
        except ImportError as exc:
            if is_torch_import_error(exc):
                raise QgsProcessingException(torch_missing_message()) from exc
            raise

        outputs = {
            self.OUTPUT: abundances,
            self.OUTPUT_ENDMEMBERS: endmembers,
            self.ENDMEMBER_COUNT: int(result.p),
            self.ENDMEMBER_NAMES: ",".join(result.names),
        }
        if plot:
            outputs[self.OUTPUT_PLOT] = plot
        if report:
            outputs[self.OUTPUT_REPORT] = report
        return outputs
