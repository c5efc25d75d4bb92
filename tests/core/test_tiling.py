"""Tile geometry, blending and streaming: tiled results equal untiled ones."""

import numpy as np
import pytest
from scipy import ndimage

from core.raster import RasterReader, RasterWriter, read_cube, write_raster
from core.tiling import blend_window, process_tiled, tile_starts


@pytest.mark.parametrize("size,tile,overlap", [(1, 8, 2), (8, 8, 2), (9, 8, 2), (100, 32, 8), (5000, 128, 16)])
def test_tiles_cover_exactly_and_stay_inside(size, tile, overlap):
    starts = tile_starts(size, tile, overlap)
    t = min(tile, size)
    covered = np.zeros(size, int)
    for s in starts:
        assert 0 <= s and s + t <= size
        covered[s:s + t] += 1
    assert covered.min() >= 1
    assert starts[-1] + t == size
    if len(starts) > 1:
        assert all(b - a <= t - overlap for a, b in zip(starts, starts[1:]))


def test_blend_window_is_positive_and_ramps_only_inside():
    w = blend_window(32, 32, 8, top=True, bottom=False, left=False, right=True)
    assert w.min() > 0 and w.max() == 1.0
    assert np.all(w[-1, :-8] == 1.0)  # bottom/left untouched
    assert w[0, 0] < 0.05 and w[16, 31] < 0.05
    m = blend_window(32, 32, 8, top=True, bottom=True, left=True, right=True, margin=2)
    assert m[:2].max() < 1e-6 and m[16, :2].max() < 1e-6 and m[2:-2, 2:-2].min() > 1e-3


def _scene(tmp_path, h=70, w=90, b=5):
    rng = np.random.default_rng(0)
    cube = rng.random((b, h, w)).astype(np.float32)
    cube[:, 3, 4] = np.nan
    path = tmp_path / "in.tif"
    write_raster(str(path), cube)
    return path, cube


def _run(path, out, fn, channels, tile, overlap, margin=0):
    with RasterReader(str(path)) as r, RasterWriter(str(out), r.info.width, r.info.height, channels) as w:
        stats = process_tiled(r, fn, channels, [(w, 0, channels)], tile=tile, overlap=overlap, margin=margin)
    return stats, read_cube(str(out))[0]


def test_identity_reconstruction_is_exact(tmp_path):
    path, cube = _scene(tmp_path)
    stats, out = _run(path, tmp_path / "o.tif", lambda c, v: c, 5, tile=32, overlap=8)
    assert stats["valid_pixels"] == 70 * 90 - 1
    assert np.isnan(out[:, 3, 4]).all()
    ok = ~np.isnan(cube[0])
    np.testing.assert_allclose(out[:, ok], cube[:, ok], atol=1e-6)


def test_tiled_local_filter_matches_untiled(tmp_path):
    path, cube = _scene(tmp_path)
    cube = np.nan_to_num(cube)

    def box(c, v):
        return ndimage.uniform_filter(np.nan_to_num(c), size=(1, 3, 3), mode="reflect")

    full = box(cube, None)
    _, out = _run(path, tmp_path / "o.tif", box, 5, tile=24, overlap=8)
    ok = ~np.isnan(out[0])
    ok[2:5, 3:6] = False  # neighbours of the NaN pixel differ by construction
    err = np.abs(out[:, ok] - full[:, ok])
    assert err.max() < 0.02 and err.mean() < 1e-3
    # with the receptive field (1 px) as margin, tiled equals untiled
    _, out = _run(path, tmp_path / "m.tif", box, 5, tile=24, overlap=8, margin=1)
    assert np.abs(out[:, ok] - full[:, ok]).max() < 1e-5
