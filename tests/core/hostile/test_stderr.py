"""Noise on stderr (issue 16, defect 10): library warnings (numpy overflow, matplotlib glyphs and
layout, torch), progress lines before the error, a symlink loop reported as "not found", disk-full
messages naming the hidden temporary file, ``--device cuda`` ignored by VCA + FCLS. Bad input gives
exactly one line on stderr, naming the user's path; a good run with ``-q`` gives none.

Helpers: hostile_util.py; fixtures: conftest.py beside this file."""

import os
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from hostile_util import ROOT, cli, module, refused, write_scene
from osgeo import gdal

VCA = ["--method", "vca-fcls", "-p", "3"]


def _quiet_success(args):
    """A separate process (pytest would catch the warnings of an in-process run): exit 0, stderr empty."""
    proc = module(*args)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def _one_line(args, match):
    proc = module(*args)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1 and match in err[0], proc.stderr


def test_numpy_overflow_warnings_stay_off_stderr(spectra, tmp_path):
    src = tmp_path / "s.tif"
    write_scene(src, spectra[1], 24, 24)
    ds = gdal.Open(str(src), gdal.GA_Update)
    a = ds.ReadAsArray()
    a[:, :3] *= 1e38 / a.max()  # finite float32 whose squares overflow
    for b in range(a.shape[0]):
        ds.GetRasterBand(b + 1).WriteArray(a[b])
    ds = None
    _quiet_success(["unmix", src, *VCA, "-q", "--residual", "--out", tmp_path / "o"])


def test_non_latin_names_and_many_endmembers_plot_quietly(tmp_path):
    rng = np.random.default_rng(0)
    b, p = 60, 50
    E = rng.uniform(0.05, 1.0, (p, b))
    A = rng.dirichlet(np.ones(p) * 0.3, size=(24, 24)).transpose(2, 0, 1)
    A.reshape(p, -1)[:, :p] = np.eye(p)
    src = tmp_path / "場面 シーン.tif"
    from testutil import make_mixture_raster

    make_mixture_raster(src, E, A, wavelengths=np.linspace(400, 2400, b))
    _quiet_success(["unmix", src, "--method", "vca-fcls", "-p", "50", "-q", "--out", tmp_path / "結果"])
    assert (tmp_path / "結果" / "endmembers.png").stat().st_size > 0


def test_torchscript_and_raw_pickle_models_give_one_line(scene, tmp_path, capsys):
    import pickle
    import warnings

    ts = tmp_path / "ts.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(ts))
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"schema": "diffunmix-checkpoint"}))
    for m in (ts, raw):
        with warnings.catch_warnings(record=True) as seen:  # torch's warnings would reach stderr (and QGIS' log)
            warnings.simplefilter("always")
            refused(["apply", scene[0], "--model", m, "--out", tmp_path / "o"], capsys,
                    "not a valid DiffUnmix checkpoint")
        assert [str(w.message) for w in seen] == []


def test_progress_lines_do_not_precede_the_error(tmp_path, capsys):
    src = tmp_path / "flat.tif"
    gdal.GetDriverByName("GTiff").Create(str(src), 16, 16, 20, gdal.GDT_Float32).FlushCache()  # all zero
    rc, err = cli(["unmix", src, *VCA, "--out", tmp_path / "o"], capsys)  # no -q: progress is shown
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: nothing to unmix"), err


def test_a_symlink_loop_is_not_reported_as_missing(tmp_path, capsys):
    os.symlink(tmp_path / "b.tif", tmp_path / "a.tif")
    os.symlink(tmp_path / "a.tif", tmp_path / "b.tif")
    os.symlink(tmp_path / "nowhere.tif", tmp_path / "dangling.tif")
    for p in ("a.tif", "dangling.tif"):
        refused(["count", tmp_path / p], capsys, f"broken symbolic link or a link loop: {tmp_path / p}")


def test_device_cuda_is_not_silently_ignored_by_vca_fcls(scene, tmp_path, capsys):
    refused(["unmix", scene[0], *VCA, "--device", "cuda", "--out", tmp_path / "o"], capsys,
            "device cuda applies to the full engine only")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("limit", [3000, 20000])
def test_a_refused_write_names_the_output_not_the_temporary_file(scene, tmp_path, limit):
    """A real refusal by the system: a file size limit (EFBIG) while the outputs are written."""
    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "o"
    proc = subprocess.run([sys.executable, "-m", "core", "unmix", str(scene[0]), *VCA, "-q", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, preexec_fn=small_files)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1, proc.stderr
    assert ".partial-" not in err[0] and f"cannot write {out}{os.sep}" in err[0], err
    assert not out.exists()


def test_out_of_memory_is_exit_2_with_one_line(tmp_path):
    """A real MemoryError: the process may not map more than 3 GB, the scene asked for needs far more."""
    def small_memory():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    out = tmp_path / "new"
    proc = subprocess.run([sys.executable, "-m", "core", "synth", "--out", str(out), "--height", "60000", "--width",
                           "60000", "-p", "3"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          preexec_fn=small_memory)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1 and err[0].startswith("error: out of memory"), proc.stderr
    assert not out.exists()
