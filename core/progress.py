"""A tiny progress / cancellation protocol so ``core`` never imports QGIS.

Any object with ``set_progress(percent: float)``, ``is_canceled() -> bool`` and
``info(message: str)`` can be passed as ``progress``; the plugin adapts
``QgsProcessingFeedback`` to it. ``Progress.sub(start, end)`` maps a stage onto
a slice of the overall bar.
"""

from __future__ import annotations

import sys
from typing import Optional

from .errors import Cancelled


class Progress:
    """Base progress sink: silent, never cancelled. Subclass or duck-type it."""

    def set_progress(self, percent: float) -> None:  # 0..100
        pass

    def is_canceled(self) -> bool:
        return False

    def info(self, message: str) -> None:
        pass

    # helpers -----------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`Cancelled` when the user asked to stop."""
        if self.is_canceled():
            raise Cancelled("cancelled by the user")

    def sub(self, start: float, end: float) -> "SubProgress":
        """A view of this progress mapping 0..100 onto ``start..end``."""
        return SubProgress(self, start, end)


class SubProgress(Progress):
    """Maps 0..100 of a stage onto a slice ``[start, end]`` of a parent."""

    def __init__(self, parent, start: float, end: float):
        self.parent = parent
        self.start = float(start)
        self.end = float(end)

    def set_progress(self, percent: float) -> None:
        p = min(max(float(percent), 0.0), 100.0)
        self.parent.set_progress(self.start + (self.end - self.start) * p / 100.0)

    def is_canceled(self) -> bool:
        return bool(self.parent.is_canceled())

    def info(self, message: str) -> None:
        self.parent.info(message)


class CancelOnly(Progress):
    """Passes cancellation through but not progress or messages (inner loops of one tile)."""

    def __init__(self, parent):
        self.parent = ensure(parent)

    def is_canceled(self) -> bool:
        return self.parent.is_canceled()


class ConsoleProgress(Progress):
    """Prints messages and coarse percentages to stdout for the CLI, warnings (``warning: …``) to
    stderr: a failed run's stderr holds its warnings and the one error line only."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self._last = -10.0

    def set_progress(self, percent: float) -> None:
        if not self.quiet and percent >= self._last + 10.0:
            self._last = percent
            print(f"  {percent:5.1f} %", file=sys.stdout, flush=True)

    def info(self, message: str) -> None:
        warning = str(message).startswith("warning: ")
        if not self.quiet or warning:  # warnings survive --quiet
            print(message, file=sys.stderr if warning else sys.stdout, flush=True)


def ensure(progress: Optional[object]) -> Progress:
    """Wrap any duck-typed progress object (or None) into a :class:`Progress`."""
    if progress is None:
        return Progress()
    if isinstance(progress, Progress):
        return progress
    return SubProgress(progress, 0.0, 100.0)
