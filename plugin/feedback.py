"""Adapter from ``QgsProcessingFeedback`` to the engine's progress protocol."""

from __future__ import annotations

from ..core.progress import Progress


class FeedbackProgress(Progress):
    """A :class:`core.progress.Progress` that reports to a Processing feedback.

    Args:
        feedback: a ``QgsProcessingFeedback`` (or ``None``: then silent and
            never cancelled).
    """

    def __init__(self, feedback=None):
        self.feedback = feedback

    def set_progress(self, percent: float) -> None:
        if self.feedback is not None:
            self.feedback.setProgress(min(max(float(percent), 0.0), 100.0))

    def is_canceled(self) -> bool:
        return self.feedback is not None and bool(self.feedback.isCanceled())

    def info(self, message: str) -> None:
        if self.feedback is not None:
            text = str(message)
            if text.startswith("warning: "):  # the engine's doubts are shown as Processing warnings
                self.feedback.pushWarning(text[len("warning: "):])
            else:
                self.feedback.pushInfo(text)
