"""Tests of core.classical.synth: endmember draw, abundance fields, noise, scenes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.classical.synth import (
    FAMILIES,
    SceneConfig,
    abundance_field,
    add_noise,
    cap_abundances,
    generate,
    make_scene,
    select_endmembers,
    write_scene,
)
from core.errors import UnmixError
from core.io.library import SpectralLibrary, bundled_library_path, read_library


@pytest.fixture(scope="module")
def lib():
    return read_library(bundled_library_path())


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    c = clean.astype(np.float64)
    n = noisy.astype(np.float64) - c
    return float(10 * np.log10(np.mean(c ** 2) / np.mean(n ** 2)))


def _min_angle_deg(e: np.ndarray) -> float:
    u = e / np.linalg.norm(e, axis=1, keepdims=True)
    c = u @ u.T
    np.fill_diagonal(c, -1.0)
    return float(np.degrees(np.arccos(np.clip(c.max(), -1, 1))))


# ------------------------------------------------------------ endmembers
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_select_endmembers_respects_min_angle(lib, seed):
    idx, e = select_endmembers(lib, 6, min_angle_deg=10.0, seed=seed)
    assert idx.shape == (6,) and e.shape == (6, lib.n_bands)
    assert len(set(idx.tolist())) == 6
    np.testing.assert_array_equal(e, lib.spectra[idx])
    assert _min_angle_deg(e) > 10.0


def test_select_endmembers_deterministic_and_seed_dependent(lib):
    a, _ = select_endmembers(lib, 4, seed=5)
    b, _ = select_endmembers(lib, 4, seed=5)
    c, _ = select_endmembers(lib, 4, seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_select_endmembers_impossible(lib):
    with pytest.raises(UnmixError, match="pairwise angles > 60"):
        select_endmembers(lib, 20, min_angle_deg=60.0, max_tries=5)
    with pytest.raises(UnmixError, match="library of 32 spectra"):
        select_endmembers(lib, 40)
    with pytest.raises(UnmixError, match=">= 1"):
        select_endmembers(lib, 0)
    two = SpectralLibrary(["a", "b"], None, np.array([[1.0, 0.0], [1.0, 0.01]]))
    with pytest.raises(UnmixError, match="best found: 1"):
        select_endmembers(two, 2, min_angle_deg=5.0)


# ------------------------------------------------------- abundance fields
@pytest.mark.parametrize("family", FAMILIES)
def test_abundance_field_on_simplex(family):
    a = abundance_field(5, 48, 40, family, rng=np.random.default_rng(7), purity=0.6)
    assert a.shape == (5, 48, 40) and a.dtype == np.float32
    assert a.min() >= 0.0
    np.testing.assert_allclose(a.sum(axis=0, dtype=np.float64), 1.0, atol=1e-6)
    # spatially structured: neighbours much closer than random pixel pairs
    assert np.abs(np.diff(a, axis=2)).mean() < 0.5 * np.abs(a - a[:, ::-1, ::-1]).mean()
    # every endmember present somewhere
    assert np.all(a.reshape(5, -1).max(axis=1) > 0.2)


@pytest.mark.parametrize("family", FAMILIES)
def test_purity_controls_max_abundance(family):
    purities = [0.0, 0.3, 0.6, 0.9]
    means = []
    for pur in purities:
        m = [abundance_field(4, 48, 48, family, rng=s, purity=pur).max(axis=0).mean() for s in range(4)]
        means.append(float(np.mean(m)))
    assert np.all(np.diff(means) > 0.02), means
    assert means[0] < 0.6 and means[-1] > 0.85, means


def test_abundance_field_reproducible_and_cap():
    a = abundance_field(4, 32, 32, "grf", rng=3, purity=1.0)
    b = abundance_field(4, 32, 32, "grf", rng=np.random.default_rng(3), purity=1.0)
    np.testing.assert_array_equal(a, b)
    assert a.max() > 0.99
    c = abundance_field(4, 32, 32, "grf", rng=3, purity=1.0, max_abundance=0.8)
    assert c.max() <= 0.8 + 1e-6
    np.testing.assert_allclose(c.sum(axis=0, dtype=np.float64), 1.0, atol=1e-6)
    # pixels already below the cap are untouched
    low = a.max(axis=0) < 0.79
    np.testing.assert_allclose(c[:, low], a[:, low], atol=1e-6)


def test_cap_abundances_several_over_cap():
    a = np.array([0.45, 0.45, 0.1])[:, None]
    c = cap_abundances(a, 0.4)
    np.testing.assert_allclose(c[:, 0], [0.4, 0.4, 0.2])
    with pytest.raises(UnmixError, match="1/P"):
        cap_abundances(a, 0.3)


@pytest.mark.parametrize("kwargs,match", [
    (dict(family="perlin"), "unknown abundance family"),
    (dict(purity=1.5), "purity"),
    (dict(height=0), ">= 1"),
])
def test_abundance_field_bad_input(kwargs, match):
    args = dict(p=3, height=8, width=8, family="grf", rng=0, purity=0.5)
    args.update(kwargs)
    with pytest.raises(UnmixError, match=match):
        abundance_field(**args)


# ------------------------------------------------------------------ noise
@pytest.mark.parametrize("kind", ["white", "correlated"])
@pytest.mark.parametrize("snr", [20.0, 35.0])
def test_add_noise_snr(lib, kind, snr):
    a = abundance_field(3, 32, 32, "grf", rng=1)
    y = np.tensordot(lib.spectra[:3].T, a, axes=(1, 0))
    noisy = add_noise(y, snr, kind, rng=2)
    assert noisy.dtype == np.float32 and noisy.shape == y.shape
    assert abs(_snr_db(y, noisy) - snr) < 0.3
    # band correlation of the noise: lag-1 autocorrelation along the spectrum
    n = (noisy - y).reshape(y.shape[0], -1)
    r1 = float(np.mean(n[1:] * n[:-1]) / np.mean(n * n))
    if kind == "white":
        assert abs(r1) < 0.05
    else:
        assert r1 > 0.8


def test_add_noise_none_and_errors():
    y = np.ones((4, 3, 3))
    np.testing.assert_array_equal(add_noise(y, None), y)
    with pytest.raises(UnmixError, match="noise kind"):
        add_noise(y, 30.0, "pink")


# ------------------------------------------------------------------ scenes
def test_scene_config_json_round_trip():
    cfg = SceneConfig(height=20, width=30, p=3, family="mosaic", purity=0.8, snr_db=None,
                      noise="correlated", illumination=0.1, seed=4, max_abundance=0.9, variability=0.05)
    text = cfg.to_json()
    assert json.loads(text)["family"] == "mosaic"
    assert SceneConfig.from_json(text) == cfg
    assert SceneConfig.from_json(json.loads(text)) == cfg
    with pytest.raises(UnmixError, match="unknown scene config keys: colour"):
        SceneConfig.from_json('{"colour": 1}')
    with pytest.raises(UnmixError, match="not valid JSON"):
        SceneConfig.from_json("{")
    with pytest.raises(UnmixError, match="noise kind"):
        SceneConfig(noise="pink").validate()


def test_make_scene_linear_mixing(lib):
    _, e = select_endmembers(lib, 4, seed=0)
    cfg = SceneConfig(height=24, width=20, p=4, snr_db=None)
    y, a = make_scene(e, cfg)
    assert y.shape == (lib.n_bands, 24, 20) and a.shape == (4, 24, 20)
    assert y.dtype == np.float32 and a.dtype == np.float32
    np.testing.assert_allclose(y, np.tensordot(e.T, a, axes=(1, 0)), rtol=1e-5, atol=1e-7)
    y2, a2 = make_scene(e, cfg)
    np.testing.assert_array_equal(y, y2)
    with pytest.raises(UnmixError, match="P=3"):
        make_scene(e, SceneConfig(p=3))


def test_make_scene_illumination_and_noise(lib):
    _, e = select_endmembers(lib, 3, seed=1)
    cfg = SceneConfig(height=32, width=32, p=3, snr_db=None, illumination=0.1, seed=2)
    y, a = make_scene(e, cfg)
    clean = np.tensordot(e.T, a.astype(np.float64), axes=(1, 0))
    factor = (y / clean)[10]  # one band: the per-pixel factor
    assert 0.5 <= factor.min() and factor.max() <= 1.5
    assert 0.05 < factor.std() < 0.15 and abs(factor.mean() - 1.0) < 0.1
    np.testing.assert_allclose(y / clean, np.broadcast_to(factor, y.shape), rtol=1e-5)
    cfg_noisy = SceneConfig(height=32, width=32, p=3, snr_db=25.0, noise="correlated", seed=2)
    yn, an = make_scene(e, cfg_noisy)
    np.testing.assert_array_equal(an, a)  # same seed, same abundances
    assert abs(_snr_db(np.tensordot(e.T, an, axes=(1, 0)), yn) - 25.0) < 0.3


def test_make_scene_variability(lib):
    _, e = select_endmembers(lib, 3, seed=1)
    base = SceneConfig(height=40, width=40, p=3, purity=0.9, snr_db=None, seed=3)
    y0, a0 = make_scene(e, base)
    y, a = make_scene(e, SceneConfig(**{**base.__dict__, "variability": 0.05}))
    np.testing.assert_array_equal(a, a0)  # its own random stream: the abundances are unchanged
    pure = a[0] > 0.995  # a pure pixel shows its own copy of the spectrum: e₀ · exp(g)
    assert pure.sum() > 10
    g = np.log(y[:, pure] / e[0][:, None])
    assert 0.03 < g.std(axis=1).mean() < 0.08  # per-band log-std ≈ 0.05, across pure pixels
    assert np.abs(np.diff(g, axis=0)).max() < 0.02  # smooth along the spectrum
    rel = np.abs(y - y0).mean() / np.abs(y0).mean()
    assert 0.02 < rel < 0.1
    # the same config again gives the same scene; without variability the old one
    np.testing.assert_array_equal(make_scene(e, SceneConfig(**{**base.__dict__, "variability": 0.05}))[0], y)
    np.testing.assert_allclose(y0, np.tensordot(e.T, a0, axes=(1, 0)), rtol=1e-5, atol=1e-7)
    with pytest.raises(UnmixError, match="variability must be in"):
        SceneConfig(variability=-0.1).validate()


def test_write_scene_re_readable(tmp_path, lib):
    import rasterio

    from core.io.raster import read_info

    idx, e = select_endmembers(lib, 3, seed=0)
    names = [lib.names[i] for i in idx]
    cfg = SceneConfig(height=16, width=12, p=3, seed=1)
    y, a = make_scene(e, cfg)
    fwhm = np.full(lib.n_bands, 10.0)
    paths = write_scene(tmp_path / "out", y, a, e, names, lib.wavelengths_nm, fwhm, config=cfg)
    assert set(paths) == {"scene", "abundances", "endmembers", "config"}
    with rasterio.open(paths["scene"]) as ds:
        assert (ds.count, ds.height, ds.width) == (lib.n_bands, 16, 12)
        np.testing.assert_allclose(ds.read(), y)
    info = read_info(paths["scene"])
    np.testing.assert_allclose(info.wavelengths_nm, lib.wavelengths_nm, rtol=1e-6)
    np.testing.assert_allclose(info.fwhm_nm, fwhm, rtol=1e-6)
    with rasterio.open(paths["abundances"]) as ds:
        assert list(ds.descriptions) == names
        np.testing.assert_allclose(ds.read(), a)
    # georeferenced (UTM 31N at the zone's origin, 10 m pixels, north up): GIS software places it
    for key in ("scene", "abundances"):
        with rasterio.open(paths[key]) as ds:
            assert ds.crs is not None and ds.crs.to_epsg() == 32631 and ds.crs.linear_units == "metre"
            assert ds.transform.to_gdal() == (500000.0, 10.0, 0.0, 160.0, 0.0, -10.0)
    truth = read_library(paths["endmembers"])
    assert truth.names == names
    np.testing.assert_allclose(truth.spectra, e, rtol=1e-7)
    np.testing.assert_allclose(truth.wavelengths_nm, lib.wavelengths_nm)
    doc = json.loads(open(paths["config"]).read())
    assert SceneConfig.from_json(doc["config"]) == cfg and doc["endmember_names"] == names
    with pytest.raises(UnmixError, match="inconsistent shapes"):
        write_scene(tmp_path / "bad", y, a, e[:2], names[:2])


def test_generate_default_library(tmp_path, lib):
    cfg = SceneConfig(height=16, width=16, p=3, family="legendre", snr_db=30.0, seed=3)
    g = generate(tmp_path / "g", cfg)
    assert g["Y"].shape == (lib.n_bands, 16, 16) and g["A"].shape == (3, 16, 16)
    assert g["names"] == [lib.names[i] for i in g["indices"]]
    assert _min_angle_deg(g["E"]) > cfg.min_angle_deg
    doc = json.loads(open(g["paths"]["config"]).read())
    assert doc["library_indices"] == g["indices"].tolist()
    assert doc["library"] == str(bundled_library_path())
    # resampled to a sensor
    wl = np.linspace(420.0, 2400.0, 60)
    g2 = generate(tmp_path / "g2", cfg, wavelengths_nm=wl, fwhm_nm=np.full(60, 12.0))
    assert g2["Y"].shape == (60, 16, 16)
    np.testing.assert_allclose(g2["wavelengths_nm"], wl)
