"""Dock widget plotting endmember spectra (matplotlib in Qt).

Every finished run is kept: :class:`plugin.styling.AbundanceStyler` calls the plugin's listener
when a run's abundances are loaded, which calls :meth:`SpectraDock.show_result`; the run list
(newest first) switches between them, and selecting a layer of a result in the Layers panel
shows that result (:meth:`SpectraDock.show_layer`). One solid line per endmember, wavelength in
nm on the x axis (band number when the CSV has none), matched library spectra dashed in the same
colour. The legend is a list beside the plot, never over the curves, so the plot stays readable
in a narrow dock. The plot exports as PNG (with its legend) or CSV; a CSV can also be opened by hand.
"""

from __future__ import annotations

import os
import re
from typing import Optional, Sequence

import numpy as np
from qgis.gui import QgsDockWidget
from qgis.PyQt import sip
from qgis.PyQt.QtCore import QCoreApplication, Qt
from qgis.PyQt.QtGui import QColor, QIcon, QPainter, QPen, QPixmap
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

def matplotlib_color(color) -> str:
    """A matplotlib colour ('C0', '#1f77b4', (r, g, b)) as '#rrggbb'."""
    from matplotlib.colors import to_hex

    return to_hex(color)


_SUFFIX = re.compile(r" \(\d+\)$")  # "Name (2)": the second endmember named after one library spectrum


class SpectraDock(QgsDockWidget):
    """Plot of endmember spectra, with the list of this session's runs and an off-plot legend.

    Args:
        parent: parent widget (the QGIS main window).
    """

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(self.tr("DiffUnmix Endmember Spectra"), parent)
        self.setObjectName("DiffUnmixSpectraDock")
        from matplotlib.backends.backend_qt5agg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, 3), dpi=100)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumSize(160, 120)
        self.axes = self.figure.add_subplot(111)
        self.source = QLabel()
        self.source.setWordWrap(True)
        self.runs_box = QComboBox()
        self.runs_box.setObjectName("runs")
        self.runs_box.setToolTip(self.tr("Results of this session, newest first"))
        self.runs_box.currentIndexChanged.connect(self._on_run_chosen)
        open_button = QPushButton(self.tr("Open CSV…"))
        open_button.setToolTip(self.tr("Plot an endmember CSV (wavelength_nm or band, one column per endmember)"))
        open_button.clicked.connect(self._open_csv)
        self.open_button = open_button
        export_button = QPushButton(self.tr("Export…"))
        export_button.setToolTip(self.tr("Save the plot as PNG or the spectra as CSV"))
        export_button.clicked.connect(self._export)
        self.export_button = export_button
        self.legend = QListWidget()
        self.legend.setObjectName("legend")
        self.legend.setToolTip(self.tr("Click an entry to hide or show its curve"))
        self.legend.itemChanged.connect(self._on_legend_item)
        header = QHBoxLayout()
        header.addWidget(self.runs_box, 1)
        header.addWidget(open_button)
        header.addWidget(export_button)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.canvas)
        split.addWidget(self.legend)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(header)
        layout.addWidget(self.source)
        layout.addWidget(split, 1)
        self.setWidget(body)
        self.endmember_lines = []
        self.library_lines = []
        #: runs shown so far: endmember CSV path -> result dict (insertion order = age)
        self.runs = {}
        self._shown = None  # (E, names, wavelengths) of the plot, for the CSV export
        self.clear()

    def tr(self, message: str) -> str:
        return QCoreApplication.translate("SpectraDock", message)

    # drawing -----------------------------------------------------------------
    def clear(self) -> None:
        """An empty plot with a hint."""
        self.axes.clear()
        self.endmember_lines, self.library_lines = [], []
        self.axes.text(0.5, 0.5, self.tr("Run a DiffUnmix algorithm or open an endmember CSV"),
                       ha="center", va="center", transform=self.axes.transAxes, fontsize=9, color="0.4")
        self.axes.set_xticks([])
        self.axes.set_yticks([])
        self.source.setText("")
        self.legend.clear()
        self._shown = None
        self.canvas.draw_idle()

    def show_spectra(self, E: np.ndarray, names: Sequence[str], wavelengths_nm: Optional[np.ndarray] = None,
                     library: Optional[np.ndarray] = None, library_names: Optional[Sequence[str]] = None,
                     title: str = "") -> None:
        """Plot endmembers (P, B), optionally with matched library spectra (P, B; NaN rows skipped)."""
        E = np.atleast_2d(np.asarray(E, dtype=float))
        x = np.arange(1, E.shape[1] + 1) if wavelengths_nm is None else np.asarray(wavelengths_nm, float)
        ax = self.axes
        ax.clear()
        self.endmember_lines, self.library_lines = [], []
        for i, (spectrum, name) in enumerate(zip(E, names)):
            color = f"C{i % 10}"
            self.endmember_lines += ax.plot(x, spectrum, color=color, lw=1.6, label=str(name))
            if library is not None and np.all(np.isfinite(library[i])):
                lab = library_names[i] if library_names is not None else self.tr("library")
                self.library_lines += ax.plot(x, library[i], color=color, lw=1.0, ls="--", alpha=0.8,
                                              label=self.tr("{name} (library)").format(name=lab))
        ax.set_xlabel(self.tr("Wavelength (nm)") if wavelengths_nm is not None else self.tr("Band"))
        ax.set_ylabel(self.tr("Reflectance"))
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        self.figure.tight_layout()
        self._fill_legend()
        self._shown = (E, [str(n) for n in names], wavelengths_nm)
        self.source.setText(title)
        self.canvas.draw_idle()

    def _fill_legend(self) -> None:
        """One checkable entry per curve, in its colour and line style (the legend, off the plot)."""
        self.legend.blockSignals(True)
        self.legend.clear()
        for line in self.endmember_lines + self.library_lines:
            pixmap = QPixmap(22, 10)
            pixmap.fill(Qt.transparent)
            painter = QPainter(pixmap)
            pen = QPen(QColor(matplotlib_color(line.get_color())), 2)
            if line.get_linestyle() == "--":
                pen.setStyle(Qt.DashLine)
            painter.setPen(pen)
            painter.drawLine(0, 5, 22, 5)
            painter.end()
            item = QListWidgetItem(QIcon(pixmap), line.get_label())
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if line.get_visible() else Qt.Unchecked)
            self.legend.addItem(item)
        self.legend.blockSignals(False)

    def _on_legend_item(self, item) -> None:
        lines = self.endmember_lines + self.library_lines
        row = self.legend.row(item)
        if 0 <= row < len(lines):
            lines[row].set_visible(item.checkState() == Qt.Checked)
            self.canvas.draw_idle()

    def legend_outside(self) -> bool:
        """Whether the plot is free of a legend box (the legend is the list beside it)."""
        return self.axes.get_legend() is None and self.legend.count() == len(self.endmember_lines +
                                                                              self.library_lines)

    def load_csv(self, path: str, library: Optional[str] = None, title: Optional[str] = None) -> int:
        """Plot an endmember CSV; with ``library``, the library spectra of the same names dashed.

        Returns:
            The number of endmember curves drawn.
        """
        from ..core.io.library import read_library, resample

        spectra = read_library(path)
        matched = None
        if library:
            try:
                matched = self._match_library(read_library(library), spectra, resample)
            except Exception:  # the library is decoration here: never fail the plot for it
                matched = None
        self.show_spectra(spectra.spectra, spectra.names, spectra.wavelengths_nm, library=matched,
                          library_names=[_SUFFIX.sub("", n) for n in spectra.names],
                          title=title or os.path.basename(path))
        return len(self.endmember_lines)

    @staticmethod
    def _match_library(lib, spectra, resample):
        """Library spectra named like the endmembers, on the endmembers' bands (NaN rows where none)."""
        if spectra.wavelengths_nm is not None and lib.wavelengths_nm is not None:
            lib = resample(lib, spectra.wavelengths_nm)
        elif lib.spectra.shape[1] != spectra.spectra.shape[1]:
            return None
        index = {str(n): i for i, n in enumerate(lib.names)}
        out = np.full(spectra.spectra.shape, np.nan)
        for k, name in enumerate(spectra.names):
            i = index.get(_SUFFIX.sub("", str(name)))
            if i is not None:
                out[k] = lib.spectra[i]
        return out if np.isfinite(out).any() else None

    def show_result(self, result: dict) -> None:
        """Listener of :mod:`plugin.styling`: add a finished run to the run list and plot it."""
        csv_path = result.get("endmembers_csv")
        if not (csv_path and os.path.isfile(csv_path)):
            return
        self.runs.pop(csv_path, None)
        self.runs[csv_path] = dict(result)
        self._fill_runs(csv_path)

    def show_layer(self, layer) -> bool:
        """Show the result a layer of the Layers panel belongs to (the run is added when it is not
        listed yet, e.g. from a saved project). Returns whether the layer belongs to a result."""
        from .styling import RESULT_PROPERTY

        if layer is None or sip.isdeleted(layer):
            return False
        csv_path = layer.customProperty(RESULT_PROPERTY)
        if not csv_path or not os.path.isfile(str(csv_path)):
            return False
        csv_path = str(csv_path)
        if csv_path not in self.runs:
            self.runs[csv_path] = {"endmembers_csv": csv_path, "library": layer.customProperty(
                RESULT_PROPERTY + "_library") or None, "group": layer.customProperty(RESULT_PROPERTY + "_group")
                or layer.name()}
        self._fill_runs(csv_path)
        return True

    def run_names(self) -> list:
        """The listed runs' titles, newest first."""
        return [self.runs_box.itemText(i) for i in range(self.runs_box.count())]

    def _fill_runs(self, current: str) -> None:
        self.runs_box.blockSignals(True)
        self.runs_box.clear()
        for path, result in reversed(list(self.runs.items())):
            self.runs_box.addItem(result.get("group") or os.path.basename(path), path)
        self.runs_box.setCurrentIndex(max(self.runs_box.findData(current), 0))
        self.runs_box.blockSignals(False)
        self._on_run_chosen(self.runs_box.currentIndex())

    def _on_run_chosen(self, index: int) -> None:
        path = self.runs_box.itemData(index)
        result = self.runs.get(path)
        if result is not None and os.path.isfile(path):
            self.load_csv(path, library=result.get("library"), title=result.get("group") or "")

    # export ------------------------------------------------------------------
    def export(self, path: str) -> str:
        """Write the shown spectra: ``.png`` (the plot with its legend, 150 dpi) or ``.csv``
        (wavelength_nm or band, one column per endmember). Returns the path.

        Raises:
            ValueError: nothing is plotted, or the extension is neither .png nor .csv.
        """
        if self._shown is None:
            raise ValueError(self.tr("Nothing to export: no spectra are shown."))
        ext = os.path.splitext(path)[1].lower()
        if ext == ".csv":
            from ..core.io.library import write_csv

            E, names, wl = self._shown
            write_csv(path, E, names, wl)
        elif ext == ".png":
            legend = self.axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
            try:
                self.figure.savefig(path, dpi=150, bbox_inches="tight")
            finally:
                legend.remove()
        else:
            raise ValueError(self.tr("Export as .png or .csv, not {ext}").format(ext=ext or path))
        return path

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Export endmember spectra"), "",
                                              self.tr("PNG image (*.png);;CSV file (*.csv)"))
        if path:
            try:
                self.export(path)
            except (OSError, ValueError) as exc:
                self.source.setText(self.tr("Cannot export to {path}: {error}").format(path=path, error=exc))

    def curve_count(self) -> int:
        """Number of endmember curves shown (library curves not counted)."""
        return len(self.endmember_lines)

    def _open_csv(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, self.tr("Open endmember CSV"), "",
                                              self.tr("CSV files (*.csv);;All files (*.*)"))
        if path:
            try:
                self.load_csv(path)
            except Exception as exc:  # a bad file: say so in the dock
                self.clear()
                self.source.setText(self.tr("Cannot plot {path}: {error}").format(path=path, error=exc))
