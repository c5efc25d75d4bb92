"""core.io.raster on real GDAL files, through each backend: metadata, scaling, masks, windows, atomic writes,
errors."""

import os
from types import SimpleNamespace

import numpy as np
import pytest
import rasterio
from osgeo import gdal, osr

from core.errors import UnmixError
from core.io.raster import (
    NODATA,
    RasterReader,
    RasterWriter,
    band_subset,
    check_output_dir,
    read_cube,
    read_info,
    write_raster,
)

GT = (500000.0, 30.0, 0.0, 5000000.0, 0.0, -30.0)

pytestmark = pytest.mark.usefixtures("raster_backend")  # every test once per backend (gdal, rasterio)


def _wkt(epsg=32633):
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return srs.ExportToWkt()


def _geotiff(path, data, nodata=None, options=(), scale=None, offset=None, descriptions=None, band_md=None,
             ds_md=None):
    """Write ``data (B, H, W)`` with GDAL's GTiff driver (type from the numpy dtype)."""
    b, h, w = data.shape
    gtype = {np.dtype("int16"): gdal.GDT_Int16, np.dtype("float32"): gdal.GDT_Float32,
             np.dtype("uint16"): gdal.GDT_UInt16}[data.dtype]
    ds = gdal.GetDriverByName("GTiff").Create(str(path), w, h, b, gtype, list(options))
    ds.SetGeoTransform(GT)
    ds.SetProjection(_wkt())
    for i in range(b):
        band = ds.GetRasterBand(i + 1)
        band.WriteArray(data[i])
        if nodata is not None:
            band.SetNoDataValue(nodata)
        if scale is not None:
            band.SetScale(scale)
        if offset is not None:
            band.SetOffset(offset)
        if descriptions is not None:
            band.SetDescription(descriptions[i])
        for k, v in (band_md[i] if band_md else {}).items():
            band.SetMetadataItem(k, v)
    if ds_md:
        ds.SetMetadata(ds_md)
    ds.FlushCache()
    ds = None
    return str(path)


def _envi(tmp_path, extra_header, data=None):
    """ENVI file written by GDAL's ENVI driver, header then extended by hand."""
    data = np.arange(4 * 6 * 5, dtype=np.int16).reshape(4, 6, 5) if data is None else data
    path = str(tmp_path / "scene.img")
    ds = gdal.GetDriverByName("ENVI").Create(path, data.shape[2], data.shape[1], data.shape[0], gdal.GDT_Int16)
    for i in range(data.shape[0]):
        ds.GetRasterBand(i + 1).WriteArray(data[i])
    ds = None
    hdr = tmp_path / "scene.hdr"
    hdr.write_text(hdr.read_text() + extra_header)
    return path


# ------------------------------------------------------------------ writing
def test_written_raster_reread_with_rasterio(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.random((3, 40, 50)).astype(np.float32)
    a[1, 5, 7] = np.nan
    like = read_info(_geotiff(tmp_path / "in.tif", np.zeros((1, 40, 50), np.float32)))
    out = tmp_path / "out" / "abund.tif"
    assert write_raster(out, a, like=like, band_names=["soil", "tree", "water"]) == str(out)
    with rasterio.open(out) as src:
        assert src.count == 3 and (src.width, src.height) == (50, 40)
        assert src.transform.to_gdal() == pytest.approx(GT)
        assert src.crs.to_epsg() == 32633
        assert src.nodatavals == (NODATA, NODATA, NODATA)
        assert src.descriptions == ("soil", "tree", "water")
        assert src.dtypes[0] == "float32"
        assert src.profile["tiled"] and src.profile["compress"] == "deflate"
        assert (src.profile["blockxsize"], src.profile["blockysize"]) == (64, 64)  # capped: 50, 40 ≤ 64
        got = src.read()
    assert got[1, 5, 7] == NODATA
    np.testing.assert_array_equal(np.where(np.isnan(a), NODATA, a), got)
    assert os.listdir(tmp_path / "out") == ["abund.tif"]  # no temp or sidecar left
    ds = gdal.Open(str(out))
    assert ds.GetMetadata("IMAGE_STRUCTURE")["PREDICTOR"] == "3"


def test_large_raster_gets_256_tiles(tmp_path):
    with RasterWriter(tmp_path / "big.tif", 300, 20, 1, geotransform=GT, projection=_wkt(32617)) as w:
        w.write(np.ones((20, 300), np.float32))
    with rasterio.open(tmp_path / "big.tif") as src:
        assert (src.profile["blockxsize"], src.profile["blockysize"]) == (256, 32)
        assert src.read(1).sum() == 6000.0 and src.crs.to_epsg() == 32617


def test_write_raster_like_any_object_and_size_check(tmp_path):
    like = SimpleNamespace(geotransform=GT, projection=_wkt())  # no width/height: georeferencing only
    info = read_info(write_raster(tmp_path / "a.tif", np.zeros((4, 5)), like=like))
    assert info.count == 1 and info.geotransform == GT and "32633" in info.projection
    with pytest.raises(ValueError, match="like raster"):
        write_raster(tmp_path / "b.tif", np.zeros((1, 5, 4)), like=info)
    assert not (tmp_path / "b.tif").exists()


def test_wavelengths_written_and_parsed_back(tmp_path):
    wl = np.array([450.5, 550.0, 2456.789])
    out = write_raster(tmp_path / "s.tif", np.ones((3, 8, 9)), wavelengths_nm=wl, fwhm_nm=[10, 11, 12.5])
    ds = gdal.Open(out)
    assert ds.GetMetadata("ENVI")["wavelength_units"] == "Nanometers"
    assert ds.GetRasterBand(3).GetMetadataItem("wavelength") == "2456.789"
    assert ds.GetRasterBand(1).GetMetadataItem("wavelength_units") == "Nanometers"
    info = read_info(out)
    np.testing.assert_allclose(info.wavelengths_nm, wl)
    np.testing.assert_allclose(info.fwhm_nm, [10, 11, 12.5])
    assert info.geotransform is None and info.projection == ""
    assert info.band_names == ["Band 1", "Band 2", "Band 3"]


def test_failing_write_leaves_no_file_and_keeps_existing(tmp_path):
    dest = tmp_path / "a.tif"
    with pytest.raises(RuntimeError, match="boom"):
        with RasterWriter(dest, 10, 10, 2) as w:
            w.write(np.zeros((2, 10, 10)))
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    write_raster(dest, np.full((1, 10, 10), 7.0))
    before = dest.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with RasterWriter(dest, 10, 10, 1) as w:
            assert os.path.exists(w.tmp_path) and os.path.dirname(w.tmp_path) == str(tmp_path)
            raise KeyboardInterrupt
    w2 = RasterWriter(dest, 10, 10, 1)
    w2.write(np.zeros((10, 10)))
    w2.abort()
    assert dest.read_bytes() == before and os.listdir(tmp_path) == ["a.tif"]
    assert read_cube(dest)[0].max() == 7.0


def test_overwrite_replaces_file_and_drops_stale_sidecar(tmp_path):
    dest = tmp_path / "a.tif"
    write_raster(dest, np.full((1, 4, 4), 1.0))
    (tmp_path / "a.tif.aux.xml").write_text("<PAMDataset>stale statistics</PAMDataset>")
    write_raster(dest, np.full((1, 4, 4), 2.0))
    assert read_cube(dest)[0].min() == 2.0
    assert os.listdir(tmp_path) == ["a.tif"]


def test_windowed_writes_and_bad_windows(tmp_path):
    with RasterWriter(tmp_path / "w.tif", 20, 10, 2) as w:
        w.write(np.ones((2, 10, 12)), 0, 0)
        w.write(np.full((2, 10, 8), np.inf), 12, 0)
        with pytest.raises(ValueError):
            w.write(np.ones((2, 3, 3)), 19, 0)
        with pytest.raises(ValueError):
            w.write(np.ones((3, 3, 3)), 0, 0)
    cube, valid, _ = read_cube(tmp_path / "w.tif")
    assert valid[:, :12].all() and not valid[:, 12:].any()
    assert np.isnan(cube[:, :, 12:]).all() and np.nansum(cube) == 2 * 10 * 12


# ------------------------------------------------------------------ wavelengths
def test_envi_header_micrometers_fwhm_bbl(tmp_path):
    path = _envi(tmp_path, "wavelength units = Micrometers\nwavelength = {0.45, 0.55,\n 0.65, 2.2}\n"
                           "fwhm = {0.01, 0.01, 0.012, 0.02}\nbbl = {1, 0, 1, 1}\n")
    for p in (path, str(tmp_path / "scene.hdr")):  # the header path works too
        info = read_info(p)
        assert info.driver == "ENVI" and info.dtype == "int16" and info.path == path
        np.testing.assert_allclose(info.wavelengths_nm, [450, 550, 650, 2200])
        np.testing.assert_allclose(info.fwhm_nm, [10, 10, 12, 20])
        np.testing.assert_array_equal(info.bbl, [True, False, True, True])
    np.testing.assert_array_equal(band_subset(info, None), [0, 2, 3])
    with RasterReader(path) as r:  # default bands: the good ones
        np.testing.assert_array_equal(r.bands, [0, 2, 3])
        cube, valid = r.read()
    assert cube.shape == (3, 6, 5) and valid.all()
    assert cube[1, 0, 0] == 2 * 30 and cube[0, 5, 4] == 29


def test_envi_unsorted_nanometers_and_wavenumber(tmp_path):
    path = _envi(tmp_path, "wavelength units = nm\nwavelength = {700, 400, 500, 600}\n")
    np.testing.assert_allclose(read_info(path).wavelengths_nm, [700, 400, 500, 600])
    sub = tmp_path / "wn"
    sub.mkdir()
    path = _envi(sub, "wavelength units = Wavenumber\nwavelength = {700, 400, 500, 600}\n")
    info = read_info(path)
    assert info.wavelengths_nm is None and info.fwhm_nm is None and info.bbl.all()


def test_geotiff_band_metadata_and_dataset_list(tmp_path):
    data = np.ones((3, 4, 5), np.float32)
    md = [{"wavelength": w, "wavelength_units": "Micrometers", "fwhm": "0.005"} for w in ("0.45", "0.5", "1.1")]
    info = read_info(_geotiff(tmp_path / "b.tif", data, band_md=md))
    np.testing.assert_allclose(info.wavelengths_nm, [450, 500, 1100])
    np.testing.assert_allclose(info.fwhm_nm, [5, 5, 5])
    info = read_info(_geotiff(tmp_path / "d.tif", data, ds_md={"wavelength": "{400, 500.5, 900}",
                                                              "bbl": "{1, 1, 0}"}))
    np.testing.assert_allclose(info.wavelengths_nm, [400, 500.5, 900])
    np.testing.assert_array_equal(info.bbl, [True, True, False])
    assert info.fwhm_nm is None
    info = read_info(_geotiff(tmp_path / "u.tif", data, ds_md={"wavelength": "0.4,0.5,0.6"}))  # no units, small
    np.testing.assert_allclose(info.wavelengths_nm, [400, 500, 600])


@pytest.mark.parametrize("names, expected", [
    (["Band 1 (450.5 nm)", "Band 2 (550 nm)", "Band 3 (650.25 nm)"], [450.5, 550, 650.25]),
    (["450.5 nm", "550 nm", "2200 nm"], [450.5, 550, 2200]),
    (["0.4505 µm", "0.55 um", "2.2 μm"], [450.5, 550, 2200]),
    (["0.45 Micrometers", "0.55 Micrometers", "0.65 Micrometers"], [450, 550, 650]),
    (["B1 (0.45)", "B2 (0.55)", "B3 (0.65)"], [450, 550, 650]),
    (["Band 1", "Band 2", "Band 3"], None),
    (["450 nm", "red", "600 nm"], None),
])
def test_wavelengths_from_band_descriptions(tmp_path, names, expected):
    info = read_info(_geotiff(tmp_path / "n.tif", np.ones((3, 4, 5), np.float32), descriptions=names))
    assert info.band_names == names
    if expected is None:
        assert info.wavelengths_nm is None
    else:
        np.testing.assert_allclose(info.wavelengths_nm, expected)


# ------------------------------------------------------------------ reading
def test_int16_scaled_reflectance_with_nodata(tmp_path):
    raw = np.full((2, 6, 7), 2500, np.int16)
    raw[1] = 10000
    raw[0, 2, 3] = -9999
    path = _geotiff(tmp_path / "r.tif", raw, nodata=-9999, scale=1e-4, offset=0.0)
    info = read_info(path)
    assert info.dtype == "int16" and info.nodata == -9999.0
    np.testing.assert_allclose(info.scale, [1e-4, 1e-4])
    cube, valid, _ = read_cube(path)
    assert cube.dtype == np.float32 and cube.shape == (2, 6, 7)
    assert valid.sum() == 41 and not valid[2, 3]
    assert np.isnan(cube[:, 2, 3]).all()
    np.testing.assert_allclose(cube[0][valid], 0.25, rtol=1e-6)
    np.testing.assert_allclose(cube[1][valid], 1.0, rtol=1e-6)
    path = _geotiff(tmp_path / "o.tif", raw, nodata=-9999, scale=2e-5, offset=-0.1)
    cube, valid, _ = read_cube(path, bands=[1])
    assert cube.shape == (1, 6, 7) and valid.all()  # band 1's nodata pixel is in band 0 only
    np.testing.assert_allclose(cube, 0.1, rtol=1e-5)


def test_nodata_and_nan_pixels_invalid(tmp_path):
    data = np.arange(3 * 5 * 6, dtype=np.float32).reshape(3, 5, 6)
    data[2, 1, 1] = -9999.0
    data[0, 3, 4] = np.nan
    data[1, 4, 0] = np.inf
    path = _geotiff(tmp_path / "f.tif", data, nodata=-9999.0)
    cube, valid, _ = read_cube(path)
    assert valid.sum() == 27
    for r, c in ((1, 1), (3, 4), (4, 0)):
        assert not valid[r, c] and np.isnan(cube[:, r, c]).all()
    np.testing.assert_array_equal(cube[:, valid], data[:, valid])
    cube, valid, _ = read_cube(path, bands=[0, 1])  # band 2's nodata no longer counts
    assert valid[1, 1] and valid.sum() == 28


def test_per_dataset_mask_flags_pixels(tmp_path):
    path = str(tmp_path / "m.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, 4, 3, 2, gdal.GDT_Float32)
    ds.GetRasterBand(1).WriteArray(np.ones((3, 4), np.float32))
    ds.CreateMaskBand(gdal.GMF_PER_DATASET)
    mask = np.full((3, 4), 255, np.uint8)
    mask[0, 0] = 0
    ds.GetRasterBand(1).GetMaskBand().WriteArray(mask)
    ds = None
    _, valid, _ = read_cube(path)
    assert not valid[0, 0] and valid.sum() == 11


@pytest.mark.parametrize("options, block", [(["TILED=YES", "BLOCKXSIZE=16", "BLOCKYSIZE=16"], (16, 16)),
                                            (["BLOCKYSIZE=8"], (70, 8))])
@pytest.mark.parametrize("max_pixels", [600, 1000, 10 ** 6])
def test_windows_cover_exactly_and_align_to_blocks(tmp_path, options, block, max_pixels):
    data = np.random.default_rng(1).random((2, 45, 70)).astype(np.float32)
    path = _geotiff(tmp_path / "t.tif", data, options=options)
    cover = np.zeros((45, 70), int)
    with RasterReader(path, bands=[0, 1]) as r:
        assert r.info.block_size == block
        wins = list(r.windows(max_pixels=max_pixels))
        for x, y, w, h in wins:
            assert x % block[0] == 0 and y % block[1] == 0
            assert x + w == 70 or w % block[0] == 0
            assert y + h == 45 or h % block[1] == 0
            assert w * h <= max_pixels
            if block[0] == 70:  # strips: whole rows
                assert x == 0 and w == 70
            cover[y:y + h, x:x + w] += 1
            cube, valid = r.read(x, y, w, h)
            np.testing.assert_array_equal(cube, data[:, y:y + h, x:x + w])
    assert (cover == 1).all()
    if max_pixels == 10 ** 6:
        assert wins == [(0, 0, 70, 45)]
    if max_pixels == 600 and block == (16, 16):  # 2 tiles per window along a row of tiles
        assert wins[:2] == [(0, 0, 32, 16), (32, 0, 32, 16)] and len(wins) == 3 * 3


@pytest.mark.parametrize("max_pixels", [1, 30, 200])
def test_blocks_larger_than_max_pixels_are_split(tmp_path, max_pixels):
    path = _geotiff(tmp_path / "s.tif", np.ones((1, 30, 40), np.float32), options=["BLOCKYSIZE=30"])
    cover = np.zeros((30, 40), int)
    with RasterReader(path) as r:
        for x, y, w, h in r.windows(max_pixels=max_pixels):
            assert w * h <= max_pixels
            cover[y:y + h, x:x + w] += 1
    assert (cover == 1).all()


def test_read_window_outside_raises(tmp_path):
    path = _geotiff(tmp_path / "s.tif", np.ones((1, 4, 4), np.float32))
    with RasterReader(path) as r:
        with pytest.raises(ValueError):
            r.read(2, 2, 3, 1)


# ------------------------------------------------------------------ band subsets
def test_band_subset_parsing(tmp_path):
    path = _envi(tmp_path, "bbl = {1, 1, 0, 1}\n")
    info = read_info(path)
    np.testing.assert_array_equal(band_subset(info, "1-2, 4"), [0, 1, 3])
    np.testing.assert_array_equal(band_subset(info, "1-4"), [0, 1, 3])  # bad band 3 dropped
    np.testing.assert_array_equal(band_subset(info, "4,1,1-2"), [0, 1, 3])
    np.testing.assert_array_equal(band_subset(info, "1 - 2 4", drop_bad=False), [0, 1, 3])  # blanks separate too
    np.testing.assert_array_equal(band_subset(info, " 1;3 ", drop_bad=False), [0, 2])
    np.testing.assert_array_equal(band_subset(info, "1-4", drop_bad=False), [0, 1, 2, 3])
    np.testing.assert_array_equal(band_subset(info, " "), [0, 1, 3])
    for spec, msg in (("0-2", "1..4"), ("2-5", "1..4"), ("3-1", "reversed"), ("a", "not N or N-M"),
                      ("1.5", "not N or N-M"), ("3", "no good band")):
        with pytest.raises(UnmixError, match=msg):
            band_subset(info, spec)


# ------------------------------------------------------------------ errors
def test_missing_file(tmp_path):
    with pytest.raises(UnmixError, match="input raster not found: .*nope.tif"):
        read_info(tmp_path / "nope.tif")


def test_text_file_is_not_a_raster(tmp_path):
    p = tmp_path / "notes.tif"
    p.write_text("hello, this is not an image\n")
    with pytest.raises(UnmixError, match="not a raster GDAL can read: .*notes.tif"):
        read_info(p)


def test_zero_size_file(tmp_path):
    p = tmp_path / "empty.tif"
    p.write_bytes(b"")
    with pytest.raises(UnmixError, match="empty file .*empty.tif"):
        RasterReader(p)


def test_raster_without_bands(tmp_path):
    path = str(tmp_path / "multi.nc")
    ds = gdal.GetDriverByName("netCDF").CreateMultiDimensional(path)
    root = ds.GetRootGroup()
    dims = [root.CreateDimension("y", None, None, 3), root.CreateDimension("x", None, None, 4)]
    for name in ("a", "b"):
        root.CreateMDArray(name, dims, gdal.ExtendedDataType.Create(gdal.GDT_Float32)).Write(np.ones((3, 4)))
    del root, ds, dims
    with pytest.raises(UnmixError, match="raster has no bands: .*multi.nc .*2 subdatasets"):
        read_info(path)


def test_band_index_out_of_range(tmp_path):
    path = _geotiff(tmp_path / "s.tif", np.ones((3, 4, 4), np.float32))
    for bands in ([3], [0, -1]):
        with pytest.raises(UnmixError, match="out of range .*3 bands"):
            RasterReader(path, bands=bands)
    with pytest.raises(UnmixError, match="no bands selected"):
        read_cube(path, bands=[])


def test_header_without_data_file(tmp_path):
    (tmp_path / "lonely.hdr").write_text("ENVI\nsamples = 2\n")
    with pytest.raises(UnmixError, match="without its data file"):
        read_info(tmp_path / "lonely.hdr")


def test_check_output_dir(tmp_path):
    made = check_output_dir(tmp_path / "x" / "y")
    assert os.path.isdir(made) and os.listdir(made) == []
    (tmp_path / "afile").write_text("")
    for bad in (tmp_path / "afile" / "out", "/proc/diffunmix-out"):
        with pytest.raises(UnmixError, match="cannot write to output folder: "):
            check_output_dir(bad)
    with pytest.raises(UnmixError, match="cannot write to output folder"):
        RasterWriter(tmp_path / "afile" / "a.tif", 4, 4, 1)
    with pytest.raises(UnmixError, match="is a folder"):
        RasterWriter(tmp_path / "x", 4, 4, 1)


def test_parallel_row_slices_read_exactly_what_one_thread_reads(tmp_path):
    rng = np.random.default_rng(3)
    raw = rng.integers(-200, 10000, size=(6, 300, 260)).astype(np.int16)
    raw[2, 17, 5] = -9999  # nodata in one band, in the first slice
    raw[:, 250:, 100] = -9999  # and a column of it in the last one
    path = _geotiff(tmp_path / "p.tif", raw, nodata=-9999, scale=1e-4, offset=0.01)
    with RasterReader(path, threads=1) as one, RasterReader(path, threads=4) as four:
        for win in ((0, 0, 260, 300), (3, 7, 250, 290), (0, 0, 40, 40)):
            c1, v1 = one.read(*win)
            c4, v4 = four.read(*win)
            np.testing.assert_array_equal(v1, v4)
            np.testing.assert_array_equal(c1, c4)  # NaN in the same places, equal elsewhere
            if win == (0, 0, 260, 300):
                assert not v4[17, 5] and not v4[260:, 100].any()
        assert len(four._extra) == 3  # the large windows really were read by four handles


def test_parallel_read_of_a_damaged_slice_raises_the_read_error(tmp_path):
    data = np.random.default_rng(0).random((4, 256, 256)).astype(np.float32)
    path = str(tmp_path / "d.tif")
    _geotiff(path, data, options=["BLOCKYSIZE=16", "COMPRESS=DEFLATE"])
    blob = open(path, "rb").read()
    cut = str(tmp_path / "cut.tif")
    with open(cut, "wb") as fh:  # the header survives, the last strips do not
        fh.write(blob[: int(len(blob) * 0.7)])
    with RasterReader(cut, threads=4) as r:
        with pytest.raises(UnmixError, match="truncated or corrupted"):
            r.read(0, 0, 256, 256)
        cube, valid = r.read(0, 0, 256, 32)  # an intact window still reads afterwards
        assert valid.all()


# ------------------------------------------------------------------ rasters as analysts have them
def test_envi_reflectance_scale_factor_scales_integer_reflectance(tmp_path):
    """GDAL leaves an ENVI header's 'reflectance scale factor' unapplied; the engine applies it."""
    refl = np.linspace(0.05, 0.6, 3 * 4 * 5).reshape(3, 4, 5)
    ds = gdal.GetDriverByName("ENVI").Create(str(tmp_path / "r.img"), 5, 4, 3, gdal.GDT_Int16)
    for i in range(3):
        ds.GetRasterBand(i + 1).WriteArray(np.round(refl[i] * 10000).astype(np.int16))
    ds = None
    with open(tmp_path / "r.hdr", "a", encoding="ascii") as fh:
        fh.write("reflectance scale factor = 10000\n")
    cube, valid, info = read_cube(str(tmp_path / "r.hdr"))
    assert valid.all()
    np.testing.assert_allclose(cube, refl, atol=1e-4)


def test_float_max_nodata_written_with_six_digits_is_nodata(tmp_path):
    data = np.ones((2, 3, 4), np.float32)
    data[:, 0, :2] = -np.finfo(np.float32).max
    path = _geotiff(tmp_path / "f.tif", data, nodata=-3.40282e38)
    cube, valid, _ = read_cube(path)
    assert (~valid).sum() == 2 and not valid[0, :2].any()
    # GDAL's own mask agrees
    assert (gdal.Open(path).GetRasterBand(1).GetMaskBand().ReadAsArray() == 0).sum() == 2


def test_alpha_band_masks_pixels_and_is_never_a_spectral_band(tmp_path):
    wl = [500.0, 600.0, 700.0]
    data = np.stack([np.full((3, 4), 0.1 * (i + 1), np.float32) for i in range(3)] +
                    [np.full((3, 4), 255, np.float32)])
    data[3, 1, 1] = 0  # transparent pixel
    md = [{"wavelength": str(w), "wavelength_units": "nm"} for w in wl] + [{}]
    path = _geotiff(tmp_path / "a.tif", data, band_md=md)
    ds = gdal.Open(path, gdal.GA_Update)
    ds.GetRasterBand(4).SetColorInterpretation(gdal.GCI_AlphaBand)
    ds = None
    info = read_info(path)
    assert info.alpha == 3 and list(info.bbl) == [True, True, True, False]
    np.testing.assert_allclose(info.wavelengths_nm[:3], wl)
    assert np.isnan(info.wavelengths_nm[3])
    cube, valid, _ = read_cube(path)
    assert cube.shape[0] == 3 and not valid[1, 1] and valid.sum() == 11


def test_per_band_bbl_items_flag_bad_bands(tmp_path):
    data = np.ones((4, 3, 3), np.float32)
    path = _geotiff(tmp_path / "b.tif", data, band_md=[{"bbl": v} for v in ("1", "0", "1", "1")])
    assert list(read_info(path).bbl) == [True, False, True, True]


def test_gcp_and_rpc_georeferencing_reach_the_outputs(tmp_path):
    data = np.ones((3, 4, 5), np.float32)
    src = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "g.tif"), 5, 4, 3, gdal.GDT_Float32)
    for i in range(3):
        src.GetRasterBand(i + 1).WriteArray(data[i])
    gcps = [gdal.GCP(15.0 + 0.001 * x, 45.0 - 0.001 * y, 0.0, x, y) for x, y in ((0, 0), (5, 0), (0, 4), (5, 4))]
    src.SetGCPs(gcps, _wkt(4326))
    coeff = " ".join(["1"] + ["0"] * 19)
    rpc = {"LINE_OFF": "2", "SAMP_OFF": "2", "LAT_OFF": "45", "LONG_OFF": "15", "HEIGHT_OFF": "0",
           "LINE_SCALE": "2", "SAMP_SCALE": "2", "LAT_SCALE": "0.01", "LONG_SCALE": "0.01", "HEIGHT_SCALE": "1",
           "LINE_NUM_COEFF": coeff, "LINE_DEN_COEFF": coeff, "SAMP_NUM_COEFF": coeff, "SAMP_DEN_COEFF": coeff}
    src.SetMetadata(rpc, "RPC")
    src = None
    info = read_info(str(tmp_path / "g.tif"))
    assert info.geotransform is None and len(info.gcps) == 4 and "4326" in info.gcp_projection
    out = tmp_path / "o.tif"
    with RasterWriter(str(out), 5, 4, 1, **info.georef()) as w:
        w.write(np.zeros((1, 4, 5), np.float32))
    ds = gdal.Open(str(out))
    assert ds.GetGCPCount() == 4 and "4326" in ds.GetGCPProjection()
    assert ds.GetGCPs()[1].GCPX == pytest.approx(15.005)
    assert float(ds.GetMetadata("RPC")["LAT_OFF"]) == 45.0


# ------------------------------------------------------------------ the two backends agree
def _info_fields(info):
    """RasterInfo as comparable values (the CRS compared as GDAL sees it)."""
    srs = osr.SpatialReference()
    d = dict(vars(info))
    for key in ("projection", "gcp_projection"):
        d[key] = bool(d[key]) and (srs.ImportFromWkt(d[key]) == 0 and srs.ExportToProj4())
    for key in ("scale", "offset", "wavelengths_nm", "fwhm_nm", "bbl"):
        d[key] = None if d[key] is None else [None if v != v else v for v in np.asarray(d[key]).tolist()]
    return d


def _rich_inputs(tmp_path):
    """Inputs with every feature the backends read: scale/offset and nodata, ENVI metadata with bbl and a
    reflectance scale factor, an alpha band, a per-dataset mask, GCPs with RPCs."""
    raw = np.random.default_rng(5).integers(-50, 10000, (3, 20, 30)).astype(np.int16)
    raw[1, 3, 4] = -9999
    paths = [_geotiff(tmp_path / "s.tif", raw, nodata=-9999, scale=2e-4, offset=0.01,
                      descriptions=["a (450 nm)", "b (550 nm)", "c (650 nm)"], options=["BLOCKYSIZE=8"])]
    paths.append(_envi(tmp_path, "wavelength units = Micrometers\nwavelength = {0.45, 0.55, 0.65, 2.2}\n"
                                 "fwhm = {0.01, 0.01, 0.012, 0.02}\nbbl = {1, 0, 1, 1}\n"
                                 "reflectance scale factor = 10000\n"))
    data = np.ones((3, 4, 5), np.float32)
    data[2, 1, 1] = 0
    alpha = _geotiff(tmp_path / "a.tif", data, band_md=[{"wavelength": "500", "wavelength_units": "nm"},
                                                         {"wavelength": "600", "wavelength_units": "nm"}, {}])
    ds = gdal.Open(alpha, gdal.GA_Update)
    ds.GetRasterBand(3).SetColorInterpretation(gdal.GCI_AlphaBand)
    ds = None
    paths.append(alpha)
    mask = str(tmp_path / "m.tif")
    ds = gdal.GetDriverByName("GTiff").Create(mask, 4, 3, 2, gdal.GDT_Float32)
    ds.GetRasterBand(1).WriteArray(np.ones((3, 4), np.float32))
    ds.CreateMaskBand(gdal.GMF_PER_DATASET)
    ds.GetRasterBand(1).GetMaskBand().WriteArray(np.array([[0, 255, 255, 255]] * 3, np.uint8))
    ds = None
    paths.append(mask)
    gcp = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "g.tif"), 5, 4, 1, gdal.GDT_Float32)
    gcp.SetGCPs([gdal.GCP(15.0 + 0.001 * x, 45.0 - 0.001 * y, 0.0, x, y) for x, y in ((0, 0), (5, 0), (0, 4))],
                _wkt(4326))
    coeff = " ".join(["1"] + ["0"] * 19)
    gcp.SetMetadata({"LINE_OFF": "2", "SAMP_OFF": "2", "LAT_OFF": "45", "LONG_OFF": "15", "HEIGHT_OFF": "0",
                     "LINE_SCALE": "2", "SAMP_SCALE": "2", "LAT_SCALE": "0.01", "LONG_SCALE": "0.01",
                     "HEIGHT_SCALE": "1", "LINE_NUM_COEFF": coeff, "LINE_DEN_COEFF": coeff,
                     "SAMP_NUM_COEFF": coeff, "SAMP_DEN_COEFF": coeff}, "RPC")
    gcp = None
    paths.append(str(tmp_path / "g.tif"))
    return paths


def test_both_backends_read_the_same_info_and_values(tmp_path, monkeypatch):
    for path in _rich_inputs(tmp_path):
        got = {}
        for name in ("gdal", "rasterio"):
            monkeypatch.setenv("DIFFUNMIX_RASTER_BACKEND", name)
            info = read_info(path)
            with RasterReader(path, threads=2) as r:
                cube, valid = r.read()
                windows = [r.read(*w) for w in r.windows(max_pixels=64)]
            got[name] = (_info_fields(info), cube, valid, windows)
        (i1, c1, v1, w1), (i2, c2, v2, w2) = got["gdal"], got["rasterio"]
        assert i1 == i2, path
        np.testing.assert_array_equal(c1, c2)
        np.testing.assert_array_equal(v1, v2)
        for (a, va), (b, vb) in zip(w1, w2):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(va, vb)
        assert not v1.all() or path.endswith(("g.tif", ".img"))  # nodata, alpha or mask flag some pixel


@pytest.mark.parametrize("writer, reader", [("gdal", "rasterio"), ("rasterio", "gdal")])
def test_outputs_written_by_one_backend_read_back_by_the_other(tmp_path, monkeypatch, writer, reader):
    gcp_input = _rich_inputs(tmp_path)[-1]
    a = np.random.default_rng(2).random((2, 4, 5)).astype(np.float32)
    a[0, 1, 2] = np.nan
    monkeypatch.setenv("DIFFUNMIX_RASTER_BACKEND", writer)
    src = read_info(gcp_input)
    out = tmp_path / "o.tif"
    with RasterWriter(out, 5, 4, 2, band_names=["soil", "tree"], wavelengths_nm=[500.0, 2200.5],
                      fwhm_nm=[10.0, 12.0], **src.georef()) as w:
        w.write(a)
    written = read_info(out)
    gridded = write_raster(tmp_path / "grid.tif", a, like=SimpleNamespace(geotransform=GT, projection=_wkt()))
    monkeypatch.setenv("DIFFUNMIX_RASTER_BACKEND", reader)
    back = read_info(out)
    assert _info_fields(back) == _info_fields(written)
    assert back.band_names == ["soil", "tree"] and back.nodata == NODATA and len(back.gcps) == 3
    assert back.rpc["LAT_OFF"] == "45" and back.geotransform is None
    np.testing.assert_allclose(back.wavelengths_nm, [500.0, 2200.5])
    np.testing.assert_allclose(back.fwhm_nm, [10.0, 12.0])
    cube, valid, _ = read_cube(out)
    assert not valid[1, 2] and valid.sum() == 19
    np.testing.assert_array_equal(cube[:, valid], a[:, valid])
    info = read_info(gridded)
    assert info.geotransform == GT and "32633" in info.projection
