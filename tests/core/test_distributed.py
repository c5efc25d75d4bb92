"""Runs on a real Dask cluster (core/run/distributed.py, core/batch.py): a ``LocalCluster`` of
2 single-thread worker processes shared by the module, and a ``dask scheduler`` + ``dask worker``
started as subprocesses on 127.0.0.1.

Distributed and in-process outputs are identical (1e-6) for VCA + FCLS and for the full engine
from a saved model; a worker killed by PID mid-run changes nothing; a batch records a broken
raster and goes on, and a rerun skips what is complete; a cancel stops the cluster's tasks
within seconds and leaves no output.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from osgeo import gdal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "hostile"))
from hostile_util import bundled_spectra, save_model, write_scene  # noqa: E402

from core.cli import main  # noqa: E402
from core.errors import Cancelled, UnmixError  # noqa: E402
from core.options import UnmixOptions  # noqa: E402
from core.progress import Progress  # noqa: E402

pytest.importorskip("distributed")
from core.run.distributed import parse_scheduler, session  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOCAL = "local:2"
OUTS = ("abundances.tif", "residual.tif")


@pytest.fixture(scope="module")
def client():
    """One LocalCluster (2 single-thread workers) for the module: runs asking for local:2 reuse it."""
    with session(LOCAL) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


@pytest.fixture(scope="module")
def spectra():
    return bundled_spectra()


@pytest.fixture(scope="module")
def model(spectra, tmp_path_factory):
    names, E = spectra
    return save_model(tmp_path_factory.mktemp("model") / "model.pt", E, names)


@pytest.fixture(scope="module")
def scene(spectra, tmp_path_factory):
    """A 150×170 scene: 2×2 engine tiles (128 px, overlap 16), 1×1 FCLS task tiles."""
    path = tmp_path_factory.mktemp("scene") / "scene.tif"
    noisy_scene(path, spectra[1], 150, 170, seed=3)
    return str(path)


def noisy_scene(path, E, h, w, seed):
    """A mixture raster (``hostile_util.write_scene``) with 1 % noise: the reconstruction error of a
    noise-free one is float32 round-off, which differs with the BLAS thread count."""
    write_scene(path, E, h, w, seed=seed)
    ds = gdal.Open(str(path), gdal.GA_Update)
    Y = ds.ReadAsArray()
    Y += np.random.default_rng(seed).normal(0, 0.01 * Y.mean(), Y.shape).astype(np.float32)
    ds.WriteRaster(0, 0, w, h, Y.tobytes())
    ds = None


def read(path):
    return gdal.Open(str(path)).ReadAsArray()


def unmix_cli(args, out):
    rc = main([str(a) for a in args] + ["--out", str(out), "--residual", "-q"])
    assert rc == 0
    return json.load(open(out / "report.json"))


def assert_same(a, b, names=OUTS):
    for n in names:
        x, y = read(a / n), read(b / n)
        assert x.shape == y.shape
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-6, err_msg=n)


def test_scheduler_addresses_are_checked_without_dask():
    assert parse_scheduler(None) is None and parse_scheduler(" ") is None
    assert parse_scheduler("local:3") == "local:3"
    assert parse_scheduler("local") == f"local:{os.cpu_count()}"
    assert parse_scheduler("tcp://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    for bad in ("local:0", "locale", "http://x:1", "tcp://x", "tcp://a b:1"):
        with pytest.raises(UnmixError):
            parse_scheduler(bad)


def test_bad_scheduler_is_one_line_exit_2(scene, tmp_path, capsys):
    rc = main(["unmix", scene, "--out", str(tmp_path / "o"), "--method", "vca-fcls", "--scheduler", "tcp://nowhere"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "unknown scheduler 'tcp://nowhere'" in err[0]
    assert not (tmp_path / "o").exists()


def test_dask_is_imported_only_when_a_scheduler_is_asked_for(scene, tmp_path):
    code = ("import sys; from core.cli import main; "
            f"rc = main(['unmix', {scene!r}, '--out', {str(tmp_path)!r}, '--method', 'vca-fcls', '-p', '3', '-q']); "
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.splitlines()[-1] == "0 []", out.stdout + out.stderr


def test_vca_fcls_on_the_cluster_is_the_in_process_result(client, scene, tmp_path):
    args = ["unmix", scene, "--method", "vca-fcls", "-p", "3"]
    here = unmix_cli(args, tmp_path / "here")
    there = unmix_cli(args + ["--scheduler", LOCAL], tmp_path / "there")
    assert_same(tmp_path / "here", tmp_path / "there")
    assert here["distributed"] is None
    d = there["distributed"]
    assert d["scheduler"] == LOCAL and d["workers"] == 2
    assert sum(w["tasks"] for w in d["per_worker"].values()) == 1  # 150×170 is one FCLS task tile
    assert there["mean_reconstruction_rmse"] == pytest.approx(here["mean_reconstruction_rmse"], rel=1e-5)


def test_full_engine_on_the_cluster_is_the_in_process_result(client, scene, model, tmp_path):
    args = ["apply", scene, "--model", model, "--uncertainty", "2", "--device", "cpu"]
    unmix_cli(args, tmp_path / "here")
    there = unmix_cli(args + ["--scheduler", LOCAL], tmp_path / "there")
    assert_same(tmp_path / "here", tmp_path / "there", OUTS + ("uncertainty.tif",))
    d = there["distributed"]
    assert sum(w["tasks"] for w in d["per_worker"].values()) == 4  # 2×2 tiles, one task each
    assert all(w["compute_s"] > 0 for w in d["per_worker"].values())


class KillAWorker(Progress):
    """Kills one worker process (SIGKILL, by PID) when the first tile is done."""

    def __init__(self, pids):
        self.pids, self.killed = pids, None

    def set_progress(self, percent):
        if percent > 0 and self.killed is None:
            self.killed = self.pids[0]
            os.kill(self.killed, signal.SIGKILL)


@pytest.mark.parametrize("per_task", [1, 3])
def test_a_killed_worker_loses_nothing(client, spectra, model, tmp_path, monkeypatch, per_task):
    """Tasks of one window, and of up to 3 (a dying worker loses the run of windows it held)."""
    from core.pipeline import unmix
    from core.run import distributed

    monkeypatch.setattr(distributed, "WINDOWS_PER_TASK", per_task)
    monkeypatch.setattr(distributed, "TAIL_WINDOWS_PER_WORKER", 0)

    path = tmp_path / "wide.tif"
    noisy_scene(path, spectra[1], 120, 560, seed=4)  # 1×5 tiles: four left when a worker dies
    runs = {}
    for name, sched in (("here", None), ("there", LOCAL)):
        out = tmp_path / name
        out.mkdir()
        pids = sorted(client.run(os.getpid).values())
        prog = KillAWorker(pids) if sched else Progress()
        opts = UnmixOptions(model=model, device="cpu", scheduler=sched)
        unmix(str(path), str(out / "abundances.tif"), str(out / "e.csv"), opts,
              residual_path=str(out / "residual.tif"), progress=prog)
        runs[name] = prog
    assert runs["there"].killed is not None
    assert_same(tmp_path / "here", tmp_path / "there")
    client.wait_for_workers(2, timeout=60)  # the nanny started a new one
    assert runs["there"].killed not in client.run(os.getpid).values()


def test_runs_of_windows_become_tasks_in_window_order():
    from core.run.distributed import task_windows
    from core.run.tiling import tile_grid

    grid = tile_grid(2048, 2048, 128, 16)  # 19×19 windows
    tasks = task_windows(grid, 4, tail=8)
    assert sum(tasks, []) == grid
    assert all(len({w[0] for w in t}) == 1 for t in tasks)  # one row of windows per task
    assert [len(t) for t in tasks[:5]] == [4, 4, 4, 4, 3] and all(len(t) == 1 for t in tasks[-8:])
    assert task_windows(grid[:3], 4, tail=8) == [[w] for w in grid[:3]]


def test_runs_of_windows_on_the_cluster_are_the_in_process_result(client, scene, tmp_path, monkeypatch):
    """Tasks of several windows (one read each, cut per window) give each window what it reads alone."""
    from core.io.raster import RasterReader, RasterWriter
    from core.run import distributed
    from core.run.tiling import process_tiled

    monkeypatch.setattr(distributed, "TAIL_WINDOWS_PER_WORKER", 1)
    fn = lambda cube, valid, origin: np.nan_to_num(cube[:2]) * (1 + origin[0]) + origin[1]  # noqa: E731
    outs = {}
    with RasterReader(scene) as r:
        bands = list(range(len(r.bands)))
        for name in ("here", "there"):
            w = RasterWriter(str(tmp_path / f"{name}.tif"), r.info.width, r.info.height, 2)
            tiles = distributed.tile_runner(client, fn, scene, bands, origin=True) if name == "there" else None
            stats = process_tiled(r, fn, 2, [(w, 0, 2)], tile=40, overlap=8, margin=2, origin=True, tiles=tiles)
            w.close()
            outs[name] = read(tmp_path / f"{name}.tif")
    d = stats["distributed"]["per_worker"].values()
    assert sum(x["windows"] for x in d) == stats["tiles"] > sum(x["tasks"] for x in d)
    np.testing.assert_allclose(outs["here"], outs["there"], rtol=0, atol=1e-6)


def test_batch_records_a_broken_raster_goes_on_and_resumes(client, spectra, tmp_path):
    folder = tmp_path / "scenes"
    folder.mkdir()
    for i in range(2):
        write_scene(folder / f"s{i}.tif", spectra[1], 40, 40, seed=i)
    (folder / "broken.tif").write_bytes(b"II*\x00 not a tiff")
    out = tmp_path / "out"
    args = ["batch", str(folder / "*.tif"), "--out", str(out), "--method", "vca-fcls", "-p", "3", "-q",
            "--scheduler", LOCAL]
    assert main(args) == 1  # one raster failed
    doc = json.load(open(out / "batch.json"))
    status = {os.path.basename(r["input"]): r for r in doc["rasters"]}
    assert {k: r["status"] for k, r in status.items()} == {"broken.tif": "failed", "s0.tif": "done", "s1.tif": "done"}
    assert "broken.tif" in status["broken.tif"]["error"] and doc["workers"] == 2
    assert status["s0.tif"]["scores"]["endmember_count"] == 3 and status["s0.tif"]["time_s"] > 0
    assert not (out / "broken").exists()
    for s in ("s0", "s1"):
        assert sorted(os.listdir(out / s)) == ["abundances.tif", "endmembers.csv", "endmembers.png", "report.json"]
    stamp = os.stat(out / "s0" / "abundances.tif").st_mtime_ns
    (out / "s1" / "endmembers.csv").unlink()  # s1 incomplete: it runs again
    assert main(args) == 1
    doc = json.load(open(out / "batch.json"))
    assert [r["status"] for r in doc["rasters"]] == ["failed", "skipped", "done"]
    assert os.stat(out / "s0" / "abundances.tif").st_mtime_ns == stamp
    # in process, the same outputs
    assert main(["batch", str(folder / "s*.tif"), "--out", str(tmp_path / "here"), "--method", "vca-fcls",
                 "-p", "3", "-q"]) == 0
    assert_same(out / "s0", tmp_path / "here" / "s0", ("abundances.tif",))


class CancelAfterFirstTile(Progress):
    def __init__(self):
        self.at = None

    def set_progress(self, percent):
        if percent > 0 and self.at is None:
            self.at = time.monotonic()

    def is_canceled(self):
        return self.at is not None


def test_cancel_stops_the_cluster_within_seconds_and_leaves_nothing(client, spectra, model, tmp_path):
    from core.pipeline import unmix

    path = tmp_path / "scene.tif"
    write_scene(path, spectra[1], 120, 900, seed=5)  # 1×8 tiles
    out = tmp_path / "out"
    out.mkdir()
    prog = CancelAfterFirstTile()
    with pytest.raises(Cancelled):
        unmix(str(path), str(out / "abundances.tif"), str(out / "e.csv"),
              UnmixOptions(model=model, device="cpu", scheduler=LOCAL), residual_path=str(out / "r.tif"),
              report_path=str(out / "report.json"), progress=prog)
    assert time.monotonic() - prog.at < 3
    assert os.listdir(out) == []
    deadline = time.monotonic() + 5
    while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_existing_scheduler_over_tcp(scene, tmp_path):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    env = {**os.environ, "PYTHONPATH": ROOT, "DIFFUNMIX_THREADS": "1"}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--dashboard-address", ":0", "--no-show"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                                       "--no-dashboard"], env=env, cwd=tmp_path,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(address, timeout="2s") as c:
                    c.wait_for_workers(1, timeout=60)
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        args = ["unmix", scene, "--method", "vca-fcls", "-p", "3"]
        unmix_cli(args, tmp_path / "here")
        there = unmix_cli(args + ["--scheduler", address], tmp_path / "there")
        assert_same(tmp_path / "here", tmp_path / "there")
        assert there["distributed"]["scheduler"] == address and there["distributed"]["workers"] == 1
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

