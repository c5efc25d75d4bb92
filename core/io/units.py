"""Wavelength units: one converter to nanometres for raster metadata, ENVI headers and CSV
libraries (which spell micrometres ``µm`` with the micro sign, ``μm`` with the Greek letter,
``um``, ``micron(s)``, ``micrometer(s)``)."""

from __future__ import annotations

import re
from typing import Optional

import numpy as np

#: a unit word as it appears after a number or inside a column name ("0.45 µm", "wavelength_nm")
UNIT_PATTERN = r"nm|nanomet(?:er|re)s?|µm|μm|um|microns?|micromet(?:er|re)s?"
_MICRO = re.compile(r"(?:^|[^a-z])(?:µm|um)(?:$|[^a-z])|micro|micron")
_NANO = re.compile(r"(?:^|[^a-z])nm(?:$|[^a-z])|nano")
_MILLI = re.compile(r"(?:^|[^a-z])mm(?:$|[^a-z])|milli")
_NOT_WAVELENGTH = re.compile(r"wavenumber|cm|hz|^\s*index\s*$")


def nm_factor(units: Optional[str], values=None) -> Optional[float]:
    """Factor converting wavelengths given in ``units`` to nm.

    Args:
        units: a unit name or a text holding one (``"Micrometers"``, ``"μm"``, ``"wavelength_nm"``);
            None or empty when unknown.
        values: the wavelengths, used only when the units are unknown: below 30 they are µm.

    Returns:
        1 (nm), 1000 (µm) or 1e6 (mm); None when the units are not a wavelength
        (wavenumbers, cm⁻¹, Hz, band index).
    """
    u = (units or "").strip().lower().replace("μ", "µ")  # Greek mu (U+03BC) → micro sign (U+00B5)
    if _NOT_WAVELENGTH.search(u):
        return None
    if _NANO.search(u):
        return 1.0
    if _MICRO.search(u):
        return 1000.0
    if _MILLI.search(u):
        return 1.0e6
    v = None if values is None else np.asarray(values, dtype=np.float64)
    return 1000.0 if v is not None and v.size and np.nanmax(v) < 30.0 else 1.0
