"""The Processing algorithms of the DiffUnmix provider.

Add a new algorithm by writing ``plugin/algorithms/<name>.py`` with one
``QgsProcessingAlgorithm`` subclass (usually of :class:`.base.DiffUnmixAlgorithm`)
and listing it in :func:`algorithm_classes`.
"""

from __future__ import annotations


def algorithm_classes() -> list:
    """The algorithm classes the provider instantiates, in toolbox order.

    Imported here (not at package import) so loading the package stays cheap.
    """
    from .apply import ApplyAlgorithm
    from .estimatecount import EstimateCountAlgorithm
    from .evaluate import EvaluateAlgorithm
    from .extractendmembers import ExtractEndmembersAlgorithm
    from .fcls import FclsAlgorithm
    from .synthesize import SynthesizeAlgorithm
    from .train import TrainAlgorithm
    from .unmix import UnmixAlgorithm

    return [UnmixAlgorithm, TrainAlgorithm, ApplyAlgorithm, EstimateCountAlgorithm, ExtractEndmembersAlgorithm,
            FclsAlgorithm, EvaluateAlgorithm, SynthesizeAlgorithm]
