"""Tests of core.io.library: ENVI/CSV reading, resampling, CSV writing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import UnmixError
from core.io.library import SpectralLibrary, bundled_library_path, read_library, resample, resample_matrix, write_csv

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SPLIB = DATA / "spectral_libraries" / "usgs_splib07_aviris95_envi" / "s07_AV95_envi.sli"
SAMSON_WL = DATA / "wavelengths" / "Wavelengths.mat"
needs_data = pytest.mark.skipif(not SPLIB.exists(), reason="shared data not available")


@pytest.fixture(scope="module")
def splib():
    return read_library(SPLIB)


def _angles_deg(s: np.ndarray) -> np.ndarray:
    u = s / np.linalg.norm(s, axis=1, keepdims=True)
    a = np.degrees(np.arccos(np.clip(u @ u.T, -1, 1)))
    np.fill_diagonal(a, 180.0)
    return a


# ------------------------------------------------------------- splib07
@needs_data
def test_splib07_contents(splib):
    # 3139 rows: 2 wavelength/resolution + 680 error-bar rows are not spectra;
    # 837 spectra miss > 10 % of the bands; 1060 kept spectra had 1-22 filled.
    assert splib.n_spectra == 1620
    assert splib.n_bands == 224
    assert splib.dropped == {"not_spectra": 682, "missing": 837, "filled": 1060}
    assert len(splib.names) == 1620
    assert "Kaolinite CM9 BECKb AREF" in splib.names
    assert not any("error bars" in n or n.startswith(("Wavelengths", "Resolution")) for n in splib.names)
    wl = splib.wavelengths_nm
    assert wl.shape == (224,)
    assert wl.min() == pytest.approx(383.15, abs=0.01)
    assert wl.max() == pytest.approx(2508.2, abs=0.01)
    assert splib.fwhm_nm[0] == pytest.approx(9.94, abs=1e-3)
    assert np.all(np.isfinite(splib.spectra))
    assert splib.spectra.min() >= 0.0 and splib.spectra.max() < 1.5


@needs_data
def test_splib07_values_and_hdr_path(splib):
    raw = np.fromfile(SPLIB, "<f4").reshape(3139, 224)
    k = splib.names.index("Kaolinite CM9 BECKb AREF")
    row = 894  # its row in the file (no missing value)
    np.testing.assert_array_equal(splib.spectra[k], raw[row].astype(np.float64))
    other = read_library(SPLIB.with_suffix(".hdr"))
    assert other.names == splib.names
    np.testing.assert_array_equal(other.spectra, splib.spectra)


@needs_data
def test_splib07_last_band_filled_by_nearest(splib):
    # most spectra miss only the 2508 nm band: filled with the 2498 nm value
    raw = np.fromfile(SPLIB, "<f4").reshape(3139, 224)
    k = splib.names.index("Asphalt GDS376 Blck_Road old ASDFRa AREF")
    assert raw[2457, -1] < -1e30
    assert splib.spectra[k, -1] == pytest.approx(float(raw[2457, -2]))


def test_bundled_library():
    path = bundled_library_path()
    assert path.name == "usgs_minerals_vegetation.csv" and path.exists()
    lib = read_library(path)
    assert 28 <= lib.n_spectra <= 34 and lib.n_bands == 224
    assert np.all(np.isfinite(lib.spectra))
    assert np.all(np.diff(lib.wavelengths_nm) >= 0)
    assert 370 < lib.wavelengths_nm[0] < 400 and 2490 < lib.wavelengths_nm[-1] < 2520
    assert _angles_deg(lib.spectra).min() > 5.0
    assert len(set(lib.names)) == lib.n_spectra


# ------------------------------------------------------------------ CSV
def test_csv_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    wl = np.linspace(400.0, 2500.0, 50)
    s = rng.uniform(0.01, 0.9, (3, 50))
    names = ["grass", 'soil, "dry"', "water"]
    out = write_csv(tmp_path / "sub" / "lib.csv", s, names, wl)
    assert out.exists() and [p.name for p in out.parent.iterdir()] == ["lib.csv"]
    assert out.read_text().splitlines()[0].startswith("wavelength_nm,")
    lib = read_library(out)
    assert lib.names == names
    np.testing.assert_allclose(lib.wavelengths_nm, wl, rtol=1e-6)
    np.testing.assert_allclose(lib.spectra, s, rtol=1e-7)


def test_csv_band_column(tmp_path):
    out = write_csv(tmp_path / "b.csv", np.ones((2, 4)), ["a", "b"])
    assert out.read_text().splitlines()[:2] == ["band,a,b", "1,1,1"]
    lib = read_library(out)
    assert lib.wavelengths_nm is None and lib.spectra.shape == (2, 4)
    with pytest.raises(UnmixError, match="no wavelengths"):
        resample(lib, [500.0, 600.0])


@pytest.mark.parametrize("header,scale", [("wavelength", 1000.0), ("Wavelength (um)", 1000.0),
                                          ("wl", 1000.0), ("lambda", 1000.0)])
def test_csv_micrometres_to_nm(tmp_path, header, scale):
    p = tmp_path / "um.csv"
    p.write_text(f"{header},x\n0.4,0.1\n1.0,0.2\n2.5,0.3\n")
    lib = read_library(p)
    np.testing.assert_allclose(lib.wavelengths_nm, np.array([0.4, 1.0, 2.5]) * scale)


def test_csv_nm_kept_and_semicolon(tmp_path):
    p = tmp_path / "nm.csv"
    p.write_text("# comment\nwavelength_nm;x;y\n400;0.1;0.5\n500;0.2;0.6\n")
    lib = read_library(p)
    np.testing.assert_allclose(lib.wavelengths_nm, [400.0, 500.0])
    np.testing.assert_allclose(lib.spectra, [[0.1, 0.2], [0.5, 0.6]])


def test_csv_missing_cells(tmp_path):
    p = tmp_path / "m.csv"
    rows = ["wavelength,good,gappy,bad"]
    for i, w in enumerate(range(400, 420)):
        gappy = "" if i == 5 else f"{0.1 * i:.1f}"
        bad = "nan" if i < 4 else "0.5"  # 20 % missing -> dropped
        rows.append(f"{w},0.3,{gappy},{bad}")
    p.write_text("\n".join(rows) + "\n")
    lib = read_library(p)
    assert lib.names == ["good", "gappy"]
    assert lib.spectra[1, 5] == pytest.approx(0.5)  # interpolated between 0.4 and 0.6
    assert lib.dropped["missing"] == 1 and lib.dropped["filled"] == 1


@pytest.mark.parametrize("text,match", [
    ("name,a,b\n400,1,2\n", "no wavelength column"),
    ("wavelength,a,b\n400,1,2\n500,1\n", "line 3: 2 values"),
    ("wavelength,a\n400,0.1\n500,abc\n", "non-numeric value 'abc'"),
    ("", "empty library"),
    ("wavelength,a\n", "empty library"),
    ("wavelength\n400\n", "empty library"),
    ("400,0.1\n500,0.2\n", "no wavelength column"),
    ("wavelength,a\n400,nan\n500,nan\n", "empty library"),
])
def test_csv_malformed(tmp_path, text, match):
    p = tmp_path / "broken.csv"
    p.write_text(text)
    with pytest.raises(UnmixError, match=match) as info:
        read_library(p)
    assert "broken.csv" in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(UnmixError, match="not found"):
        read_library(tmp_path / "nope.csv")
    (tmp_path / "x.sli").write_bytes(b"\0" * 8)
    with pytest.raises(UnmixError, match="no ENVI header"):
        read_library(tmp_path / "x.sli")


# ------------------------------------------------------------------ ENVI
def _write_envi(folder: Path, data: np.ndarray, header: str, name: str = "lib") -> Path:
    sli = folder / f"{name}.sli"
    data.tofile(sli)
    (folder / f"{name}.hdr").write_text(header)
    return sli


def test_envi_big_endian_int16_scaled(tmp_path):
    d = np.array([[1000, 2000, 3000], [-32768, 5000, 6000], [-32768, -32768, 7000]], dtype=">i2")
    hdr = ("ENVI\nsamples = 3\nlines = 3\nbands = 1\nheader offset = 0\nfile type = ENVI Spectral Library\n"
           "data type = 2\ninterleave = bsq\nbyte order = 1\nwavelength units = Micrometers\n"
           "reflectance scale factor = 10000\ndata ignore value = -32768\n"
           "wavelength = {0.5, 0.6,\n 0.7}\nspectra names = {one, two, three}\n")
    lib = read_library(_write_envi(tmp_path, d, hdr), max_missing_fraction=0.5)
    assert lib.names == ["one", "two"]  # 'three' misses 2 of 3 bands
    assert lib.dropped == {"not_spectra": 0, "missing": 1, "filled": 1}
    np.testing.assert_allclose(lib.wavelengths_nm, [500.0, 600.0, 700.0])
    np.testing.assert_allclose(lib.spectra, [[0.1, 0.2, 0.3], [0.5, 0.5, 0.6]])


def test_envi_float64_offset_and_names_with_commas(tmp_path):
    d = np.arange(8, dtype="<f8").reshape(2, 4) + 1.0
    sli = tmp_path / "lib.sli"
    sli.write_bytes(b"\0" * 16 + d.tobytes())
    (tmp_path / "lib.sli.hdr").write_text(
        "ENVI\nsamples = 4\nlines = 2\nbands = 1\nheader offset = 16\ndata type = 5\n"
        "byte order = 0\nwavelength = {400, 500, 600, 700}\n"
        "spectra names = {\n soil, dry ,\n water, clear\n}\n")
    lib = read_library(tmp_path / "lib.sli.hdr")
    assert lib.names == ["soil, dry", "water, clear"]
    np.testing.assert_array_equal(lib.spectra, d)
    np.testing.assert_allclose(lib.wavelengths_nm, [400, 500, 600, 700])


@pytest.mark.parametrize("header,match", [
    ("ENVI\nlines = 2\nbands = 1\ndata type = 4\n", "'samples' is missing"),
    ("ENVI\nsamples = 3\nbands = 1\ndata type = 4\n", "'lines' is missing"),
    ("ENVI\nsamples = 3\nlines = 2\nbands = 1\n", "'data type' is missing"),
    ("ENVI\nsamples = x\nlines = 2\ndata type = 4\n", "not an integer"),
    ("ENVI\nsamples = 3\nlines = 2\ndata type = 99\n", "unsupported ENVI data type"),
    ("samples = 3\nlines = 2\ndata type = 4\n", "not an ENVI header"),
    ("ENVI\nsamples = 3\nlines = 2\ndata type = 4\nwavelength = {1, 2\n", "unclosed"),
    ("ENVI\nsamples = 3\nlines = 2\ndata type = 4\nwavelength = {1, 2}\n", "2 values, expected 3"),
    ("ENVI\nsamples = 3\nlines = 3\ndata type = 4\n", "file size 24 bytes does not match"),
    ("ENVI\nsamples = 3\nlines = 2\nbands = 2\ndata type = 4\n", "bands = 1"),
])
def test_envi_malformed(tmp_path, header, match):
    sli = _write_envi(tmp_path, np.ones((2, 3), dtype="<f4"), header)
    with pytest.raises(UnmixError, match=match) as info:
        read_library(sli)
    assert "lib." in str(info.value)


# ------------------------------------------------------------ resampling
def _fine_library(f) -> SpectralLibrary:
    wl = np.arange(350.0, 2551.0, 1.0)
    return SpectralLibrary(["s"], wl, f(wl)[None, :])


def test_resample_linear_and_quadratic_exact():
    target = np.array([500.0, 1000.0, 1500.0, 2000.0])
    lin = _fine_library(lambda x: 0.1 + 1e-4 * x)
    np.testing.assert_allclose(resample(lin, target).spectra[0], 0.1 + 1e-4 * target, rtol=1e-12)
    np.testing.assert_allclose(resample(lin, target, 20.0).spectra[0], 0.1 + 1e-4 * target, rtol=1e-9)
    # a Gaussian response of std sigma adds sigma**2 * f''/2 to a quadratic
    quad = _fine_library(lambda x: (x - 1200.0) ** 2)
    fwhm = 30.0
    sigma = fwhm / 2.3548
    g = resample(quad, target, fwhm).spectra[0]
    lin_i = resample(quad, target).spectra[0]
    np.testing.assert_allclose(g - lin_i, sigma ** 2, rtol=0.03)


def test_resample_gaussian_close_to_interp_on_smooth_spectrum():
    lib = _fine_library(lambda x: 0.4 + 0.2 * np.sin(x / 150.0) + 0.05 * np.cos(x / 60.0))
    target = np.linspace(400.0, 2500.0, 224)
    g = resample(lib, target, np.full(224, 10.0)).spectra[0]
    i = resample(lib, target).spectra[0]
    assert np.abs(g - i).max() < 5e-4
    assert np.all(np.isfinite(g))


def test_resample_matrix_rows_sum_to_one_and_unsorted_source():
    src = np.array([400.0, 500.0, 450.0, 600.0, 550.0])  # non-monotonic, like AVIRIS-95
    r = resample_matrix(src, np.array([425.0, 575.0, 300.0]), np.array([np.nan, 30.0, np.nan]))
    np.testing.assert_allclose(r.sum(axis=1), 1.0)
    np.testing.assert_allclose(r[0], [0.5, 0.0, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(r[2], [1.0, 0.0, 0.0, 0.0, 0.0])  # nearest below range


@needs_data
def test_resample_splib_to_samson(splib):
    from scipy.io import loadmat
    wl = loadmat(SAMSON_WL)["lambda_Samson"].ravel()
    assert wl.shape == (156,)
    out = resample(splib, wl, np.full(wl.size, 3.2))
    assert out.spectra.shape == (1620, 156) and np.all(np.isfinite(out.spectra))
    np.testing.assert_allclose(out.wavelengths_nm, wl)
    lin = resample(splib, wl)
    # AVIRIS-95 samples every ~10 nm, so both methods agree closely
    assert np.median(np.abs(out.spectra - lin.spectra)) < 2e-3


def test_resample_overlap_errors():
    lib = _fine_library(lambda x: np.ones_like(x) * 0.3)
    with pytest.raises(UnmixError, match="does not overlap"):
        resample(lib, [0.4, 0.5, 0.6])  # micrometres by mistake
    with pytest.raises(UnmixError, match="covers only"):
        resample(lib, np.linspace(2000.0, 4000.0, 50))
    edge = resample(lib, np.linspace(340.0, 2540.0, 100))  # a few bands past the range
    np.testing.assert_allclose(edge.spectra, 0.3)


def test_write_csv_bad_shapes(tmp_path):
    with pytest.raises(UnmixError, match="names"):
        write_csv(tmp_path / "x.csv", np.ones((2, 3)), ["a"])
    with pytest.raises(UnmixError, match="wavelengths"):
        write_csv(tmp_path / "x.csv", np.ones((2, 3)), ["a", "b"], [1.0, 2.0])
    assert not any(tmp_path.iterdir())
