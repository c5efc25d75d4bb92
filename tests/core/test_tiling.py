"""Tile geometry, blending and streaming: tiled results equal untiled ones."""

import numpy as np
import pytest
from scipy import ndimage

from core.io.raster import RasterReader, RasterWriter, read_cube, write_raster
from core.run.tiling import balanced_tile, blend_window, process_tiled, tile_grid, tile_starts


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


@pytest.mark.parametrize("size,tile,overlap", [(1024, 512, 16), (2048, 512, 16), (1024, 128, 16), (1000, 128, 16),
                                               (100, 128, 16), (129, 128, 16), (5000, 300, 40)])
def test_balanced_windows_read_few_extra_pixels(size, tile, overlap):
    t = balanced_tile(size, tile, overlap)
    starts = tile_starts(size, t, overlap)
    assert t <= tile and len(starts) == len(tile_starts(size, min(tile, size), overlap))
    assert starts[-1] + t == size and all(b - a >= 1 for a, b in zip(starts, starts[1:]))
    assert all(a + t - b >= overlap for a, b in zip(starts, starts[1:]))  # neighbours still overlap enough
    read = len(starts) * t
    assert read <= size + len(starts) * (overlap + 1)  # no window is read (almost) twice
    if (size, tile) == (1024, 512):
        assert (t, len(starts)) == (352, 3)
        assert len(tile_grid(size, size, tile, overlap)) == 9


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


def _dense_blend(cube, fn, tile, overlap, margin=0):
    """The blend ``Σ w·ŷ / Σ w`` over the whole image at once: what streaming must reproduce."""
    B, H, W = cube.shape
    acc, wsum = np.zeros((B, H, W)), np.zeros((H, W))
    grid = tile_grid(H, W, tile, overlap)
    ys, xs = sorted({g[0] for g in grid}), sorted({g[1] for g in grid})
    for y0, x0, th, tw in grid:
        iy, ix = ys.index(y0), xs.index(x0)
        wgt = blend_window(th, tw, overlap, iy > 0, iy < len(ys) - 1, ix > 0, ix < len(xs) - 1, margin)
        acc[:, y0:y0 + th, x0:x0 + tw] += fn(cube[:, y0:y0 + th, x0:x0 + tw]) * wgt
        wsum[y0:y0 + th, x0:x0 + tw] += wgt
    return acc / wsum


@pytest.mark.parametrize("h,w,tile,overlap", [(70, 90, 24, 8), (37, 301, 40, 16), (20, 33, 12, 5), (9, 9, 16, 4)])
def test_streamed_blend_equals_the_whole_image_blend(tmp_path, h, w, tile, overlap):
    # window counts and snapped last windows of every kind, the last ones overlapping more than
    # `overlap`: each pixel gets the same weighted sum as blending all windows at once
    rng = np.random.default_rng(1)
    cube = rng.random((3, h, w)).astype(np.float32)
    path = tmp_path / "in.tif"
    write_raster(str(path), cube)

    def fn(c):  # a window-dependent output (its mean), so blending errors show
        return c * 0.5 + c.mean(axis=(1, 2), keepdims=True)

    stats, out = _run(path, tmp_path / "o.tif", lambda c, v: fn(c), 3, tile=tile, overlap=overlap, margin=1)
    assert stats["valid_pixels"] == h * w
    np.testing.assert_allclose(out, _dense_blend(cube, fn, tile, overlap, margin=1), rtol=1e-6, atol=1e-6)


def test_memory_does_not_grow_with_the_raster_width(tmp_path):
    # the client of a cluster run (and any in-process run) holds the windows being blended and
    # the overlap rows, not whole-width strips: 8× the width, about the same peak
    import tracemalloc

    peaks = {}
    for w in (256, 2048):
        path = tmp_path / f"in{w}.tif"
        write_raster(str(path), np.ones((2, 96, w), np.float32))
        with RasterReader(str(path)) as r, RasterWriter(str(tmp_path / f"o{w}.tif"), w, 96, 8) as wr:
            tracemalloc.start()
            process_tiled(r, lambda c, v: np.repeat(c[:1], 8, axis=0), 8, [(wr, 0, 8)], tile=64, overlap=8)
            peaks[w] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    # whole-width strips of 64 rows × 8 float64 channels would be 8 MB more at 2048 px
    assert peaks[2048] < peaks[256] + 2e6, peaks


def _io_threads():
    import threading

    return [t for t in threading.enumerate() if t.name.startswith("diffunmix-")]


class _FailingReader(RasterReader):
    """A real reader whose read of one window fails like a damaged block would."""

    def __init__(self, path, fail_at):
        super().__init__(path)
        self.calls, self.fail_at = 0, fail_at

    def read(self, *win):
        self.calls += 1
        if self.calls == self.fail_at:
            from core.errors import UnmixError

            raise UnmixError("cannot read in.tif: damaged block")
        return super().read(*win)


def test_read_error_in_background_thread_reaches_the_caller(tmp_path):
    from core.errors import UnmixError

    path, _ = _scene(tmp_path)
    seen = []
    with _FailingReader(str(path), fail_at=5) as r, RasterWriter(str(tmp_path / "o.tif"), 90, 70, 5) as w:
        with pytest.raises(UnmixError, match="damaged block"):
            process_tiled(r, lambda c, v: seen.append(1) or c, 5, [(w, 0, 5)], tile=32, overlap=8)
        w.abort()
    assert len(seen) == 4  # the four windows before the damaged one were processed, no more
    assert _io_threads() == []


def test_write_error_in_background_thread_reaches_the_caller(tmp_path):
    path, _ = _scene(tmp_path)

    class BrokenWriter:
        def write(self, arr, x, y):
            raise OSError("No space left on device")

    with RasterReader(str(path)) as r:
        with pytest.raises(OSError, match="No space left"):
            process_tiled(r, lambda c, v: c, 5, [(BrokenWriter(), 0, 5)], tile=16, overlap=4)
    assert _io_threads() == []


def test_cancel_stops_the_io_threads_and_reads_run_ahead(tmp_path):
    import time

    from core.errors import Cancelled
    from core.progress import Progress

    class Cancel(Progress):
        flag = False

        def is_canceled(self):
            return self.flag

    path, _ = _scene(tmp_path)
    prog = Cancel()
    with _FailingReader(str(path), fail_at=-1) as r, RasterWriter(str(tmp_path / "o.tif"), 90, 70, 5) as w:
        def fn(c, v):
            time.sleep(0.05)  # slow "network": the reader thread gets ahead meanwhile
            reads_at_first_tile.append(r.calls)
            prog.flag = True
            return c

        reads_at_first_tile = []
        with pytest.raises(Cancelled):
            process_tiled(r, fn, 5, [(w, 0, 5)], tile=16, overlap=4, progress=prog)
        w.abort()
    assert reads_at_first_tile[0] > 1  # windows were read while the first one was being processed
    assert r.calls < 48  # and reading stopped with the cancel, well before the 6 × 8 windows
    assert _io_threads() == []


def test_windows_computed_side_by_side_give_the_serial_result_in_order(tmp_path):
    # threads > 1: windows finish out of order (random sleeps); the blend is still done in window
    # order, so the output is identical, invalid windows included; an error in a window thread
    # reaches the caller and no tile thread is left behind
    import time

    from core.io.raster import RasterWriter

    path, cube = _scene(tmp_path)
    cube[:, 30:64, 30:64] = np.nan  # whole windows without a valid pixel
    write_raster(str(path), cube)
    rng = np.random.default_rng(3)

    def fn(c, v, origin):
        time.sleep(float(rng.random()) * 0.01)
        return np.nan_to_num(c) * 0.5 + origin[0] + 0.01 * origin[1]

    outs = []
    for threads in (1, 3):
        with RasterReader(str(path)) as r, RasterWriter(str(tmp_path / f"o{threads}.tif"), 90, 70, 5) as w:
            stats = process_tiled(r, fn, 5, [(w, 0, 5)], tile=16, overlap=4, origin=True, threads=threads)
        assert stats["threads"] == threads
        outs.append(read_cube(str(tmp_path / f"o{threads}.tif"))[0])
    np.testing.assert_array_equal(outs[0], outs[1])

    calls = []

    def failing(c, v, origin):
        calls.append(origin)
        if len(calls) == 6:
            raise ValueError("window 6 failed")
        return c

    with RasterReader(str(path)) as r, RasterWriter(str(tmp_path / "f.tif"), 90, 70, 5) as w:
        with pytest.raises(ValueError, match="window 6 failed"):
            process_tiled(r, failing, 5, [(w, 0, 5)], tile=16, overlap=4, origin=True, threads=3)
        w.abort()
    assert _io_threads() == []
