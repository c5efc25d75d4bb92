"""Exceptions shared by the engine, the CLI and the plugin.

``UnmixError`` means *bad input*: the CLI prints its message on one line and
exits with status 2; the Processing algorithms re-raise it as
``QgsProcessingException``. ``Cancelled`` means the user asked to stop.
"""


class UnmixError(ValueError):
    """Bad input (file, parameter, model) with a one-line, user-facing message."""


class Cancelled(RuntimeError):
    """The run was cancelled through the progress protocol."""
