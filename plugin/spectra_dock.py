"""Dock widget plotting endmember spectra (matplotlib in Qt).

It shows the latest result: :class:`plugin.styling.AbundanceStyler` calls the
plugin's listener when a run's abundances are loaded, which calls
:meth:`SpectraDock.show_result`. One solid line per endmember, wavelength in nm
on the x axis (band number when the CSV has none), matched library spectra
dashed in the same colour. A CSV can also be opened by hand.
"""

from __future__ import annotations

import os
import re
from typing import Optional, Sequence

import numpy as np
from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

_SUFFIX = re.compile(r" \(\d+\)$")  # "Name (2)": the second endmember named after one library spectrum


class SpectraDock(QgsDockWidget):
    """Plot of endmember spectra.

    Args:
        parent: parent widget (the QGIS main window).
    """

    def __init__(self, parent: Optional[QWidget] = None):
        super().__init__(self.tr("DiffUnmix Endmember Spectra"), parent)
        self.setObjectName("DiffUnmixSpectraDock")
        from matplotlib.backends.backend_qt5agg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(5, 3.2), dpi=100)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.axes = self.figure.add_subplot(111)
        self.source = QLabel()
        self.source.setWordWrap(True)
        open_button = QPushButton(self.tr("Open CSV…"))
        open_button.setToolTip(self.tr("Plot an endmember CSV (wavelength_nm or band, one column per endmember)"))
        open_button.clicked.connect(self._open_csv)
        self.open_button = open_button
        header = QHBoxLayout()
        header.addWidget(self.source, 1)
        header.addWidget(open_button)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(header)
        layout.addWidget(self.canvas, 1)
        self.setWidget(body)
        self.endmember_lines = []
        self.library_lines = []
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
        ax.legend(fontsize=7, loc="best")
        self.figure.tight_layout()
        self.source.setText(title)
        self.canvas.draw_idle()

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
        """Listener of :mod:`plugin.styling`: plot a finished run's endmember CSV."""
        csv_path = result.get("endmembers_csv")
        if csv_path and os.path.isfile(csv_path):
            title = result.get("group") or ""
            self.load_csv(csv_path, library=result.get("library"), title=title)

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
