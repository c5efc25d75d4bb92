"""Cancellation through the progress protocol (:mod:`core.progress`): while the engine fits its
networks, while tiles / windows are processed, during DDIM steps, and by Ctrl-C on the CLI.

Each cancelled run stops within a few seconds of the request, raises ``Cancelled`` (CLI: exit
status 130), leaves no output (not even a temporary file) and leaves the outputs of an earlier
run byte for byte unchanged.

Fitting runs with iteration counts far larger than the presets' (``iterations``): uncancelled,
they would run for many minutes, so an early stop is the cancellation's doing.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from core.errors import Cancelled
from core.options import UnmixOptions
from core.pipeline import unmix
from core.progress import Progress

torch.set_num_threads(2)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STOP_WITHIN_S = 5.0  # generous: a 2-core machine shared with other work


class CancelWhen(Progress):
    """Asks to stop once ``after`` progress updates arrived after an info message starting
    with ``stage`` (or once the overall progress reached ``at_percent``); records the time."""

    def __init__(self, stage=None, after=0, at_percent=None):
        self.stage, self.after, self.at_percent = stage, after, at_percent
        self.messages, self.percent, self.updates_in_stage = [], 0.0, 0
        self.in_stage = stage is None
        self.requested_at = None

    def request(self):
        if self.requested_at is None:
            self.requested_at = time.perf_counter()

    def info(self, message):
        self.messages.append(message)
        if self.stage is not None and message.startswith(self.stage):
            self.in_stage = True

    def set_progress(self, percent):
        self.percent = percent
        if self.in_stage and self.stage is not None:
            self.updates_in_stage += 1
            if self.updates_in_stage >= self.after:
                self.request()
        if self.at_percent is not None and percent >= self.at_percent:
            self.request()

    def is_canceled(self):
        return self.requested_at is not None


def outputs(folder):
    names = ("abundances.tif", "endmembers.csv", "endmembers.png", "report.json")
    return [str(folder / n) for n in names]


def run_unmix(scene, folder, progress=None, **options):
    a, e, plot, report = outputs(folder)
    return unmix(str(scene), a, e, UnmixOptions(**options), plot_path=plot, report_path=report, progress=progress)


def snapshot(folder):
    return {n: (folder / n).read_bytes() for n in sorted(os.listdir(folder))}


def assert_cancelled_cleanly(scene, folder, before, progress, **options):
    """Run, expect Cancelled soon after the request, and the folder exactly as ``before``."""
    with pytest.raises(Cancelled):
        run_unmix(scene, folder, progress, **options)
    assert progress.requested_at is not None, "the run ended before the cancel request"
    latency = time.perf_counter() - progress.requested_at
    assert latency < STOP_WITHIN_S, f"stopped {latency:.1f} s after the request"
    assert snapshot(folder) == before  # no output, no temporary file, the old outputs untouched
    return latency


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """A 16×16 and a 200×200 20-band scene (with wavelengths), and a folder holding a finished run."""
    from testutil import make_mixture_raster

    folder = tmp_path_factory.mktemp("cancel")
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 20)
    E = np.stack([0.1 + 0.5 * np.exp(-((x - 0.3) / 0.15) ** 2), 0.5 - 0.3 * x, 0.1 + 0.4 * x ** 2])
    wl = np.linspace(450.0, 2400.0, 20)
    paths = {}
    for name, (h, w) in (("small", (16, 16)), ("tiles", (200, 200)), ("windows", (600, 1024))):
        A = rng.dirichlet(np.ones(3), size=h * w).T.reshape(3, h, w)
        paths[name] = folder / f"{name}.tif"
        make_mixture_raster(paths[name], E, A, wavelengths=wl, dtype="int16", scale=1e-4)
    return paths, E, wl


@pytest.fixture
def previous(scenes, tmp_path):
    """A folder with the outputs of a finished VCA + FCLS run; returns (folder, snapshot)."""
    folder = tmp_path / "out"
    folder.mkdir()
    run_unmix(scenes[0]["small"], folder, method="vca-fcls", endmembers=3)
    before = snapshot(folder)
    assert sorted(before) == ["abundances.tif", "endmembers.csv", "endmembers.png", "report.json"]
    return folder, before


@pytest.fixture
def iterations(monkeypatch):
    """Set the fitting iteration counts of every quality preset: ``iterations(hybrid, unet2d)``."""
    from core.deep.engine import EngineConfig
    from core.deep.training import FitConfig

    preset = EngineConfig.preset.__func__

    def use(hybrid, unet2d):
        def patched(cls, quality="default"):
            cfg = preset(cls, "fast")
            cfg.fit = {**FitConfig.from_dict(cfg.fit).to_dict(), "hybrid_iters": hybrid, "unet2d_iters": unet2d,
                       "unet1d_iters": 0}
            return cfg

        monkeypatch.setattr(EngineConfig, "preset", classmethod(patched))

    return use


@pytest.fixture(scope="module")
def model(scenes, tmp_path_factory):
    """An unfitted engine saved as a real checkpoint, with HybridSTU correction and 2 DDIM steps on."""
    from core.deep.checkpoint import save_checkpoint
    from core.deep.engine import Engine, EngineConfig
    from core.deep.run import checkpoint_payload

    _, E, wl = scenes
    torch.manual_seed(0)
    eng = Engine(20, E, ["a", "b", "c"], EngineConfig.preset("fast"), float(E.mean()), "cpu")
    assert eng.refine_cfg.steps_2d == 2 and float(eng.hybrid.correction) == 1.0
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_checkpoint(str(path), checkpoint_payload(eng, list(range(20)), wl, {}))
    return str(path)


# ------------------------------------------------------------------ (a) while fitting
@pytest.mark.timeout(300)
@pytest.mark.parametrize("stage, hybrid, unet2d", [("fitting HybridSTU", 100000, 1),
                                                   ("fitting the abundance diffusion", 2, 100000)])
def test_cancel_while_fitting(scenes, previous, iterations, stage, hybrid, unet2d):
    iterations(hybrid, unet2d)
    progress = CancelWhen(stage=stage, after=3)  # three training iterations into the stage
    assert_cancelled_cleanly(scenes[0]["small"], previous[0], previous[1], progress, method="full", endmembers=3,
                             quality="fast")
    assert progress.updates_in_stage <= 4  # stopped at the next iteration
    assert not any(m.startswith(("self-validation", "calibrating")) for m in progress.messages)


# ------------------------------------------------------------------ (b) while processing tiles / windows
def test_cancel_while_streaming_windows_vca_fcls(scenes, previous):
    progress = CancelWhen(at_percent=20)  # the first of three read windows is written (15 → 95 %)
    assert_cancelled_cleanly(scenes[0]["windows"], previous[0], previous[1], progress, method="vca-fcls",
                             endmembers=3)
    assert progress.percent < 95


def test_cancel_while_processing_tiles_full_engine(scenes, previous, model):
    progress = CancelWhen(at_percent=86)  # the first of four 128² tiles is done (85 → 98 %)
    assert_cancelled_cleanly(scenes[0]["tiles"], previous[0], previous[1], progress, model=model, method="full")
    assert progress.percent < 98


# ------------------------------------------------------------------ (c) during DDIM steps
def test_cancel_between_ddim_steps_of_a_tile(model, scenes):
    from core.deep.run import engine_from_checkpoint
    from core.io.raster import read_cube

    _, E, wl = scenes
    eng = engine_from_checkpoint(model, 20, wl, torch.device("cpu"))
    eng.refine_cfg.steps_2d = 4
    cube, valid, _ = read_cube(str(scenes[0]["small"]))

    class StopAfter(Progress):
        def __init__(self, checks):
            self.checks, self.steps_done = checks, 0

        def set_progress(self, percent):
            self.steps_done += 1

        def is_canceled(self):
            self.checks -= 1
            return self.checks < 0

    full = StopAfter(checks=10)
    A = eng.abundances(cube, valid, progress=full)
    assert full.steps_done == 4 and np.allclose(A.sum(0), 1, atol=1e-4)
    stop = StopAfter(checks=1)  # after one of the four steps
    with pytest.raises(Cancelled):
        eng.abundances(cube, valid, progress=stop)
    assert stop.steps_done == 1


def test_cancel_requested_during_a_ddim_step_stops_the_run(scenes, previous, model, monkeypatch):
    from core.deep.diffusion import DDIMSampler

    progress = CancelWhen()
    real_step = DDIMSampler.step

    def step(self, *args, **kwargs):  # the real step; the user presses cancel while tiles are refined
        if progress.percent >= 85:
            progress.request()
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(DDIMSampler, "step", step)
    assert_cancelled_cleanly(scenes[0]["tiles"], previous[0], previous[1], progress, model=model, method="full")
    assert progress.percent < 98


# ------------------------------------------------------------------ waiting for the engine
def test_cancel_while_waiting_for_another_full_engine_run(scenes, previous, model):
    """Full-engine runs of one process take turns; one queued behind another can be cancelled."""
    import threading

    from core.run.context import engine_turn

    class CancelLater(CancelWhen):
        def info(self, message):
            super().info(message)
            if message.startswith("waiting for another full-engine run"):
                threading.Timer(0.5, self.request).start()

    progress = CancelLater()
    with engine_turn():  # another run holds the engine
        assert_cancelled_cleanly(scenes[0]["tiles"], previous[0], previous[1], progress, model=model,
                                 method="full")
    assert progress.percent == 0 and "waiting for another full-engine run in this process to finish" in \
        progress.messages
    import core.run.context

    assert core.run.context._ENGINE_LOCK.acquire(blocking=False)  # free again: the queued run holds nothing
    core.run.context._ENGINE_LOCK.release()


# ------------------------------------------------------------------ Ctrl-C on the CLI
@pytest.mark.timeout(300)
def test_ctrl_c_stops_the_cli_with_status_130_and_no_output(scenes, previous):
    folder, before = previous
    proc = subprocess.Popen([sys.executable, "-m", "core", "unmix", str(scenes[0]["small"]), "-p", "3", "--out",
                             str(folder), "--quality", "fast"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
                            # a test run started in the background (`make test &`) inherits SIGINT ignored,
                            # and Python then never raises KeyboardInterrupt: restore the default first
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in proc.stdout:  # wait until the engine is fitting (progress goes to stdout)
            if line.startswith("fitting HybridSTU"):
                break
        else:
            pytest.fail("the run ended before fitting started")
        proc.send_signal(signal.SIGINT)
        t0 = time.perf_counter()
        _, rest = proc.communicate(timeout=60)
        rc = proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert time.perf_counter() - t0 < STOP_WITHIN_S
    assert rc == 130 and rest.strip().splitlines()[-1] == "cancelled", rest
    assert snapshot(folder) == before
