"""Helpers for the QGIS and e2e tiers (import as ``qgisutil``): run an algorithm, record its
feedback, re-read rasters with an independent reader."""

from qgis.core import QgsProcessingFeedback


def run_alg(alg_id, params, feedback=None, context=None):
    """``processing.run`` with a recording feedback."""
    import processing

    return processing.run(alg_id, params, feedback=feedback or RecordingFeedback(), context=context)


class RecordingFeedback(QgsProcessingFeedback):
    """A real feedback that also keeps what the algorithm reported."""

    def __init__(self, cancel_after_progress=None):
        super().__init__()
        self.infos, self.warnings, self.errors, self.progresses = [], [], [], []
        self.cancel_after_progress = cancel_after_progress
        self.progressChanged.connect(self._on_progress)

    def _on_progress(self, value):
        self.progresses.append(value)
        if self.cancel_after_progress is not None and value >= self.cancel_after_progress:
            self.cancel()

    def pushInfo(self, info):  # noqa: N802
        self.infos.append(info)

    def pushWarning(self, warning):  # noqa: N802
        self.warnings.append(warning)

    def reportError(self, error, fatalError=False):  # noqa: N802, N803
        self.errors.append(error)


def read_raster(path):
    """Re-read a raster with rasterio (independent of the GDAL writer)."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():  # synthetic scenes have no georeferencing, on purpose
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        ds = rasterio.open(path)
    with ds:
        return {"data": ds.read(masked=False), "count": ds.count, "transform": ds.transform.to_gdal(),
                "epsg": ds.crs.to_epsg() if ds.crs else None, "nodata": ds.nodata,
                "descriptions": list(ds.descriptions), "shape": (ds.height, ds.width)}
