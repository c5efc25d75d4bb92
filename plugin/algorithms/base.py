"""What every DiffUnmix algorithm shares: identity, help kept as data, parameter
helpers, input resolution and the translation of engine errors.

Subclasses keep to the thin pattern: ``initAlgorithm`` declares parameters,
``processAlgorithm`` parses them, calls one ``core`` function through
:meth:`DiffUnmixAlgorithm.run_core` and returns the outputs dict. No state is
kept between runs: Processing runs a fresh instance (``create()``) each time.

Translation contexts: strings of a subclass use its class name (``self.tr``);
strings shared here use ``DiffUnmixAlgorithm``.
"""

from __future__ import annotations

import os
import re

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingOutputLayerDefinition,
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

from ...core import options as core_options
from ...core.errors import Cancelled, UnmixError
from .. import ICON_PATH, PLUGIN_DIR
from ..compat import is_torch_import_error, torch_available, torch_missing_message

#: the help pages shipped with the plugin (scripts/make_help.py)
HELP_DIR = os.path.join(PLUGIN_DIR, "resources", "help")
CTX = "DiffUnmixAlgorithm"  # translation context of the shared strings below

# GDAL subdataset syntax, e.g. NETCDF:"/data/x.nc":radiance or HDF5:/data/x.h5://cube
_SUBDATASET = re.compile(r"^[A-Za-z0-9_]+:")

def enum_options(values, labels: dict) -> tuple:
    """(engine value, label) pairs of a Processing enum: the values, in their order, are
    :mod:`core.options`'s; a value without a label here fails at import (and in the tests)."""
    return tuple((v, labels[v]) for v in values)


#: (engine value, label) of the DEVICE enum, in option order.
DEVICES = enum_options(core_options.DEVICES, {
    "auto": QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Automatic (CUDA GPU when available)"),
    "cpu": QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "CPU"),
    "cuda": QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "CUDA GPU"),
})
#: (engine value, label) of the QUALITY enum, in option order.
QUALITIES = enum_options(core_options.QUALITIES, {
    "fast": QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Fast"),
    "default": QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Default"),
    "best": QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Best (slow)"),
})
#: group id -> group name.
GROUPS = {
    "unmixing": QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Unmixing"),
    "endmembers": QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Endmembers"),
    "evaluation": QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Evaluation"),
}

#: Parameters several algorithms share: name -> (label, help).
COMMON_HELP = {
    "INPUT": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Hyperspectral raster"),
        QT_TRANSLATE_NOOP(
            "DiffUnmixAlgorithm",
            "Raster file with one band per wavelength (GeoTIFF, ENVI or any format GDAL reads), "
            "e.g. reflectance. Pixels with nodata in any band and bands flagged bad (ENVI bbl) "
            "are skipped. The layer must be stored in a file."),
    ),
    "LIBRARY": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Spectral library"),
        QT_TRANSLATE_NOOP(
            "DiffUnmixAlgorithm",
            "Optional library of reference spectra (ENVI .sli/.hdr, or CSV with a wavelength "
            "column and one column per spectrum), resampled to the raster's wavelengths. It names "
            "the endmembers after their closest library spectra (and guides the endmember search)."),
    ),
    "BANDS": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Band subset"),
        QT_TRANSLATE_NOOP(
            "DiffUnmixAlgorithm",
            "Optional 1-based bands to use, e.g. '1-50,60,70-90'. Empty: every band not flagged bad."),
    ),
    "DEVICE": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Device"),
        QT_TRANSLATE_NOOP(
            "DiffUnmixAlgorithm",
            "Where the deep engine runs. Automatic uses a CUDA GPU when one is available, else the CPU."),
    ),
    "QUALITY": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Quality"),
        QT_TRANSLATE_NOOP(
            "DiffUnmixAlgorithm",
            "How long the deep engine trains and refines: Fast (a few minutes on a CPU for a small "
            "scene), Default, or Best (several times slower)."),
    ),
    "SEED": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Random seed"),
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "The same seed and inputs give the same result."),
    ),
    "RGB_ENDMEMBERS": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "RGB composite of endmembers"),
        QT_TRANSLATE_NOOP(
            "DiffUnmixAlgorithm",
            "Optional three 1-based endmember numbers, e.g. '1,2,3': when the result is opened in "
            "the map, an extra layer shows their abundances as red, green and blue. Empty: none."),
    ),
    "OUTPUT": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Abundances"),
        QT_TRANSLATE_NOOP(
            "DiffUnmixAlgorithm",
            "GeoTIFF with one Float32 band per endmember (band descriptions are the endmember "
            "names): fractions in [0, 1] that sum to one, on the input's grid, nodata where the "
            "input had no valid value. Opened in the map as one layer per endmember (colour ramp "
            "0-1) in a group named after the input."),
    ),
    "OUTPUT_ENDMEMBERS": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Endmember spectra"),
        QT_TRANSLATE_NOOP(
            "DiffUnmixAlgorithm",
            "CSV: first column wavelength_nm (or band when the raster has no wavelengths), then one "
            "column per endmember, in the order of the abundance bands."),
    ),
    "OUTPUT_PLOT": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Endmember plot"),
        QT_TRANSLATE_NOOP(
            "DiffUnmixAlgorithm",
            "Optional PNG plot of the endmember spectra (wavelength in nm, one line per endmember; "
            "matched library spectra dashed)."),
    ),
    "OUTPUT_RESIDUAL": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Reconstruction error"),
        QT_TRANSLATE_NOOP(
            "DiffUnmixAlgorithm",
            "Optional one-band GeoTIFF: per-pixel RMSE between the pixel spectrum and its "
            "reconstruction from the abundances and endmembers (high values: poorly explained pixels)."),
    ),
    "OUTPUT_UNCERTAINTY": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Abundance uncertainty"),
        QT_TRANSLATE_NOOP(
            "DiffUnmixAlgorithm",
            "Optional GeoTIFF, one band per endmember: the per-pixel standard deviation of each abundance "
            "over several stochastic diffusion refinements (full engine only). High values mark pixels "
            "where the data allow several answers."),
    ),
    "UNCERTAINTY_SAMPLES": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Uncertainty samples"),
        QT_TRANSLATE_NOOP(
            "DiffUnmixAlgorithm",
            "How many stochastic refinements the abundance uncertainty is computed from (at least 2; each "
            "adds about one inference pass). Used only when the uncertainty output is set."),
    ),
    "OUTPUT_REPORT": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Report"),
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Optional JSON report: parameters, timings and diagnostics."),
    ),
    "SCHEDULER": (
        QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Dask scheduler"),
        QT_TRANSLATE_NOOP(
            "DiffUnmixAlgorithm",
            "Optional: run the tiles on a Dask cluster. 'local' or 'local:N' starts N worker processes on this "
            "computer; 'tcp://HOST:PORT' uses an existing Dask scheduler (its workers must see the same files). "
            "Empty: everything runs in QGIS. Needs the dask and distributed Python packages."),
    ),
    "ENDMEMBER_COUNT": (QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Number of endmembers"), ""),
    "ENDMEMBER_NAMES": (QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "Endmember names (comma-separated)"), ""),
}


def tr_common(text: str) -> str:
    """Translate a string marked with ``QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", …)``."""
    return QCoreApplication.translate(CTX, text) if text else text


def file_source(layer, param: str) -> str:
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
            QCoreApplication.translate("DiffUnmixAlgorithm", "Layer '{name}' ({param}) is not a raster file "
                                       "(provider '{provider}'). Save it as a GeoTIFF first (Export ▸ Save As…).")
            .format(name=layer.name(), param=param, provider=layer.providerType())
        )
    return source


class DiffUnmixAlgorithm(QgsProcessingAlgorithm):
    """Base of the DiffUnmix algorithms (not registered itself)."""

    #: This algorithm's own parameters: name -> (label, help), marked with its class name as context.
    HELP: dict = {}
    #: One paragraph for the help panel (marked with the subclass name as context).
    SUMMARY = ""
    GROUP_ID = "unmixing"
    #: Raster-layer parameters resolved to files in :meth:`prepareAlgorithm` (main thread).
    RASTER_INPUTS: tuple = ("INPUT",)

    # identity ----------------------------------------------------------------
    def group(self) -> str:
        return tr_common(GROUPS[self.GROUP_ID])

    def groupId(self) -> str:  # noqa: N802
        return self.GROUP_ID

    def icon(self) -> QIcon:
        return QIcon(ICON_PATH)

    def helpUrl(self) -> str:  # noqa: N802
        """The help page shipped in the plugin (in the user's language when there is one), at this
        algorithm's section; made by scripts/make_help.py."""
        from qgis.core import QgsSettings
        from qgis.PyQt.QtCore import QUrl

        locale = str(QgsSettings().value("locale/userLocale", "") or "")[:2]
        page = os.path.join(HELP_DIR, f"diffunmix_{locale}.html")
        if not (locale and os.path.isfile(page)):
            page = os.path.join(HELP_DIR, "diffunmix.html")
        url = QUrl.fromLocalFile(page)
        url.setFragment(self.name())
        return url.toString()

    def createInstance(self):  # noqa: N802
        return type(self)()

    def tr(self, message: str) -> str:
        """Translate in this class's context (as pylupdate5 extracts ``self.tr``)."""
        return QCoreApplication.translate(type(self).__name__, message)

    def shortHelpString(self) -> str:  # noqa: N802
        items = "".join(
            f"<dt><b>{label}</b> <code>{name}</code></dt><dd>{text}</dd>"
            for name, (label, text) in ((n, self.help_for(n)) for n in self._documented())
        )
        return f"<p>{self.tr(self.SUMMARY)}</p><dl>{items}</dl>"

    def _documented(self) -> list:
        names = [p.name() for p in self.parameterDefinitions()]
        return names + [o.name() for o in self.outputDefinitions() if o.name() not in names]

    def help_for(self, name: str) -> tuple:
        """(label, help) of a parameter or output, translated."""
        if name in self.HELP:
            label, text = self.HELP[name]
            return self.tr(label), self.tr(text) if text else ""
        label, text = COMMON_HELP.get(name, (name, ""))
        return tr_common(label), tr_common(text)

    # parameters --------------------------------------------------------------
    def add(self, param: QgsProcessingParameterDefinition, advanced: bool = False, create_output: bool = True):
        """Add a parameter, its help text taken from :attr:`HELP` / :data:`COMMON_HELP`.

        ``create_output=False``: a destination parameter whose output the algorithm
        declares itself (e.g. a plain file where QGIS would infer an HTML output).
        """
        param.setHelp(self.help_for(param.name())[1])
        if advanced:
            param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(param, createOutput=create_output)
        return param

    def label(self, name: str) -> str:
        return self.help_for(name)[0]

    def add_input(self) -> None:
        """The input raster (INPUT)."""
        self.add(QgsProcessingParameterRasterLayer("INPUT", self.label("INPUT")))

    def add_endmember_count(self) -> None:
        """ENDMEMBERS: integer, 0 = estimate with HySime."""
        self.add(QgsProcessingParameterNumber("ENDMEMBERS", self.label("ENDMEMBERS"),
                                              type=QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0))

    def add_bands(self) -> None:
        self.add(QgsProcessingParameterString("BANDS", self.label("BANDS"), optional=True), advanced=True)

    def add_seed(self) -> None:
        self.add(QgsProcessingParameterNumber("SEED", self.label("SEED"), type=QgsProcessingParameterNumber.Integer,
                                              defaultValue=0, minValue=0), advanced=True)

    def add_device(self) -> None:
        self.add(QgsProcessingParameterEnum("DEVICE", self.label("DEVICE"),
                                            options=[tr_common(t) for _, t in DEVICES], defaultValue=0),
                 advanced=True)

    def add_quality(self, default: int = 1):
        return self.add(QgsProcessingParameterEnum("QUALITY", self.label("QUALITY"),
                                            options=[tr_common(t) for _, t in QUALITIES], defaultValue=default))

    def add_library(self, name: str = "LIBRARY", optional: bool = True) -> None:
        self.add(QgsProcessingParameterFile(
            name, self.label(name), behavior=QgsProcessingParameterFile.File, optional=optional,
            fileFilter=tr_common(QT_TRANSLATE_NOOP("DiffUnmixAlgorithm",
                                                   "Spectral libraries (*.csv *.sli *.hdr);;All files (*.*)"))))

    def add_scheduler(self) -> None:
        """SCHEDULER (advanced): a Dask scheduler address; checked by the engine when the run starts
        (where a missing Dask is reported with how to install it)."""
        self.add(QgsProcessingParameterString("SCHEDULER", self.label("SCHEDULER"), optional=True), advanced=True)

    def add_rgb(self) -> None:
        self.add(QgsProcessingParameterString("RGB_ENDMEMBERS", self.label("RGB_ENDMEMBERS"), optional=True),
                 advanced=True)

    def add_csv_output(self, name: str, optional: bool = False) -> None:
        self.add(QgsProcessingParameterFileDestination(
            name, self.label(name), fileFilter=tr_common(QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "CSV files (*.csv)")),
            optional=optional, createByDefault=not optional))

    def add_unmix_outputs(self) -> None:
        """UNCERTAINTY_SAMPLES (advanced) and the outputs OUTPUT, OUTPUT_ENDMEMBERS, OUTPUT_PLOT,
        OUTPUT_RESIDUAL, OUTPUT_UNCERTAINTY, OUTPUT_REPORT (unmix and apply)."""
        self.add(QgsProcessingParameterNumber("UNCERTAINTY_SAMPLES", self.label("UNCERTAINTY_SAMPLES"),
                                              type=QgsProcessingParameterNumber.Integer, defaultValue=8,
                                              minValue=2, maxValue=256, optional=True), advanced=True)
        self.add(QgsProcessingParameterRasterDestination("OUTPUT", self.label("OUTPUT")))
        self.add_csv_output("OUTPUT_ENDMEMBERS")
        self.add(QgsProcessingParameterFileDestination(
            "OUTPUT_PLOT", self.label("OUTPUT_PLOT"),
            fileFilter=tr_common(QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "PNG images (*.png)")),
            optional=True, createByDefault=False))
        self.add(QgsProcessingParameterRasterDestination("OUTPUT_RESIDUAL", self.label("OUTPUT_RESIDUAL"),
                                                         optional=True, createByDefault=False))
        self.add(QgsProcessingParameterRasterDestination("OUTPUT_UNCERTAINTY", self.label("OUTPUT_UNCERTAINTY"),
                                                         optional=True, createByDefault=False))
        self.add(QgsProcessingParameterFileDestination(
            "OUTPUT_REPORT", self.label("OUTPUT_REPORT"),
            fileFilter=tr_common(QT_TRANSLATE_NOOP("DiffUnmixAlgorithm", "JSON files (*.json)")),
            optional=True, createByDefault=False))

    # reading parameters ------------------------------------------------------
    def prepareAlgorithm(self, parameters, context, feedback) -> bool:  # noqa: N802
        # Runs in the main thread: resolve project layers here, never in processAlgorithm.
        self.files, self.layer_names = {}, {}
        for name in self.RASTER_INPUTS:
            layer = self.parameterAsRasterLayer(parameters, name, context)
            if layer is None:
                if self.parameterDefinition(name).flags() & QgsProcessingParameterDefinition.FlagOptional \
                        and not parameters.get(name):
                    self.files[name] = None
                    continue
                raise QgsProcessingException(
                    QCoreApplication.translate("DiffUnmixAlgorithm", "The raster '{param}' could not be "
                                               "loaded: {value}").format(param=name, value=parameters.get(name)))
            self.files[name] = file_source(layer, name)
            self.layer_names[name] = layer.name()
        return True

    def enum_value(self, parameters, name: str, context, table) -> str:
        return table[self.parameterAsEnum(parameters, name, context)][0]

    def text(self, parameters, name: str, context):
        """A string parameter, stripped; None when empty."""
        return (self.parameterAsString(parameters, name, context) or "").strip() or None

    def file_param(self, parameters, name: str, context):
        return self.parameterAsFile(parameters, name, context) or None

    def tif_output(self, parameters, name: str, context):
        """A raster destination (``None`` when optional and skipped); must be a GeoTIFF.

        An optional output left blank (the batch dialog's empty cell: an output definition with an
        empty sink) is skipped before ``parameterAsOutputLayer``, which would queue an empty path
        for loading ("The following layers were not correctly generated. •").
        """
        value = parameters.get(name)
        if isinstance(value, QgsProcessingOutputLayerDefinition):
            value = value.sink.staticValue()
        if self.parameterDefinition(name).flags() & QgsProcessingParameterDefinition.FlagOptional \
                and (value is None or not str(value).strip()):
            return None
        path = self.parameterAsOutputLayer(parameters, name, context)
        if not path:
            return None
        if os.path.splitext(path)[1].lower() not in (".tif", ".tiff"):
            raise QgsProcessingException(
                QCoreApplication.translate("DiffUnmixAlgorithm", "{param}: rasters are written as GeoTIFF; give a "
                                           ".tif file name, not {path}.").format(param=name, path=path))
        return path

    def file_output(self, parameters, name: str, context):
        return self.parameterAsFileOutput(parameters, name, context) or None

    def rgb(self, parameters, context):
        """RGB_ENDMEMBERS as three 1-based numbers, or None."""
        from ..styling import parse_rgb

        text = self.text(parameters, "RGB_ENDMEMBERS", context)
        try:
            return parse_rgb(text)
        except ValueError as exc:
            raise QgsProcessingException(
                QCoreApplication.translate("DiffUnmixAlgorithm", "RGB_ENDMEMBERS must be three endmember numbers "
                                           "such as '1,2,3', not '{value}'.").format(value=text)) from exc

    # running -----------------------------------------------------------------
    @staticmethod
    def require_torch() -> None:
        if not torch_available():
            raise QgsProcessingException(torch_missing_message())

    @staticmethod
    def run_core(fn, *args, **kwargs):
        """Call a ``core`` function; bad input, cancellation and a missing torch become
        ``QgsProcessingException`` with a one-line message."""
        try:
            return fn(*args, **kwargs)
        except UnmixError as exc:
            raise QgsProcessingException(str(exc)) from exc
        except Cancelled as exc:
            raise QgsProcessingException(
                QCoreApplication.translate("DiffUnmixAlgorithm", "Cancelled by the user.")) from exc
        except ImportError as exc:
            if is_torch_import_error(exc):
                raise QgsProcessingException(torch_missing_message()) from exc
            raise

    def show_abundances(self, context, feedback, path: str, names, endmembers_csv=None, rgb=None,
                        library=None, residual=None, uncertainty=None, label=None) -> None:
        """Style ``path`` when it is loaded into the project (one layer per endmember, in a
        group named after the input, followed by ``label``, e.g. the method and P), with the run's
        ``residual`` and ``uncertainty`` rasters (if any) at the bottom of the same group; see
        :mod:`plugin.styling`."""
        from ..styling import attach_abundance_styler

        if rgb is not None and max(rgb) > len(names):
            feedback.pushWarning(
                QCoreApplication.translate("DiffUnmixAlgorithm", "RGB_ENDMEMBERS {rgb}: there are only {p} "
                                           "endmembers; no RGB composite.").format(rgb=rgb, p=len(names)))
            rgb = None
        group = self.layer_names.get("INPUT")
        if group and re.fullmatch(r"[A-Z0-9_]+", group):  # a model step's output id ("OUTPUT"), not a name
            group = QCoreApplication.translate("DiffUnmixAlgorithm", "Unmixing result")
        group = group or os.path.splitext(os.path.basename(path))[0]
        if label:
            group = f"{group} — {label}"
        error_name = QCoreApplication.translate("DiffUnmixAlgorithm", "Reconstruction error")
        spread_name = QCoreApplication.translate("DiffUnmixAlgorithm", "{name} (uncertainty)")
        diagnostics = [(residual, [error_name]), (uncertainty, [spread_name.format(name=n) for n in names])]
        attach_abundance_styler(context, path, diagnostics=diagnostics, names=list(names), group_name=group,
                                rgb=rgb, endmembers_csv=endmembers_csv, library=library)
