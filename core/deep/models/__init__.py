"""Networks of the engine: HybridSTU (coarse abundances) and the DDPM noise predictors."""

from .embeddings import TimeMLP, timestep_embedding
from .hybrid_stu import HybridSTU, HybridSTUConfig
from .resunet1d import ResUNet1D, ResUNet1DConfig
from .resunet2d import ResUNet2D, ResUNet2DConfig

__all__ = [
    "HybridSTU",
    "HybridSTUConfig",
    "ResUNet1D",
    "ResUNet1DConfig",
    "ResUNet2D",
    "ResUNet2DConfig",
    "TimeMLP",
    "timestep_embedding",
]
