"""Every Processing enum lists core/options.py's values, in its order (one source for both the
CLI's choices and the toolbox): each option's engine value comes from there."""

import pytest
from qgis.core import QgsApplication

pytestmark = pytest.mark.usefixtures("diffunmix_plugin")


def test_processing_enums_come_from_core_options():
    from diffunmix.core import options
    from diffunmix.plugin.algorithms.synthesize import SynthesizeAlgorithm
    from diffunmix.plugin.algorithms.train import TrainAlgorithm
    from diffunmix.plugin.algorithms.unmix import UnmixAlgorithm

    registry = QgsApplication.processingRegistry()
    expected = {
        ("unmix", "METHOD"): (UnmixAlgorithm.METHODS, options.METHODS),
        ("unmix", "DEVICE"): (UnmixAlgorithm.DEVICES, options.DEVICES),
        ("synthesize", "FAMILY"): (SynthesizeAlgorithm.FAMILIES, options.FAMILIES),
        ("train", "STAGE"): (TrainAlgorithm.STAGES, [options.STAGES] + [(s,) for s in options.STAGES]),
    }
    for (alg_id, name), (table, values) in expected.items():
        assert [v for v, _ in table] == list(values), (alg_id, name)
        param = registry.algorithmById(f"diffunmix:{alg_id}").parameterDefinition(name)
        assert len(param.options()) == len(values), (alg_id, name)
    for alg_id in ("unmix", "train"):
        alg = registry.algorithmById(f"diffunmix:{alg_id}")
        assert len(alg.parameterDefinition("QUALITY").options()) == len(options.QUALITIES)
        assert len(alg.parameterDefinition("DEVICE").options()) == len(options.DEVICES)
