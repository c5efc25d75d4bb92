"""Adapter from ``QgsProcessingFeedback`` to the engine's progress protocol, and a finished run
described in words for the Processing log."""

from __future__ import annotations

from typing import List, Optional

from qgis.PyQt.QtCore import QT_TRANSLATE_NOOP, QCoreApplication

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


#: report timing keys -> what the stage did (in the order they run)
_STAGES = (
    ("estimation_s", QT_TRANSLATE_NOOP("RunLog", "endmember estimation")),
    ("fitting_s", QT_TRANSLATE_NOOP("RunLog", "fitting the engine to the scene")),
    ("calibration_s", QT_TRANSLATE_NOOP("RunLog", "endmember calibration")),
    ("abundances_s", QT_TRANSLATE_NOOP("RunLog", "abundances (FCLS)")),
    ("inference_s", QT_TRANSLATE_NOOP("RunLog", "abundance inference")),
)
_METHODS = {
    "full": QT_TRANSLATE_NOOP("RunLog", "full engine (HybridSTU + diffusion)"),
    "vca-fcls": QT_TRANSLATE_NOOP("RunLog", "VCA + FCLS (classical)"),
    "model": QT_TRANSLATE_NOOP("RunLog", "saved model"),
}


def _tr(text: str) -> str:
    """Translate a string marked for pylupdate5 (context 'RunLog')."""
    return QCoreApplication.translate("RunLog", text)


#: pylupdate5 extracts ``translate("RunLog", "…")`` calls
translate = QCoreApplication.translate


def seconds(value: float) -> str:
    """A duration for people: '0.3 s', '12 s', '3 min 5 s'."""
    value = float(value)
    if value < 10:
        return f"{value:.1f} s"
    if value < 60:
        return f"{value:.0f} s"
    return f"{int(value // 60)} min {value % 60:.0f} s"


def run_summary(report: dict, residual_mean: Optional[float] = None) -> List[str]:
    """A finished run in words, for the Processing log: the method and endmembers, which stages ran
    and why, how long each took, the reconstruction error. The raw numbers stay in report.json.

    Args:
        report: the run's report (:attr:`core.run.outputs.UnmixResult.report`).
        residual_mean: mean per-pixel reconstruction RMSE when the report has none (full engine).

    Returns:
        Lines of text.
    """
    lines = []
    method = _tr(_METHODS.get(report.get("method"), report.get("method") or "?"))
    count = report.get("endmember_count")
    how = (translate("RunLog", "estimated by HySime") if report.get("endmember_count_estimated") is not None
           else translate("RunLog", "as requested"))
    text = translate("RunLog", "Method: {method}; {count} endmembers ({how}).")
    lines.append(text.format(method=method, count=count, how=how))
    validation = report.get("self_validation") or {}
    if validation:
        # the weight the gates blended a stage with the one before it (report.json → stages)
        weights = {s.get("stage"): s.get("weight") for s in report.get("stages") or [] if isinstance(s, dict)}

        def kept(key, name, stage):
            if not validation.get(key):
                skipped = translate("RunLog", "{name}: skipped (it did not lower the error in validation)")
                return skipped.format(name=name)
            weight = weights.get(stage)
            if isinstance(weight, (int, float)) and 0 < weight < 1:
                blended = translate("RunLog", "{name}: used at weight {weight} (blended with the stage before it: "
                                              "that lowered the error in validation)")
                return blended.format(name=name, weight=f"{weight:.2f}")
            return translate("RunLog", "{name}: used (it lowered the error in validation)").format(name=name)

        lines.append(kept("use_correction", translate("RunLog", "CNN correction"), "hybridstu") + "; "
                     + kept("use_refinement", translate("RunLog", "diffusion refinement"), "abundance-diffusion") + ".")
    timings = report.get("timings_s") or {}
    parts = [f"{_tr(label)} {seconds(timings[key])}" for key, label in _STAGES if timings.get(key) is not None]
    if timings.get("total_s") is not None:
        lines.append(translate("RunLog", "Time: {parts} (total {total}).").format(parts=", ".join(parts),
                                                                  total=seconds(timings["total_s"])))
    rmse = report.get("mean_reconstruction_rmse", residual_mean)
    if rmse is not None:
        text = translate("RunLog", "Reconstruction error: mean RMSE {rmse:.3g} per pixel (in the raster's units).")
        lines.append(text.format(rmse=float(rmse)))
    if (report.get("outputs") or {}).get("report"):
        text = translate("RunLog", "Every number of the run is in the report: {path}")
        lines.append(text.format(path=report["outputs"]["report"]))
    return lines
