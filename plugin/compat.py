"""Checks for optional heavy dependencies, done lazily (never at import time).

The plugin loads, and the classical method runs, without PyTorch; only the
full engine needs it. Algorithms call :func:`torch_available` before running
and raise ``QgsProcessingException(torch_missing_message())`` otherwise.
"""

from __future__ import annotations

import importlib.util
import sys

from ..core.options import TORCH_VERSION


def torch_available() -> bool:
    """Whether ``import torch`` can be expected to work, without importing it.

    Returns:
        True when torch is already imported or its module spec can be found.
    """
    if sys.modules.get("torch") is not None:
        return True
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):  # a blocker on sys.meta_path, a broken spec
        return False


def is_torch_import_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an ImportError caused by torch (or a torch submodule)."""
    name = getattr(exc, "name", None) or ""
    return isinstance(exc, ImportError) and (name == "torch" or name.startswith("torch."))


def torch_missing_message() -> str:
    """One user-facing paragraph (translated) saying how to install PyTorch."""
    from qgis.PyQt.QtCore import QCoreApplication

    text = QCoreApplication.translate("DiffUnmix", "The full DiffUnmix engine needs PyTorch, which QGIS's "
                                      "Python cannot import. Install it with Raster ▸ DiffUnmix ▸ Install "
                                      "Dependencies… (torch=={version} for QGIS's own Python, no restart "
                                      "needed). The classical method 'VCA + FCLS' works without PyTorch.")
    return text.format(version=TORCH_VERSION)
