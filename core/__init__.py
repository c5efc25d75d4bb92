"""DiffUnmix engine: hyperspectral unmixing without QGIS.

Importable as ``core`` (repo root, CLI, tests) and as ``diffunmix.core``
(inside QGIS). Modules import each other relatively. Never import qgis/Qt here.
"""

__version__ = "0.1.0"
