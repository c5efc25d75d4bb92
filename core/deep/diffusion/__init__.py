"""Diffusion machinery: noise schedule, DDIM sampler, DDPM loss, constraints."""

from .constraints import consistency_transform, nonneg, project_simplex, simplex_transform
from .ddim import DDIMSampler, randn_like
from .schedule import NoiseSchedule
from .training import ddpm_loss, sample_timesteps

__all__ = [
    "DDIMSampler",
    "NoiseSchedule",
    "consistency_transform",
    "ddpm_loss",
    "nonneg",
    "project_simplex",
    "randn_like",
    "sample_timesteps",
    "simplex_transform",
]
