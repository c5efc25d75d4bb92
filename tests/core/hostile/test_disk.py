"""Hostile inputs: a full disk or a refused write while the outputs are written, file modes, a late cancel, and
reruns into one folder.

Helpers: hostile_util.py; fixtures: conftest.py beside this file."""

import errno
import os
import sys

import numpy as np
import pytest
from hostile_util import ENOSPC, OUTPUTS, _digest, cli, main, module, refused, snapshot, write_scene
from osgeo import gdal


@pytest.fixture(scope="module")
def disk_scene(spectra, tmp_path_factory):
    """A 48×48 scene."""
    folder = tmp_path_factory.mktemp("disk")
    write_scene(folder / "scene.tif", spectra[1], 48, 48, seed=7)
    return folder / "scene.tif"


def _previous_run(scene_path, folder, capsys, extra=("--method", "vca-fcls")):
    """Outputs of a finished run in ``folder``; returns their snapshot."""
    rc, err = cli(["unmix", scene_path, "-p", "3", "--out", folder, "-q", *extra], capsys)
    assert rc == 0, err
    assert sorted(os.listdir(folder)) == OUTPUTS
    return snapshot(folder)


def _gdal_full(name):
    """Emulate GDAL's report of a full disk: a CE_Failure error instead of the call."""

    def failing(self, *args, **kwargs):
        gdal.Error(gdal.CE_Failure, gdal.CPLE_FileIO, f"_tiffWriteProc:{ENOSPC}")
        return gdal.CE_Failure

    return failing


class _FullCsvWriter:
    def __init__(self, *args, **kwargs):
        self.rows = 0

    def writerow(self, row):
        self.rows += 1
        if self.rows > 2:
            raise OSError(errno.ENOSPC, ENOSPC)


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, ENOSPC)


@pytest.mark.parametrize("where", ["abundance block write", "abundance flush at close", "endmember csv",
                                   "report", "abundance write of the full engine"])
def test_full_disk_fails_cleanly_and_keeps_existing_outputs(disk_scene, model, tmp_path, capsys, monkeypatch,
                                                            where):
    import core.io.library
    import core.run.outputs

    monkeypatch.setenv("DIFFUNMIX_RASTER_BACKEND", "gdal")  # GDAL's failure is emulated on its bindings
    out = tmp_path / "out"
    extra = ["--model", model] if "full engine" in where else ["--method", "vca-fcls"]
    before = _previous_run(disk_scene, out, capsys, extra)
    if "block write" in where or "full engine" in where:
        monkeypatch.setattr(gdal.Dataset, "WriteRaster", _gdal_full("WriteRaster"))
    elif "flush" in where:
        monkeypatch.setattr(gdal.Dataset, "FlushCache", _gdal_full("FlushCache"))
    elif "csv" in where:
        monkeypatch.setattr(core.io.library.csv, "writer", _FullCsvWriter)
    else:
        monkeypatch.setattr(core.run.outputs.json, "dump", _no_space)
    line = refused(["unmix", disk_scene, "-p", "3", "--out", out, "-q", "--seed", "1", *extra], capsys, ENOSPC)
    assert "cannot write" in line and str(out) in line
    assert snapshot(out) == before  # nothing partial left, nothing existing changed


@pytest.mark.skipif(sys.platform != "linux", reason="needs RLIMIT_FSIZE and SIGXFSZ")
def test_real_write_refusal_by_the_system_in_a_separate_process(spectra, tmp_path, capsys, raster_backend):
    """The OS refuses the writes (a file size limit: EFBIG, as a full disk gives ENOSPC) under real GDAL,
    through either raster backend."""
    import resource
    import signal

    big_scene = tmp_path / "scene.tif"
    write_scene(big_scene, spectra[1], 256, 256, seed=8)  # abundances ≈ 700 kB, over the 64 kB limit
    out = tmp_path / "out"
    before = _previous_run(big_scene, out, capsys)

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write() instead of killing the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))

    proc = module("unmix", big_scene, "-p", "3", "--out", out, "--method", "vca-fcls", "-q", "--seed", "1",
                  preexec_fn=limit)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: cannot write "), proc.stderr
    assert os.strerror(errno.EFBIG) in proc.stderr
    assert snapshot(out) == before


def test_csv_outputs_get_the_usual_file_mode(tmp_path):
    from core.io.library import write_csv

    old = os.umask(0o022)
    try:
        write_csv(tmp_path / "e.csv", np.ones((2, 3)), ["a", "b"])
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / "e.csv").st_mode & 0o777) == 0o644


class _CancelAtTheEnd:
    """Progress that asks to cancel once the run reports 95 % (while the outputs are finished)."""

    def __init__(self):
        self.last = 0.0

    def set_progress(self, percent):
        self.last = max(self.last, percent)

    def is_canceled(self):
        return self.last >= 95.0

    def info(self, message):
        pass


def test_a_cancel_just_before_the_outputs_are_committed_keeps_the_earlier_results(scene, spectra, tmp_path):
    """Cancel pressed while the CSV, plot and report are written: the earlier run's files stay."""
    from core.errors import Cancelled
    from core.options import UnmixOptions
    from core.pipeline import unmix
    from core.run.tasks import fcls_raster

    out = tmp_path / "r"
    paths = [str(out / n) for n in ("abundances.tif", "endmembers.csv")]
    unmix(str(scene[0]), *paths, UnmixOptions(endmembers=3, method="vca-fcls"), report_path=str(out / "report.json"))
    before = {p: _digest(p) for p in paths + [str(out / "report.json")]}
    with pytest.raises(Cancelled):
        unmix(str(scene[0]), *paths, UnmixOptions(endmembers=4, method="vca-fcls"),
              report_path=str(out / "report.json"), progress=_CancelAtTheEnd())
    with pytest.raises(Cancelled):
        fcls_raster(str(scene[0]), paths[1], paths[0], progress=_CancelAtTheEnd())
    assert {p: _digest(p) for p in before} == before
    assert sorted(os.listdir(out)) == ["abundances.tif", "endmembers.csv", "report.json"]  # no partial files


def test_a_rerun_into_a_folder_removes_optional_outputs_it_did_not_write(scene, tmp_path):
    out = tmp_path / "r"
    assert main(["unmix", str(scene[0]), "-p", "3", "--method", "vca-fcls", "--residual", "--out", str(out),
                 "-q"]) == 0
    assert (out / "residual.tif").exists()
    assert main(["unmix", str(scene[0]), "-p", "3", "--method", "vca-fcls", "--out", str(out), "-q"]) == 0
    assert not (out / "residual.tif").exists()
