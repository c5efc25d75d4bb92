"""Every value a user may choose, in one place, and the options of an unmixing run.

Torch-free and QGIS-free: the CLI's ``choices`` and every Processing enum read
these tuples, so a new method, quality or stage is added here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .errors import UnmixError

#: unmixing methods: the deep engine, or the classical VCA + FCLS
METHODS = ("full", "vca-fcls")
#: where the deep engine runs
DEVICES = ("auto", "cpu", "cuda")
#: the engine's presets (:meth:`core.deep.engine.EngineConfig.preset`)
QUALITIES = ("fast", "default", "best")
#: the engine's networks, in fitting order (``train --stage``)
STAGES = ("hybridstu", "abundance-diffusion", "endmember-diffusion")
#: spatial families of synthetic abundance maps (:func:`core.classical.synth.abundance_field`)
FAMILIES = ("grf", "legendre", "mosaic")
#: noise kinds of synthetic scenes
NOISE_KINDS = ("white", "correlated")
#: endmember extraction methods (``extract --method``)
EXTRACT_METHODS = ("vca", "library", "robust")
#: the PyTorch release the deep engine is built and tested with
TORCH_VERSION = "2.13.0"


@dataclass
class UnmixOptions:
    """User options of an unmixing run (mirrors the CLI and Processing parameters)."""

    endmembers: int = 0  # 0 = estimate with HySime
    method: str = "full"  # as the CLI and Processing
    library: Optional[str] = None
    model: Optional[str] = None
    device: str = "auto"
    seed: int = 0
    bands: Optional[str] = None  # 1-based subset "1-50,60"; None = good bands (bbl)
    quality: str = "default"
    uncertainty: int = 0
    max_sample: int = 60000  # pixels sampled for estimation (HySime, VCA, fitting)
    scheduler: Optional[str] = None  # None: in this process; "local:N" or "tcp://HOST:PORT" (core.run.distributed)

    def validate(self) -> None:
        if self.method not in METHODS:
            raise UnmixError(f"unknown method '{self.method}' (choose from {', '.join(METHODS)})")
        if self.device not in DEVICES:
            raise UnmixError(f"unknown device '{self.device}' (choose from {', '.join(DEVICES)})")
        if self.endmembers < 0:
            raise UnmixError(f"number of endmembers must be 0 (estimate) or at least 2, got {self.endmembers}")
        if self.endmembers == 1:
            raise UnmixError("number of endmembers must be 0 (estimate) or at least 2, got 1")
        if self.uncertainty < 0 or self.uncertainty == 1:
            raise UnmixError(f"uncertainty samples must be 0 (off) or at least 2 (a spread needs two), "
                             f"got {self.uncertainty}")
        if self.seed < 0:
            raise UnmixError(f"seed must be ≥ 0, got {self.seed}")
        if self.scheduler:
            from .run.distributed import parse_scheduler, require_dask

            self.scheduler = parse_scheduler(self.scheduler)
            if self.scheduler:
                require_dask()
        if self.model and self.method != "full":
            raise UnmixError("a saved model runs the full engine: choose the full method or no model")
        if self.device == "cuda" and self.method != "full" and not self.model:
            raise UnmixError("VCA + FCLS runs on the CPU: device cuda applies to the full engine only "
                             "(use device auto or cpu)")
        if self.uncertainty and self.method != "full" and not self.model:
            raise UnmixError("the abundance uncertainty needs the full engine: "
                             "VCA + FCLS has no stochastic refinement to sample")


def require_torch() -> None:
    """The deep engine needs PyTorch; say how to get it when it is missing."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise UnmixError(f"the full engine needs PyTorch, which is not installed: install torch=={TORCH_VERSION} "
                         f"into the Python that runs DiffUnmix ('make setup' in the repository, "
                         f"'pip install \".[engine]\"' for the package, Raster ▸ DiffUnmix ▸ Install Dependencies… "
                         f"in QGIS), or use the VCA + FCLS method")
