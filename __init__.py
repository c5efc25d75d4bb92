"""DiffUnmix QGIS plugin entry point.

QGIS imports this package (installed as ``diffunmix/``) and calls
:func:`classFactory`. Nothing heavy is imported here: the plugin module, and
through it ``core``, load only when QGIS asks for the plugin.
"""


def classFactory(iface):  # noqa: N802 (QGIS API name)
    """Create the plugin instance.

    Args:
        iface: the ``QgisInterface`` (``None`` when run by ``qgis_process``).

    Returns:
        The :class:`~.plugin.plugin.DiffUnmixPlugin` instance.
    """
    from .plugin.plugin import DiffUnmixPlugin

    return DiffUnmixPlugin(iface)
