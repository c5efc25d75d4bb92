"""Fixtures of the hostile-input tests: three bundled-library spectra at 20 bands, a small scene,
an unfitted engine saved as a real checkpoint, and the full engine with its iterations cut."""

import pytest
from hostile_util import bundled_spectra, save_model, write_scene


@pytest.fixture(scope="module")
def spectra():
    """Three bundled-library spectra at the 20 bands: (names, E (3, 20))."""
    return bundled_spectra()


@pytest.fixture
def tiny_engine(monkeypatch):
    """The full engine's ``fast`` preset with its iteration counts cut to a few."""
    from core.deep.engine import EngineConfig
    from core.deep.training import FitConfig

    preset = EngineConfig.preset.__func__

    def tiny(cls, quality="default"):
        cfg = preset(cls, "fast")
        cfg.fit = {**FitConfig.from_dict(cfg.fit).to_dict(), "hybrid_iters": 3, "unet2d_iters": 3, "unet1d_iters": 0,
                   "pool": 8, "batch": 2, "patch": 16, "sample_pool": 8}
        return cfg

    monkeypatch.setattr(EngineConfig, "preset", classmethod(tiny))


@pytest.fixture(scope="module")
def model(spectra, tmp_path_factory):
    names, E = spectra
    return save_model(tmp_path_factory.mktemp("model") / "model.pt", E, names)


@pytest.fixture(scope="module")
def scene(spectra, tmp_path_factory):
    """A 24×24 noise-free scene: (path, A)."""
    folder = tmp_path_factory.mktemp("scene")
    A = write_scene(folder / "scene.tif", spectra[1], 24, 24, seed=1)
    return folder / "scene.tif", A
