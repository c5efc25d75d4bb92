"""A raster declaring 200,000 × 200,000 pixels in an 8 MB sparse file (issue 16, defect 11): sampling
costs in proportion to the pixels sampled, not to the declared size; it reports progress and can be
cancelled.

Helpers: hostile_util.py; fixtures: conftest.py beside this file."""

import time

import numpy as np
import pytest
from hostile_util import module
from osgeo import gdal

from core.errors import Cancelled
from core.io.raster import RasterReader
from core.progress import Progress
from core.run.inputs import random_windows, sample_pixels

SIZE = 200_000


@pytest.fixture(scope="module")
def huge(tmp_path_factory):
    """200,000² pixels × 5 bands, tiled and sparse: one 256² block of random data, the rest unwritten (0)."""
    path = tmp_path_factory.mktemp("huge") / "huge.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(path), SIZE, SIZE, 5, gdal.GDT_Byte,
                                              ["TILED=YES", "SPARSE_OK=TRUE", "BIGTIFF=YES"])
    rng = np.random.default_rng(0)
    ds.WriteRaster(1024, 1024, 256, 256, rng.integers(1, 255, (5, 256, 256), dtype=np.uint8).tobytes())
    ds = None
    return path


def test_count_on_a_huge_declared_raster_answers_quickly(huge):
    t0 = time.perf_counter()
    proc = module("count", huge, "--json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert time.perf_counter() - t0 < 30
    assert '"pixels_sampled": 60000' in proc.stdout


def test_unmix_on_a_huge_mostly_empty_raster_is_refused_quickly(huge, tmp_path):
    proc = module("unmix", huge, "--method", "vca-fcls", "-p", "3", "-q", "--out", tmp_path / "o", timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "nothing to unmix" in proc.stderr  # the sample holds zeros only


class _Recorder(Progress):
    def __init__(self, cancel_after=None):
        self.seen, self.cancel_after = [], cancel_after

    def set_progress(self, percent):
        self.seen.append(percent)

    def is_canceled(self):
        return self.cancel_after is not None and len(self.seen) >= self.cancel_after


def test_sampling_reports_progress_and_can_be_cancelled(huge):
    with RasterReader(str(huge)) as reader:
        rec = _Recorder()
        Y = sample_pixels(reader, 5000, seed=1, progress=rec)
        assert Y.shape == (5000, 5) and rec.seen and rec.seen == sorted(rec.seen) and rec.seen[-1] <= 100
        with pytest.raises(Cancelled):
            sample_pixels(reader, 5000, seed=1, progress=_Recorder(cancel_after=1))
        np.testing.assert_array_equal(sample_pixels(reader, 5000, seed=1), Y)  # deterministic for a seed


def test_random_windows_stay_inside_one_block_and_the_raster():
    rng = np.random.default_rng(0)
    for block in ((256, 256), (SIZE, 1), (1000, 7)):
        wins = random_windows(SIZE, 999, block, 60000, rng)
        assert 60000 // 4096 < len(wins) <= 4 * 60000 // 64 + 64 and len(set(wins)) == len(wins)
        for x, y, w, h in wins:
            assert 0 <= x and x + w <= SIZE and 0 <= y and y + h <= 999 and w * h <= 4096
            assert x // block[0] == (x + w - 1) // block[0] and y // block[1] == (y + h - 1) // block[1]
