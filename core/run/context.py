"""What every run carries: :class:`RunContext` (the input, its bands, the output paths,
the options, progress and the start time), and the one-engine-at-a-time lock.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np

from ..io.atomic import StagedOutputs
from ..options import UnmixOptions
from ..progress import Progress, ensure

#: output keys of a run, in the order of :func:`core.pipeline.unmix`'s arguments
OUTPUT_KEYS = ("A", "E", "plot", "report", "res", "unc")


@dataclass
class RunContext:
    """One unmixing run, as both the classical and the deep run receive it.

    Attributes:
        input_path: the input raster.
        outputs: final output paths by key (:data:`OUTPUT_KEYS`: abundances, endmembers CSV,
            plot, report, residual, uncertainty); a missing key or None is not written.
        options: the run's :class:`UnmixOptions` (validated).
        progress: progress/cancel protocol.
        info: the input's :class:`core.io.raster.RasterInfo`.
        bands: 0-based indices of the bands used, (B,).
        wavelengths_nm: (B,) of the bands used, or None.
        fwhm_nm: (B,) of the bands used, or None.
        t0: ``time.perf_counter()`` at the start of the run.
    """

    input_path: str
    outputs: Dict[str, Optional[str]]
    options: UnmixOptions
    progress: Progress
    info: object
    bands: np.ndarray
    wavelengths_nm: Optional[np.ndarray] = None
    fwhm_nm: Optional[np.ndarray] = None
    t0: float = field(default_factory=time.perf_counter)

    def wants(self, key: str) -> bool:
        """Whether the output ``key`` is asked for."""
        return bool(self.outputs.get(key))

    def staged(self) -> StagedOutputs:
        """Temporary names for every requested output, committed together at the end."""
        return StagedOutputs(self.outputs)


#: Held by the full engine's runs. They seed and draw from torch's global random generator (network
#: initialisation, DDIM noise) and set torch's thread count, so two runs at once in one process (the
#: QGIS task manager runs Processing algorithms in parallel) would change each other's results.
_ENGINE_LOCK = threading.Lock()


@contextmanager
def engine_turn(progress=None):
    """Wait until no other full-engine run of this process is running, then hold the engine.

    The wait can be cancelled through ``progress``. On a CPU the engine already uses every core
    and on a GPU the device is shared, so taking turns costs little over running together.
    """
    prog = ensure(progress)
    if not _ENGINE_LOCK.acquire(blocking=False):
        prog.info("waiting for another full-engine run in this process to finish")
        while not _ENGINE_LOCK.acquire(timeout=0.2):
            prog.check()
    try:
        yield
    finally:
        _ENGINE_LOCK.release()
