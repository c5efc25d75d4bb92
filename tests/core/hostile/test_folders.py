"""Hostile use of the output folder (issue 16, defects 1-3 and 8): an output that an input reads
through a VRT, two runs into one folder, SIGTERM / SIGHUP, leftovers of killed runs, empty paths.

Helpers: hostile_util.py; fixtures: conftest.py beside this file."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hostile_util import OUTPUTS, ROOT, WL, _digest, cli, refused, snapshot, write_scene
from osgeo import gdal

from core.errors import UnmixError
from core.run.lock import LOCK_NAME, folder_lock

VCA = ["--method", "vca-fcls", "-p", "3", "-q"]


def _vrt(src, dst, **kw):
    gdal.Translate(str(dst), str(src), format="VRT", **kw)
    return dst


# ----------------------------------------------------------------- defect 1: outputs read through a VRT
def test_an_output_read_through_a_vrt_is_an_input(scene, spectra, tmp_path, capsys):
    out = tmp_path / "O"
    out.mkdir()
    data = out / "abundances.tif"
    data.write_bytes(scene[0].read_bytes())  # the 20-band scene where unmix would write its abundances
    via = _vrt(data, tmp_path / "via.vrt")
    nested = _vrt(_vrt(via, tmp_path / "inner.vrt", srcWin=[0, 0, 10, 10]), tmp_path / "outer.vrt")
    link = tmp_path / "link.vrt"
    os.symlink(nested, link)
    lib = tmp_path / "E.csv"
    np.savetxt(lib, np.column_stack([WL, spectra[1].T]), delimiter=",", header="wavelength_nm,a,b,c", comments="")
    before = _digest(data)
    msg = "an output would overwrite an input file"
    for src in (via, nested, link):
        refused(["unmix", src, *VCA, "--out", out], capsys, msg)
        refused(["fcls", src, "--endmembers-csv", lib, "--out", data], capsys, msg)
        refused(["extract", src, "-p", "3", "--out", data], capsys, msg)
        refused(["evaluate", "--abundances", src, "--reference-abundances", scene[0], "--json", data], capsys, msg)
    assert _digest(data) == before
    assert sorted(os.listdir(out)) == ["abundances.tif"]


def test_input_files_lists_vrt_sources_recursively(scene, tmp_path):
    from core.io.files import input_files

    inner = _vrt(scene[0], tmp_path / "inner.vrt")
    outer = _vrt(inner, tmp_path / "outer.vrt", srcWin=[0, 0, 5, 5])
    files = input_files([str(outer), None, str(tmp_path / "missing.csv")])
    assert os.path.realpath(scene[0]) in files and str(outer) in files


# ----------------------------------------------------------------- defect 2: one run per output folder
def _holder(folder):
    """Another process holding ``folder``'s lock until its stdin closes."""
    code = ("import sys; from core.run.lock import folder_lock\n"
            f"with folder_lock({str(folder)!r}):\n    print('held', flush=True); sys.stdin.read()\n")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_run_into_a_folder_in_use_is_refused(scene, tmp_path, capsys):
    out = tmp_path / "res"
    assert cli(["unmix", scene[0], *VCA, "--residual", "--out", out], capsys)[0] == 0
    capsys.readouterr()
    before = snapshot(out)
    holder = _holder(out)
    try:
        for args in (["unmix", scene[0], *VCA, "--out", out], ["synth", "--out", out, "--height", "8", "--width", "8"]):
            refused(args, capsys, "output folder is in use by another DiffUnmix run")
        assert snapshot(out) == {**before, LOCK_NAME: (out / LOCK_NAME).read_bytes()}  # residual.tif kept
    finally:
        holder.kill()  # killed, not finished: the system releases its lock
        holder.wait()
    assert cli(["unmix", scene[0], *VCA, "--out", out], capsys)[0] == 0
    assert sorted(os.listdir(out)) == sorted(OUTPUTS)  # the lock file went with the run


def test_two_threads_cannot_share_an_output_folder(tmp_path):
    """QGIS runs Processing algorithms in parallel threads of one process."""
    entered, release, errors = threading.Event(), threading.Event(), []

    def first():
        with folder_lock(str(tmp_path)):
            with folder_lock(str(tmp_path)):  # reentrant in one thread (the CLI, then the pipeline)
                entered.set()
                release.wait(10)

    t = threading.Thread(target=first)
    t.start()
    assert entered.wait(10)
    try:
        with folder_lock(str(tmp_path)):
            pass
    except UnmixError as exc:
        errors.append(str(exc))
    release.set()
    t.join()
    assert errors and "in use" in errors[0]
    with folder_lock(str(tmp_path)):  # free again
        pass
    assert not (tmp_path / LOCK_NAME).exists()


# ----------------------------------------------------------------- defect 3: SIGTERM, SIGHUP, leftovers
@pytest.fixture(scope="module")
def slow_scene(spectra, tmp_path_factory):
    """A scene large enough that FCLS takes a few seconds (the window the signals are sent in)."""
    path = tmp_path_factory.mktemp("slow") / "slow.tif"
    write_scene(path, spectra[1], 700, 700, seed=3)
    return path


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_clean_up_like_ctrl_c(slow_scene, tmp_path, sig, status):
    out = tmp_path / "new" / "res"  # folders the run creates
    p = subprocess.Popen([sys.executable, "-m", "core", "unmix", str(slow_scene), *VCA, "--residual", "--out",
                          str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while time.time() - t0 < 60 and p.poll() is None:  # until the staged outputs are being written
        if out.exists() and any(".partial-" in n for n in os.listdir(out)):
            break
        time.sleep(0.02)
    assert p.poll() is None, "the run ended before it could be signalled"
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == status, err
    assert err.strip().splitlines()[-1].startswith("terminated (SIG")
    assert not (tmp_path / "new").exists(), list(os.walk(tmp_path))


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_run_sweeps_stale_partials_of_dead_processes(scene, tmp_path, capsys):
    out = tmp_path / "res"
    out.mkdir()
    dead, live = _dead_pid(), subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = [f".abundances.partial-{dead}-7.tif", f".abundances.partial-{dead}-7.tif.aux.xml",
                 f".report.partial-{dead}-123456.json", f".m.partial-{dead}-3.pt"]
        kept = [f".abundances.partial-{live.pid}-1.tif", "notes.txt", ".hidden"]
        for n in stale + kept:
            (out / n).write_text("x")
        os.mkdir(out / f".diffunmix-synth-{dead}-abc")
        assert cli(["unmix", scene[0], *VCA, "--out", out], capsys)[0] == 0
        assert sorted(os.listdir(out)) == sorted(OUTPUTS + kept)
    finally:
        live.kill()
        live.wait()


# ----------------------------------------------------------------- defect 8: empty paths
@pytest.mark.parametrize("args", [
    ["unmix", "SCENE", *VCA, "--out", ""],
    ["synth", "--out", ""],
    ["extract", "SCENE", "-p", "3", "--out", ""],
    ["fcls", "SCENE", "--endmembers-csv", "SCENE", "--out", ""],
    ["unmix", "", *VCA, "--out", "OUT"],
    ["evaluate", "--abundances", "SCENE", "--reference-abundances", "SCENE", "--json", ""],
])
def test_an_empty_path_is_bad_input(args, scene, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [str(scene[0]) if a == "SCENE" else str(tmp_path / "o") if a == "OUT" else a for a in args]
    refused(args, capsys, "is empty")
    assert os.listdir(tmp_path) == []


def test_an_empty_output_path_is_refused_by_the_engine_too(scene):
    from core.run.tasks import fcls_raster

    with pytest.raises(UnmixError, match="empty"):
        fcls_raster(str(scene[0]), str(scene[0]), "")
