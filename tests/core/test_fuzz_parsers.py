"""Fuzzing (hypothesis) of every parser that reads user files: ENVI headers of spectral
libraries, CSV spectral libraries, ENVI raster headers (through GDAL) and the wavelength
metadata of any raster. Whatever the input, the result is either well formed or a one-line
:class:`UnmixError` — never another exception. Inputs that once broke a parser are kept
as ``@example``s and as the plain regression tests at the end."""

import itertools
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from osgeo import gdal

from core.errors import UnmixError
from core.io.library import parse_envi_header, read_library
from core.io.raster import RasterReader, read_info
from core.io.gdal_backend import metadata_view
from core.io.raster_meta import parse_spectral_metadata

#: 200 examples per parser keep the suite fast; DIFFUNMIX_FUZZ_EXAMPLES=20000 runs a longer campaign.
FUZZ = settings(max_examples=int(os.environ.get("DIFFUNMIX_FUZZ_EXAMPLES", "200")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])
_names = itertools.count()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _one_line(exc: UnmixError) -> str:
    msg = str(exc)
    assert msg.strip() and "\n" not in msg and "\r" not in msg, repr(msg)
    return msg


def _check_library(lib) -> None:
    k, b = lib.spectra.shape
    assert k >= 1 and b >= 1 and len(lib.names) == k
    assert np.all(np.isfinite(lib.spectra))
    if lib.wavelengths_nm is not None:
        wl = lib.wavelengths_nm
        assert wl.shape == (b,) and np.all(np.isfinite(wl)) and np.all(wl > 0)
    if lib.fwhm_nm is not None:
        assert lib.fwhm_nm.shape == (b,)


def _read_library_or_error(path):
    try:
        lib = read_library(path)
    except UnmixError as exc:
        return _one_line(exc)
    _check_library(lib)
    return lib


# --------------------------------------------------------------------- CSV libraries
_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**6, 10**6).map(str),
    st.floats(0.3, 2.6).map(lambda v: f"{v:.4f}"),  # plausible µm
    st.floats(350, 2600).map(lambda v: f"{v:.2f}"),  # plausible nm
)
_junk = st.sampled_from(["", " ", "nan", "NA", "n/a", "null", "abc", "1e999", "-1.23e34", '"', '"1,5"', "0x10",
                         "1_000", "µm", "\x00", "\ufeff", "1.5.2", "--1", "+inf", "'", ";", "\t"])
_cell = st.one_of(_numbers, _junk, st.text(max_size=6))
#: Text without line or field separators of their own (the raw-bytes test covers those).
_printable = st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters=",;\t\x85")
_VALID_FIRST = ["wavelength", "Wavelength (µm)", "wavelength_nm", "wavelength_um", "band", "wl", "lambda", "nm", "um",
                "Band", "channel", "wavelength [nm]"]
#: True about one draw in eight (hypothesis favours the small end of ``integers``, so not ``integers(0, 7) == 0``).
_rarely = st.sampled_from([False] * 7 + [True])
_first_header = _rarely.flatmap(lambda odd: st.one_of(st.sampled_from(["x", "", "name"]), st.text(max_size=10))
                                if odd else st.sampled_from(_VALID_FIRST))


@st.composite
def csv_libraries(draw) -> str:
    delim = draw(st.sampled_from([",", ";", "\t"]))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    n_cols = draw(st.integers(1, 5) if draw(_rarely) else st.integers(2, 5))
    header = [draw(_first_header)] + [draw(st.one_of(st.text(_printable, max_size=8), st.sampled_from(
        ["Wavelengths", "error bars", "fwhm", "soil", "a,b", "grass", "water"]))) for _ in range(n_cols - 1)]
    rows = []
    sane = st.floats(1e-3, 3000).map(lambda v: f"{v:.6g}")
    for _ in range(draw(st.integers(0, 8) if draw(_rarely) else st.integers(2, 8))):
        length = draw(st.integers(0, n_cols + 1)) if draw(_rarely) else n_cols
        rows.append([draw(st.one_of(_cell, _numbers)) if draw(_rarely) else draw(sane) for _ in range(length)])
    lines = [delim.join(header)] + [delim.join(r) for r in rows]
    if draw(_rarely):
        lines.insert(draw(st.integers(0, len(lines))), "# " + draw(st.text(max_size=10)))
    bom = "\ufeff" if draw(_rarely) else ""
    return bom + eol.join(lines) + draw(st.sampled_from(["", eol]))


@FUZZ
@given(text=csv_libraries())
@example(text="wavelength,a,b\n400\n500\n")  # rows of one value once broadcast over every column
@example(text="wavelength,a\n400," + "1" * 200000 + "\n")  # csv.Error (field larger than field limit)
@example(text="wavelength_um,a\n1e306,0.1\n2e306,0.2\n")  # µm → nm overflowed to inf wavelengths
def test_fuzz_csv_library(work, text):
    path = work / f"lib{next(_names)}.csv"
    path.write_text(text, encoding="utf-8", newline="")
    _read_library_or_error(path)


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "replace"))))
@example(data=b"wavelength,a\n400,0\x00.1\n")
@example(data=b"\xff\xfe\x00w\x00l\x00")
def test_fuzz_csv_library_raw_bytes(work, data):
    path = work / f"raw{next(_names)}.csv"
    path.write_bytes(data)
    _read_library_or_error(path)


# --------------------------------------------------------------------- ENVI libraries
_ENVI_KEYS = ["samples", "lines", "bands", "data type", "byte order", "header offset", "wavelength", "fwhm",
              "wavelength units", "spectra names", "data ignore value", "reflectance scale factor", "file type",
              "interleave", "description"]
_int_text = st.one_of(st.integers(-3, 8).map(str), st.sampled_from(["", "x", "1e3", "99999999999999999999",
                                                                   "-2147483649", "4 5", "{3}", "3.5"]))
_list_text = st.lists(st.one_of(_numbers, _junk), max_size=7).map(lambda v: "{" + ", ".join(v) + "}")
_units = st.sampled_from(["Nanometers", "Micrometers", "um", "µm", "Wavenumber", "Index", "GHz", "Unknown",
                          "mm", "", "cm-1"])


@st.composite
def envi_libraries(draw):
    """(header text, data bytes): mostly valid structure with hostile values, sometimes broken."""
    samples, lines = draw(st.integers(1, 6)), draw(st.integers(1, 4))
    code = draw(st.sampled_from([4, 1, 2, 3, 5, 12, 13, 14, 15, 4, 4, 5] + ([6, 0, 99] if draw(_rarely) else [])))
    itemsize = {1: 1, 2: 2, 3: 4, 4: 4, 5: 8, 12: 2, 13: 4, 14: 8, 15: 8}.get(code, 4)
    offset = draw(st.sampled_from([0, 0, 0, 8] + ([-4] if draw(_rarely) else [])))
    fields = {"samples": str(samples), "lines": str(lines), "bands": "1", "data type": str(code),
              "byte order": draw(st.sampled_from(["0", "1", "0", "1", "2"] + (["x"] if draw(_rarely) else []))),
              "header offset": str(offset)}
    if draw(_rarely):  # overwrite some with hostile values
        for key in draw(st.lists(st.sampled_from(_ENVI_KEYS), max_size=3)):
            fields[key] = draw(_int_text)
    if draw(st.booleans()):
        exact = st.lists(st.one_of(_numbers, st.floats(0.3, 2600).map(repr)), min_size=samples, max_size=samples)
        fields["wavelength"] = draw(st.one_of(_list_text, exact.map(lambda v: "{" + ",\n ".join(v) + "}"),
                                              exact.map(lambda v: "{" + ", ".join(v) + "}")))
        fields["wavelength units"] = draw(_units)
    if draw(_rarely):
        fields["fwhm"] = draw(_list_text)
    if draw(st.booleans()):
        fields["spectra names"] = "{" + draw(st.text(max_size=30)).replace("}", "") + "}"
    for key in ("data ignore value", "reflectance scale factor"):
        if draw(_rarely):
            fields[key] = draw(st.one_of(_numbers, _junk))
    body = "".join(f"{k} = {v}\n" for k, v in fields.items())
    if draw(_rarely):
        body += draw(st.sampled_from(["wavelength = {1, 2\n", "= 3\n", "junk line\n", "x = {\n"]))
    start = draw(st.sampled_from(["ENVI\n"] * 4 + ["ENVI\r\n", "\ufeffENVI\n", "envi ", "", "ENV\n"]))
    header = start + body
    n_bytes = max(offset, 0) + samples * lines * itemsize + (draw(st.sampled_from([1, -1])) if draw(_rarely) else 0)
    data = draw(st.binary(min_size=max(n_bytes, 0), max_size=max(n_bytes, 0)))
    return header, data


@FUZZ
@given(case=envi_libraries())
@example(case=("ENVI\nsamples = 1000\nlines = 1\nbands = 1\ndata type = 1\nheader offset = -990\n",
               b"\x01" * 10))  # negative offset: numpy's fromfile raised OSError
@example(case=("ENVI\nsamples = 3\nlines = 2\nbands = 1\ndata type = 4\nwavelength = {nan, 1, 2}\n",
               np.ones(6, "<f4").tobytes()))  # NaN wavelengths were accepted
@example(case=("ENVI\nsamples = 3\nlines = 2\nbands = 1\ndata type = 4\nwavelength = {1, 2, 3}\n"
               "wavelength units = Wavenumber\n", np.ones(6, "<f4").tobytes()))  # taken for µm
@example(case=("ENVI\nsamples = 2\nlines = 1\nbands = 1\ndata type = 4\nreflectance scale factor = 1e-320\n",
               np.ones(2, "<f4").tobytes()))  # scaling overflowed to inf spectra
@example(case=("ENVI\nsamples = {x\ny}\nlines = 1\nbands = 1\ndata type = 4\n", b""))  # two-line message
@example(case=("ENVI\nsamples = 1\nlines = 1\nbands = 1\ndata type = 4\nbyte order = 0\nheader offset = 0\n"
               "wavelength = {}\nwavelength units = Wavenumber\nfwhm = {0.0}\n",
               b"\x00\x00\x00\x00"))  # band widths in wavenumbers without band centres: TypeError
def test_fuzz_envi_library(work, case):
    header, data = case
    stem = work / f"envi{next(_names)}"
    stem.with_suffix(".hdr").write_text(header, encoding="utf-8")
    stem.with_suffix(".sli").write_bytes(data)
    _read_library_or_error(stem.with_suffix(".sli"))
    _read_library_or_error(stem.with_suffix(".hdr"))  # the header path works the same


@FUZZ
@given(text=st.one_of(st.text(max_size=200), st.text(max_size=200).map(lambda t: "ENVI\n" + t),
                      st.lists(st.tuples(st.text(max_size=12), st.text(max_size=20)), max_size=6).map(
                          lambda kv: "ENVI\n" + "".join(f"{k} = {v}\n" for k, v in kv))))
@example(text="ENVI\nwavelength = {1,\n2")
@example(text="ENVI\n=\n= {}\n")
def test_fuzz_parse_envi_header(text):
    try:
        h = parse_envi_header(text, "h.hdr")
    except UnmixError as exc:
        _one_line(exc)
        return
    assert isinstance(h, dict)
    assert all(isinstance(k, str) and isinstance(v, str) and k == k.lower() and "\n" not in k for k, v in h.items())


# --------------------------------------------------------------------- ENVI rasters (GDAL + raster_meta)
@st.composite
def envi_raster_headers(draw):
    """(header text, bands) of a 3×2 byte raster: valid structure, hostile spectral fields."""
    bands = draw(st.integers(1, 4))
    lines = ["ENVI", "samples = 3", "lines = 2", f"bands = {bands}", "header offset = 0", "data type = 1",
             f"interleave = {draw(st.sampled_from(['bsq', 'bil', 'bip']))}", "byte order = 0"]
    exact = st.lists(_numbers, min_size=bands, max_size=bands).map(lambda v: "{" + ", ".join(v) + "}")
    for key in ("wavelength", "fwhm", "bbl"):
        if draw(st.booleans()):
            lines.append(f"{key} = {draw(st.one_of(exact, _list_text, st.text(max_size=15)))}")
    if draw(st.booleans()):
        lines.append(f"wavelength units = {draw(st.one_of(_units, st.text(max_size=10)))}")
    if draw(st.booleans()):
        names = st.one_of(st.sampled_from(["Band 1 (450.5 nm)", "0.45 µm", "B (0.5)", "1e999 nm", "(nan)", "-3 nm",
                                           "0 um", "x"]), st.text(max_size=12))
        lines.append("band names = {" + ", ".join(draw(names).replace("}", "").replace(",", " ")
                                                 for _ in range(bands)) + "}")
    if draw(st.integers(0, 5)) == 0:
        lines.append(draw(st.text(max_size=40)))
    return "\n".join(lines) + "\n", bands


@FUZZ
@given(case=envi_raster_headers())
@example(case=("ENVI\nsamples = 3\nlines = 2\nbands = 2\nheader offset = 0\ndata type = 1\ninterleave = bsq\n"
               "byte order = 0\nwavelength = {-5, 0}\n", 2))  # negative wavelengths were taken for µm
@example(case=("ENVI\nsamples = 3\nlines = 2\nbands = 2\nheader offset = 0\ndata type = 1\ninterleave = bsq\n"
               "byte order = 0\nwavelength units = Micrometers\nwavelength = {1e306, 2e306}\n", 2))  # → inf nm
def test_fuzz_envi_raster_header(work, case):
    header, bands = case
    stem = work / f"ras{next(_names)}"
    stem.with_suffix(".img").write_bytes(bytes(range(3 * 2 * bands)))
    stem.with_suffix(".hdr").write_text(header, encoding="utf-8")
    try:
        info = read_info(str(stem.with_suffix(".hdr")))
        with RasterReader(str(stem.with_suffix(".img")), bands=list(range(info.count))) as reader:
            cube, valid = reader.read()
    except UnmixError as exc:
        _one_line(exc)
        return
    assert cube.shape == (info.count, 2, 3) and valid.shape == (2, 3)
    _check_spectral(info.wavelengths_nm, info.fwhm_nm, info.bbl, info.count)


def _check_spectral(wl, fwhm, bbl, n):
    if wl is not None:
        assert wl.shape == (n,) and np.all(np.isfinite(wl)) and np.all(wl > 0)
    if fwhm is not None:
        assert wl is not None and fwhm.shape == (n,) and np.all(np.isfinite(fwhm))
    assert bbl.shape == (n,) and bbl.dtype == bool


# --------------------------------------------------------------------- band metadata of any raster
_md_value = st.one_of(_numbers, _junk, st.text(max_size=12))


@st.composite
def band_metadata(draw):
    n = draw(st.integers(1, 4))
    ds_md = {}
    for key in draw(st.lists(st.sampled_from(["wavelength", "wavelength_units", "fwhm", "bbl"]), max_size=3)):
        ds_md[key] = draw(st.one_of(_list_text, _md_value, _units))
    per_band = []
    for _ in range(n):
        md = {}
        for key in draw(st.lists(st.sampled_from(["wavelength", "wavelength_units", "fwhm"]), max_size=3)):
            md[key] = draw(st.one_of(_md_value, _units))
        per_band.append(md)
    descriptions = draw(st.lists(st.one_of(st.text(max_size=20), st.sampled_from(
        ["Band 1 (450.5 nm)", "0.4505 µm", "B1 (0.45)", "1e999 nm", "(1e400)", "nan nm", "-2 nm", "5 micrometres"])),
        min_size=n, max_size=n))
    envi = draw(st.one_of(st.none(), st.dictionaries(st.sampled_from(["wavelength", "wavelength_units", "fwhm",
                                                                       "bbl"]), st.one_of(_list_text, _md_value),
                                                      max_size=3)))
    return n, ds_md, per_band, descriptions, envi


@FUZZ
@given(case=band_metadata())
@example(case=(2, {}, [{}, {}], ["(1e400)", "(2)"], None))
@example(case=(2, {"wavelength": "{0, -1}"}, [{}, {}], ["", ""], None))
def test_fuzz_spectral_metadata_of_any_raster(case):
    n, ds_md, per_band, descriptions, envi = case
    ds = gdal.GetDriverByName("MEM").Create("", 2, 2, n, gdal.GDT_Byte)
    for key, value in ds_md.items():
        ds.SetMetadataItem(key, value.replace("\x00", ""))
    if envi:
        ds.SetMetadata({k: v.replace("\x00", "") for k, v in envi.items()}, "ENVI")
    for i, (md, desc) in enumerate(zip(per_band, descriptions)):
        band = ds.GetRasterBand(i + 1)
        band.SetDescription(desc.replace("\x00", ""))
        for key, value in md.items():
            band.SetMetadataItem(key, value.replace("\x00", ""))
    wl, fwhm, bbl = parse_spectral_metadata(metadata_view(ds))  # malformed metadata is ignored, never raised
    _check_spectral(wl, fwhm, bbl, n)


# --------------------------------------------------------------------- regressions (plain tests)
@pytest.mark.parametrize("text, match", [
    ("wavelength,a,b\n400\n500\n", "line 2: 1 values, the header has 3"),
    ("wavelength,a\n400," + "1" * 200000 + "\n", "malformed CSV"),
    ("wavelength_um,a\n1e306,0.1\n2e306,0.2\n", "positive, finite"),
    ("wavelength,a\n400,0\x00.1\n", r"non-numeric value '0\?\.1'"),
    ("wavelength,a\n400," + "x" * 5000 + "\n", "non-numeric value 'x{39}…'$"),
])
def test_csv_library_regressions(tmp_path, text, match):
    path = tmp_path / "lib.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UnmixError, match=match) as info:
        read_library(path)
    _one_line(info.value)


@pytest.mark.parametrize("header, data, match", [
    ("header offset = -990\nsamples = 1000\ndata type = 1\n", b"\x01" * 10, "'header offset = -990' is negative"),
    ("samples = 3\ndata type = 4\nwavelength = {nan, 1, 2}\n", b"\0" * 12, "positive, finite"),
    ("samples = 3\ndata type = 4\nwavelength = {-1, 0, 2}\n", b"\0" * 12, "positive, finite"),
    ("samples = 3\ndata type = 4\nwavelength = {1, 2, 3}\nwavelength units = Wavenumber\n", b"\0" * 12,
     "units 'Wavenumber' are not supported"),
    ("samples = {x\ny}\ndata type = 4\n", b"", "'samples = x\\?y' is not an integer"),
])
def test_envi_library_regressions(tmp_path, header, data, match):
    (tmp_path / "lib.hdr").write_text("ENVI\nlines = 1\nbands = 1\n" + header)
    (tmp_path / "lib.sli").write_bytes(data)
    with pytest.raises(UnmixError, match=match) as info:
        read_library(tmp_path / "lib.sli")
    _one_line(info.value)


def test_envi_library_tiny_scale_factor_does_not_make_inf_spectra(tmp_path):
    (tmp_path / "lib.hdr").write_text("ENVI\nsamples = 3\nlines = 2\nbands = 1\ndata type = 4\n"
                                      "reflectance scale factor = 1e-320\n")
    np.array([[1e-30, 2e-30, 1.0], [1e-30, 1e-30, 1e-30]], "<f4").tofile(tmp_path / "lib.sli")
    lib = read_library(tmp_path / "lib.sli")  # row 1 loses 1 of 3 bands (> 10 %): dropped
    assert lib.n_spectra == 1 and np.all(np.isfinite(lib.spectra))


@pytest.mark.parametrize("wavelengths, units", [("{-5, 0}", ""), ("{1e306, 2e306}", "Micrometers")])
def test_raster_nonsense_wavelengths_are_ignored(tmp_path, wavelengths, units):
    (tmp_path / "r.img").write_bytes(bytes(12))
    (tmp_path / "r.hdr").write_text("ENVI\nsamples = 3\nlines = 2\nbands = 2\nheader offset = 0\ndata type = 1\n"
                                    f"interleave = bsq\nbyte order = 0\nwavelength = {wavelengths}\n"
                                    f"wavelength units = {units}\n")
    info = read_info(str(tmp_path / "r.hdr"))
    assert info.count == 2 and info.wavelengths_nm is None
