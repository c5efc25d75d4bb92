"""Processing dialog widgets of DiffUnmix's own (loaded by the dialogs only, through a parameter's
``widget_wrapper`` metadata; ``qgis_process`` never imports this module)."""

from __future__ import annotations

import warnings

from processing.gui.wrappers import DIALOG_STANDARD, EnumWidgetWrapper
from qgis.PyQt.QtCore import QCoreApplication


class QualityWidgetWrapper(EnumWidgetWrapper):
    """The unmix dialog's QUALITY box, greyed out while METHOD is VCA + FCLS (the classical method has
    no training to shorten or lengthen), with a tooltip saying so.

    Once the dialog's widgets exist it also offers the bundled USGS library as the LIBRARY choice
    (a dialog default only: the user may clear it, and scripts, models and qgis_process keep
    "no library" unless they give one).
    """

    def __init__(self, *args, **kwargs):
        with warnings.catch_warnings():  # the Python enum wrapper is marked deprecated for QGIS 4
            warnings.simplefilter("ignore", DeprecationWarning)
            super().__init__(*args, **kwargs)
        self._method = None

    def postInitialize(self, wrappers):  # noqa: N802
        if self.dialogType != DIALOG_STANDARD:
            return
        for wrapper in wrappers:
            name = wrapper.parameterDefinition().name()
            if name == "METHOD":
                self._method = wrapper
                wrapper.widgetValueHasChanged.connect(self.update_enabled)
            elif name == "LIBRARY" and not wrapper.parameterValue():
                from qgis.core import QgsProcessingContext

                from ..core.io.library import bundled_library_path

                wrapper.setParameterValue(str(bundled_library_path()), QgsProcessingContext())
        self.update_enabled()

    def classical(self) -> bool:
        """Whether METHOD is set to VCA + FCLS."""
        if self._method is None:
            return False
        from .algorithms.unmix import UnmixAlgorithm

        values = [v for v, _ in UnmixAlgorithm.METHODS]
        index = self._method.parameterValue()
        return isinstance(index, int) and 0 <= index < len(values) and values[index] == "vca-fcls"

    def update_enabled(self, *_args) -> None:
        enabled = not self.classical()
        tip = "" if enabled else QCoreApplication.translate(
            "QualityWidgetWrapper", "VCA + FCLS has no quality setting: it runs in seconds.")
        for widget in (self.widget, self.label):
            if widget is not None:
                widget.setEnabled(enabled)
                widget.setToolTip(tip)
