"""Everything in DiffUnmix that imports qgis or Qt: plugin, provider, algorithms.

Import ``core`` relatively (``from ..core import ...``): inside QGIS the
package is ``diffunmix.plugin`` and the engine ``diffunmix.core``.
"""

import os

#: The plugin folder (repository root).
PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: The plugin icon, also used by the provider and the menu action.
ICON_PATH = os.path.join(PLUGIN_DIR, "resources", "icon.svg")
#: The spectra dock's icon (menu, toolbar).
SPECTRA_ICON_PATH = os.path.join(PLUGIN_DIR, "resources", "spectra.svg")
