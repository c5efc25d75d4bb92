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
                                      "Python cannot import. Install it with: python3 -m pip install --user "
                                      "torch=={version} (or run `make setup` in the plugin folder), then restart "
                                      "QGIS. The classical method 'VCA + FCLS' works without PyTorch.")
    return text.format(version=TORCH_VERSION)


def dependency_help_text() -> str:
    """What to run to install the optional dependencies (shown by the plugin's menu action)."""
    from qgis.PyQt.QtCore import QCoreApplication

    status = (QCoreApplication.translate("DiffUnmix", "PyTorch is installed: the full engine is available.")
              if torch_available() else
              QCoreApplication.translate("DiffUnmix", "PyTorch is not installed: only the classical method "
                                         "(VCA + FCLS) and the endmember tools work."))
    steps = QCoreApplication.translate("DiffUnmix", "To install PyTorch (CPU) for QGIS's Python, run in a terminal:"
                                       "\n\n    python3 -m pip install --user torch=={version}\n\n"
                                       "then restart QGIS. On Windows, run it in the OSGeo4W Shell. With a "
                                       "CUDA GPU, install the CUDA build of the same version from pytorch.org "
                                       "instead.").format(version=TORCH_VERSION)
    return f"{status}\n\n{steps}"
