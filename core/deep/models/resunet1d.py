"""Timestep-conditioned 1D residual UNet for endmember spectra.

Same architecture as :class:`~.resunet2d.ResUNet2D` with 1D convolutions along
the band axis: ``x_t (N, 1, B)``, ``t (N,)``, ``cond (N, Cc, B)`` → ``(N, 1, B)``.
Any band count ``B >= 1`` works (padded to a multiple of ``2**(levels-1)``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .resunet2d import ResUNet2DConfig, ResUNetND

__all__ = ["ResUNet1DConfig", "ResUNet1D"]


@dataclass
class ResUNet1DConfig(ResUNet2DConfig):
    """Hyper-parameters of :class:`ResUNet1D`; as :class:`ResUNet2DConfig`, three levels by default."""

    mults: tuple[int, ...] = (1, 2, 4)


class ResUNet1D(ResUNetND):
    """Noise predictor for spectra ``(N, C, B)``.

    Args:
        length: Band count ``B`` the model is meant for (recorded for
            checkpoints; forward accepts any length).
        cond_channels: Channels of the conditioning spectra (e.g. 1: the
            least-squares endmember estimate); 0 for an unconditional model.
        cfg: Hyper-parameters (defaults: :class:`ResUNet1DConfig`).
        channels: Channels of ``x_t`` (1: one spectrum per sample).

    Example:
        >>> net = ResUNet1D(37)
        >>> eps = net(torch.rand(4, 1, 37), torch.tensor([1, 2, 3, 4]), torch.rand(4, 1, 37))
    """

    def __init__(self, length: int, cond_channels: int = 1, cfg: ResUNet2DConfig | None = None,
                 channels: int = 1):
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        super().__init__(1, channels, cond_channels, cfg if cfg is not None else ResUNet1DConfig())
        self.length = int(length)

    def hparams(self) -> dict:
        """Constructor arguments as plain data (for checkpoints)."""
        return {"length": self.length, "cond_channels": self.cond_channels, "channels": self.channels,
                "cfg": self.cfg.to_dict()}

    @classmethod
    def from_hparams(cls, d: dict) -> "ResUNet1D":
        """Rebuild an (untrained) network from :meth:`hparams` output."""
        return cls(d["length"], d["cond_channels"], ResUNet1DConfig.from_dict(d["cfg"]), d.get("channels", 1))
